"""Our room, participant and track descriptions as LiveKit's models (livekit_models.proto).

The two vocabularies mostly share names; what differs is numbering (LiveKit's
TrackType counts from AUDIO = 0, ours from UNSPECIFIED = 0), time units
(LiveKit carries milliseconds beside seconds) and simulcast layers (LiveKit
names them by VideoQuality, we by rid).
"""

from __future__ import annotations

from livekit.protocol import models as lk

from mediapod.protocol import models_pb2

TRACK_TYPES = {models_pb2.AUDIO: lk.AUDIO, models_pb2.VIDEO: lk.VIDEO, models_pb2.DATA: lk.DATA}
TRACK_TYPES_BACK = {v: k for k, v in TRACK_TYPES.items()}
# LiveKit's clients name simulcast layers q, h, f (quarter, half, full resolution).
RID_QUALITY = {"q": lk.LOW, "h": lk.MEDIUM, "f": lk.HIGH}
QUALITY_RID = {v: k for k, v in RID_QUALITY.items()}


def room(ours: models_pb2.Room) -> lk.Room:
    return lk.Room(
        sid=ours.sid,
        name=ours.name,
        empty_timeout=ours.empty_timeout,
        departure_timeout=ours.departure_timeout,
        max_participants=ours.max_participants,
        creation_time=ours.creation_time,
        creation_time_ms=ours.creation_time * 1000,
        metadata=ours.metadata,
        num_participants=ours.num_participants,
        num_publishers=ours.num_publishers,
    )


def track(ours: models_pb2.TrackInfo) -> lk.TrackInfo:
    info = lk.TrackInfo(
        sid=ours.sid,
        type=TRACK_TYPES.get(ours.type, lk.AUDIO),
        name=ours.name,
        muted=ours.muted,
        width=ours.width,
        height=ours.height,
        simulcast=ours.simulcast,
        source=ours.source,  # the same numbers: UNKNOWN, CAMERA, MICROPHONE, SCREEN_SHARE, SCREEN_SHARE_AUDIO
        mime_type=ours.mime_type,
        mid=ours.mid,
    )
    for index, layer in enumerate(ours.layers):
        quality = RID_QUALITY.get(layer.rid, min(index, lk.HIGH))
        info.layers.append(lk.VideoLayer(quality=quality, width=layer.width, height=layer.height, bitrate=layer.bitrate, rid=layer.rid))
    return info


def participant(ours: models_pb2.ParticipantInfo) -> lk.ParticipantInfo:
    permission = ours.permission
    return lk.ParticipantInfo(
        sid=ours.sid,
        identity=ours.identity,
        name=ours.name,
        state=ours.state,  # the same numbers: JOINING, JOINED, ACTIVE, DISCONNECTED
        tracks=[track(t) for t in ours.tracks],
        metadata=ours.metadata,
        attributes=dict(ours.attributes),
        joined_at=ours.joined_at,
        joined_at_ms=ours.joined_at * 1000,
        is_publisher=ours.is_publisher,
        permission=lk.ParticipantPermission(
            can_subscribe=permission.can_subscribe,
            can_publish=permission.can_publish,
            can_publish_data=permission.can_publish_data,
            hidden=permission.hidden,
        ),
    )
