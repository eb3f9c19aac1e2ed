"""Translation between the room model and the protobuf wire contract.

Kept apart from the servicers so the model never imports protobuf and the
servicers stay about flow, not field copying.
"""

from __future__ import annotations

from mediapod.protocol import models_pb2, signal_pb2
from mediapod.rtc.participant import LeaveReason, Participant, ParticipantState, Permission
from mediapod.rtc.room_state import RoomState
from mediapod.rtc.speaker import Speaker
from mediapod.rtc.track import LayerAnnouncement, PublishedTrack, TrackAnnouncement, TrackSource

_TRACK_TYPES = {"audio": models_pb2.AUDIO, "video": models_pb2.VIDEO}
_TRACK_KINDS = {v: k for k, v in _TRACK_TYPES.items()}
_SOURCES = {
    TrackSource.UNKNOWN: models_pb2.TRACK_SOURCE_UNSPECIFIED,
    TrackSource.CAMERA: models_pb2.CAMERA,
    TrackSource.MICROPHONE: models_pb2.MICROPHONE,
    TrackSource.SCREEN_SHARE: models_pb2.SCREEN_SHARE,
    TrackSource.SCREEN_SHARE_AUDIO: models_pb2.SCREEN_SHARE_AUDIO,
}
_SOURCES_BACK = {v: k for k, v in _SOURCES.items()}
_STATES = {
    ParticipantState.JOINING: models_pb2.ParticipantInfo.JOINING,
    ParticipantState.JOINED: models_pb2.ParticipantInfo.JOINED,
    ParticipantState.ACTIVE: models_pb2.ParticipantInfo.ACTIVE,
    ParticipantState.DISCONNECTED: models_pb2.ParticipantInfo.DISCONNECTED,
}
LEAVE_REASONS = {
    LeaveReason.CLIENT_INITIATED: signal_pb2.LeaveRequest.CLIENT_INITIATED,
    LeaveReason.ROOM_DELETED: signal_pb2.LeaveRequest.ROOM_DELETED,
    LeaveReason.PARTICIPANT_REMOVED: signal_pb2.LeaveRequest.PARTICIPANT_REMOVED,
    LeaveReason.DUPLICATE_IDENTITY: signal_pb2.LeaveRequest.DUPLICATE_IDENTITY,
    LeaveReason.SERVER_SHUTDOWN: signal_pb2.LeaveRequest.SERVER_SHUTDOWN,
    LeaveReason.TRANSPORT_FAILED: signal_pb2.LeaveRequest.TRANSPORT_FAILURE,
    LeaveReason.PROTOCOL_VIOLATION: signal_pb2.LeaveRequest.PROTOCOL_VIOLATION,
    LeaveReason.SIGNAL_STALLED: signal_pb2.LeaveRequest.SIGNAL_STALLED,
}


def announcement_from_proto(request: signal_pb2.AddTrackRequest) -> TrackAnnouncement:
    return TrackAnnouncement(
        cid=request.cid,
        name=request.name,
        kind=_TRACK_KINDS.get(request.type, "unknown"),
        source=_SOURCES_BACK.get(request.source, TrackSource.UNKNOWN),
        muted=request.muted,
        width=request.width,
        height=request.height,
        layers=tuple(LayerAnnouncement(layer.rid, layer.width, layer.height) for layer in request.layers),
    )


def announced_track_info(sid: str, announcement: TrackAnnouncement) -> models_pb2.TrackInfo:
    return models_pb2.TrackInfo(
        sid=sid,
        type=_TRACK_TYPES.get(announcement.kind, models_pb2.TRACK_TYPE_UNSPECIFIED),
        name=announcement.name,
        muted=announcement.muted,
        source=_SOURCES[announcement.source],
        width=announcement.width,
        height=announcement.height,
        layers=[models_pb2.SimulcastLayer(rid=l.rid, width=l.width, height=l.height) for l in announcement.layers],
    )


def track_info(track: PublishedTrack) -> models_pb2.TrackInfo:
    info = announced_track_info(track.sid, track.announcement)
    info.muted = track.muted
    info.mime_type = track.mime_type
    info.mid = track.mid
    info.simulcast = track.simulcast
    if track.simulcast and not info.layers:
        info.layers.extend(models_pb2.SimulcastLayer(rid=rid) for rid in track.rids)
    return info


def participant_info(participant: Participant) -> models_pb2.ParticipantInfo:
    permission = participant.permission
    return models_pb2.ParticipantInfo(
        sid=participant.sid,
        identity=participant.identity,
        name=participant.name,
        state=_STATES[participant.state],
        tracks=[track_info(t) for t in participant.tracks.values()],
        metadata=participant.metadata,
        joined_at=int(participant.joined_at),
        is_publisher=participant.is_publisher,
        permission=models_pb2.ParticipantPermission(
            can_subscribe=permission.can_subscribe,
            can_publish=permission.can_publish,
            can_publish_data=permission.can_publish_data,
            hidden=permission.hidden,
        ),
        attributes=participant.attributes,
    )


def permission_from_proto(permission: models_pb2.ParticipantPermission) -> Permission:
    return Permission(
        can_publish=permission.can_publish,
        can_subscribe=permission.can_subscribe,
        can_publish_data=permission.can_publish_data,
        hidden=permission.hidden,
    )


def speakers_changed(speakers: list[Speaker]) -> signal_pb2.SpeakersChanged:
    return signal_pb2.SpeakersChanged(
        speakers=[signal_pb2.SpeakerInfo(sid=s.sid, level=s.level, active=s.active) for s in speakers]
    )


def room_info(room: RoomState) -> models_pb2.Room:
    return models_pb2.Room(
        sid=room.sid,
        name=room.name,
        empty_timeout=room.empty_timeout,
        departure_timeout=room.departure_timeout,
        max_participants=room.max_participants,
        creation_time=int(room.created_at),
        metadata=room.metadata,
        num_participants=room.num_participants,
        num_publishers=room.num_publishers,
        node_id=room.node_id,
    )
