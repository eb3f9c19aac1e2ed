"""LiveKit's RoomService messages (``livekit.protocol.room``) as calls on our RoomService, and the answers back.

One entry per Twirp method: the LiveKit request type to decode, the
RoomService method it becomes, and how its request and its response
translate. Rooms, participants and tracks are described by models.py, which
the WebSocket front end uses too, so both tell a LiveKit client the same.
What LiveKit offers and we cannot honor (a deprecated addressing by sid)
is refused by name rather than dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from livekit.protocol import models as lk_models
from livekit.protocol import room as lk

from mediapod.protocol import models_pb2, room_service_pb2
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.signal.livekit import models


@dataclass(frozen=True, slots=True)
class RoomMethod:
    """One RoomService method as Twirp serves it."""

    request_type: type[Message]  # LiveKit's request message
    call: str  # the RoomService (RoomAdmin) method it runs
    request: Callable[[Any], Message]  # LiveKit request -> ours
    response: Callable[[Any], Message]  # our response -> LiveKit's


def _create_room(theirs: lk.CreateRoomRequest) -> room_service_pb2.CreateRoomRequest:
    return room_service_pb2.CreateRoomRequest(
        name=theirs.name,
        empty_timeout=theirs.empty_timeout,
        departure_timeout=theirs.departure_timeout,
        max_participants=theirs.max_participants,
        metadata=theirs.metadata,
    )


def _identity(theirs: lk.RoomParticipantIdentity) -> room_service_pb2.RoomParticipantIdentity:
    return room_service_pb2.RoomParticipantIdentity(room=theirs.room, identity=theirs.identity)


def _mute(theirs: lk.MuteRoomTrackRequest) -> room_service_pb2.MuteRoomTrackRequest:
    return room_service_pb2.MuteRoomTrackRequest(
        room=theirs.room, identity=theirs.identity, track_sid=theirs.track_sid, muted=theirs.muted
    )


def _update_participant(theirs: lk.UpdateParticipantRequest) -> room_service_pb2.UpdateParticipantRequest:
    ours = room_service_pb2.UpdateParticipantRequest(
        room=theirs.room, identity=theirs.identity, metadata=theirs.metadata, name=theirs.name, attributes=dict(theirs.attributes)
    )
    if theirs.HasField("permission"):
        permission = theirs.permission
        ours.permission.CopyFrom(
            models_pb2.ParticipantPermission(
                can_subscribe=permission.can_subscribe,
                can_publish=permission.can_publish,
                can_publish_data=permission.can_publish_data,
                hidden=permission.hidden,
            )
        )
    return ours


def _update_subscriptions(theirs: lk.UpdateSubscriptionsRequest) -> room_service_pb2.UpdateSubscriptionsRequest:
    # Tracks grouped by publisher are still just tracks of the room, as LiveKit's server flattens them.
    sids = list(theirs.track_sids) + [sid for group in theirs.participant_tracks for sid in group.track_sids]
    return room_service_pb2.UpdateSubscriptionsRequest(
        room=theirs.room, identity=theirs.identity, track_sids=sids, subscribe=theirs.subscribe
    )


def _send_data(theirs: lk.SendDataRequest) -> room_service_pb2.SendDataRequest:
    if theirs.destination_sids:
        raise RequestError(
            ErrorCode.INVALID_ARGUMENT, "destination_sids is not supported (LiveKit deprecated it): use destination_identities"
        )
    return room_service_pb2.SendDataRequest(
        room=theirs.room,
        data=theirs.data,
        lossy=theirs.kind == lk_models.DataPacket.LOSSY,
        destination_identities=list(theirs.destination_identities),
        topic=theirs.topic,
    )


def _participant(ours: models_pb2.ParticipantInfo) -> lk_models.ParticipantInfo:
    info = models.participant(ours)
    info.attributes.update(ours.attributes)
    return info


METHODS: Mapping[str, RoomMethod] = {
    "CreateRoom": RoomMethod(lk.CreateRoomRequest, "create_room", _create_room, models.room),
    "ListRooms": RoomMethod(
        lk.ListRoomsRequest,
        "list_rooms",
        lambda theirs: room_service_pb2.ListRoomsRequest(names=list(theirs.names)),
        lambda ours: lk.ListRoomsResponse(rooms=[models.room(r) for r in ours.rooms]),
    ),
    "DeleteRoom": RoomMethod(
        lk.DeleteRoomRequest,
        "delete_room",
        lambda theirs: room_service_pb2.DeleteRoomRequest(room=theirs.room),
        lambda ours: lk.DeleteRoomResponse(),
    ),
    "ListParticipants": RoomMethod(
        lk.ListParticipantsRequest,
        "list_participants",
        lambda theirs: room_service_pb2.ListParticipantsRequest(room=theirs.room),
        lambda ours: lk.ListParticipantsResponse(participants=[_participant(p) for p in ours.participants]),
    ),
    "GetParticipant": RoomMethod(lk.RoomParticipantIdentity, "get_participant", _identity, _participant),
    "RemoveParticipant": RoomMethod(
        lk.RoomParticipantIdentity, "remove_participant", _identity, lambda ours: lk.RemoveParticipantResponse()
    ),
    "MutePublishedTrack": RoomMethod(
        lk.MuteRoomTrackRequest,
        "mute_published_track",
        _mute,
        lambda ours: lk.MuteRoomTrackResponse(track=models.track(ours.track)),
    ),
    "UpdateParticipant": RoomMethod(lk.UpdateParticipantRequest, "update_participant", _update_participant, _participant),
    "UpdateSubscriptions": RoomMethod(
        lk.UpdateSubscriptionsRequest,
        "update_subscriptions",
        _update_subscriptions,
        lambda ours: lk.UpdateSubscriptionsResponse(),
    ),
    "SendData": RoomMethod(lk.SendDataRequest, "send_data", _send_data, lambda ours: lk.SendDataResponse()),
    "UpdateRoomMetadata": RoomMethod(
        lk.UpdateRoomMetadataRequest,
        "update_room_metadata",
        lambda theirs: room_service_pb2.UpdateRoomMetadataRequest(room=theirs.room, metadata=theirs.metadata),
        models.room,
    ),
}
