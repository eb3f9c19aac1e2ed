"""Room administration (LiveKit's RoomService) for the rooms this node hosts, authorized by the caller's grants.

Each call takes a verified Caller and a request message and returns the
response message or raises RequestError. The gRPC RoomService, the relay
answering calls from other nodes, and (next) Twirp all call it, so the
authorization rules live in one place.
"""

from __future__ import annotations

from typing import Protocol

from mediapod import auth
from mediapod.protocol import models_pb2, room_service_pb2
from mediapod.rtc.data import DataKind, DataMessage
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.node import MediaNode
from mediapod.rtc.participant import LeaveReason, Participant
from mediapod.rtc.room import Room
from mediapod.signal import convert
from mediapod.signal.access import Caller

_CLAIM_NAMES = {"room_create": "roomCreate", "room_list": "roomList", "room_admin": "roomAdmin"}


class RoomService(Protocol):
    """The RoomService calls, whichever node the rooms are on."""

    async def create_room(self, caller: Caller, request: room_service_pb2.CreateRoomRequest) -> models_pb2.Room: ...

    async def list_rooms(self, caller: Caller, request: room_service_pb2.ListRoomsRequest) -> room_service_pb2.ListRoomsResponse: ...

    async def delete_room(self, caller: Caller, request: room_service_pb2.DeleteRoomRequest) -> room_service_pb2.DeleteRoomResponse: ...

    async def list_participants(
        self, caller: Caller, request: room_service_pb2.ListParticipantsRequest
    ) -> room_service_pb2.ListParticipantsResponse: ...

    async def remove_participant(
        self, caller: Caller, request: room_service_pb2.RoomParticipantIdentity
    ) -> room_service_pb2.RemoveParticipantResponse: ...

    async def mute_published_track(
        self, caller: Caller, request: room_service_pb2.MuteRoomTrackRequest
    ) -> room_service_pb2.MuteRoomTrackResponse: ...

    async def get_participant(self, caller: Caller, request: room_service_pb2.RoomParticipantIdentity) -> models_pb2.ParticipantInfo: ...

    async def update_participant(
        self, caller: Caller, request: room_service_pb2.UpdateParticipantRequest
    ) -> models_pb2.ParticipantInfo: ...

    async def update_subscriptions(
        self, caller: Caller, request: room_service_pb2.UpdateSubscriptionsRequest
    ) -> room_service_pb2.UpdateSubscriptionsResponse: ...

    async def send_data(self, caller: Caller, request: room_service_pb2.SendDataRequest) -> room_service_pb2.SendDataResponse: ...

    async def update_room_metadata(self, caller: Caller, request: room_service_pb2.UpdateRoomMetadataRequest) -> models_pb2.Room: ...


def require_grant(claims: auth.Claims, grant: str, room: str = "") -> None:
    """Raises RequestError (PERMISSION_DENIED) unless the claims carry grant (for room, if roomAdmin)."""
    video = claims.video
    if not getattr(video, grant):
        raise RequestError(ErrorCode.PERMISSION_DENIED, f"token does not grant {_CLAIM_NAMES[grant]}")
    if grant == "room_admin" and not video.room:
        # As in LiveKit: an admin grant is for one room, never for all of them.
        raise RequestError(
            ErrorCode.PERMISSION_DENIED, "token grants roomAdmin but names no room; an admin token must name its room"
        )
    if grant == "room_admin" and video.room != room:
        raise RequestError(ErrorCode.PERMISSION_DENIED, f"token administers room {video.room!r}, not {room!r}")


class RoomAdmin:
    """RoomService over the rooms of this node only."""

    def __init__(self, node: MediaNode) -> None:
        self._node = node

    def hosts(self, room_name: str) -> bool:
        return room_name in self._node.rooms

    async def create_room(self, caller: Caller, request: room_service_pb2.CreateRoomRequest) -> models_pb2.Room:
        require_grant(caller.claims, "room_create")
        # proto3 cannot tell 0 from unset: a request that sets either
        # timeout is taken to set both, so "empty 5 s, departure 0" works.
        explicit = bool(request.empty_timeout or request.departure_timeout)
        room = self._node.create_room(
            request.name,
            empty_timeout=request.empty_timeout if explicit else None,
            departure_timeout=request.departure_timeout if explicit else None,
            max_participants=request.max_participants or None,
            metadata=request.metadata,
        )
        return convert.room_info(room.state())

    async def list_rooms(self, caller: Caller, request: room_service_pb2.ListRoomsRequest) -> room_service_pb2.ListRoomsResponse:
        require_grant(caller.claims, "room_list")
        names = set(request.names)
        rooms = [
            convert.room_info(room.state())
            for room in self._node.rooms.values()
            if not names or room.name in names
        ]
        return room_service_pb2.ListRoomsResponse(rooms=rooms)

    async def delete_room(self, caller: Caller, request: room_service_pb2.DeleteRoomRequest) -> room_service_pb2.DeleteRoomResponse:
        require_grant(caller.claims, "room_create")
        self._node.delete_room(request.room)
        return room_service_pb2.DeleteRoomResponse()

    async def list_participants(
        self, caller: Caller, request: room_service_pb2.ListParticipantsRequest
    ) -> room_service_pb2.ListParticipantsResponse:
        require_grant(caller.claims, "room_admin", request.room)
        room = self._room(request.room)
        return room_service_pb2.ListParticipantsResponse(
            participants=[convert.participant_info(p) for p in room.participants.values()]
        )

    async def remove_participant(
        self, caller: Caller, request: room_service_pb2.RoomParticipantIdentity
    ) -> room_service_pb2.RemoveParticipantResponse:
        require_grant(caller.claims, "room_admin", request.room)
        room = self._room(request.room)
        room.remove_participant(self._participant(room, request.identity), LeaveReason.PARTICIPANT_REMOVED)
        return room_service_pb2.RemoveParticipantResponse()

    async def mute_published_track(
        self, caller: Caller, request: room_service_pb2.MuteRoomTrackRequest
    ) -> room_service_pb2.MuteRoomTrackResponse:
        require_grant(caller.claims, "room_admin", request.room)
        participant = self._participant(self._room(request.room), request.identity)
        track = participant.set_track_muted(request.track_sid, request.muted)
        participant.sink.send_mute(track.sid, track.muted)
        return room_service_pb2.MuteRoomTrackResponse(track=convert.track_info(track))

    async def get_participant(self, caller: Caller, request: room_service_pb2.RoomParticipantIdentity) -> models_pb2.ParticipantInfo:
        require_grant(caller.claims, "room_admin", request.room)
        return convert.participant_info(self._participant(self._room(request.room), request.identity))

    async def update_participant(
        self, caller: Caller, request: room_service_pb2.UpdateParticipantRequest
    ) -> models_pb2.ParticipantInfo:
        require_grant(caller.claims, "room_admin", request.room)
        room = self._room(request.room)
        participant = self._participant(room, request.identity)
        # As in LiveKit, what is empty is left as it is: metadata cannot be cleared this way.
        room.update_participant(
            participant,
            name=request.name or None,
            metadata=request.metadata or None,
            attributes=dict(request.attributes) or None,
            permission=convert.permission_from_proto(request.permission) if request.HasField("permission") else None,
        )
        return convert.participant_info(participant)

    async def update_subscriptions(
        self, caller: Caller, request: room_service_pb2.UpdateSubscriptionsRequest
    ) -> room_service_pb2.UpdateSubscriptionsResponse:
        require_grant(caller.claims, "room_admin", request.room)
        participant = self._participant(self._room(request.room), request.identity)
        participant.update_subscriptions(list(request.track_sids), request.subscribe)
        return room_service_pb2.UpdateSubscriptionsResponse()

    async def send_data(self, caller: Caller, request: room_service_pb2.SendDataRequest) -> room_service_pb2.SendDataResponse:
        require_grant(caller.claims, "room_admin", request.room)
        room = self._room(request.room)
        # From the server: no sender, so nobody is skipped as the sender.
        message = DataMessage(
            kind=DataKind.LOSSY if request.lossy else DataKind.RELIABLE,
            sender_identity="",
            sender_sid="",
            payload=request.data,
            topic=request.topic,
            destination_identities=frozenset(request.destination_identities),
        )
        room.send_data(message)
        return room_service_pb2.SendDataResponse()

    async def update_room_metadata(self, caller: Caller, request: room_service_pb2.UpdateRoomMetadataRequest) -> models_pb2.Room:
        require_grant(caller.claims, "room_admin", request.room)
        room = self._room(request.room)
        room.set_metadata(request.metadata)
        return convert.room_info(room.state())

    def _room(self, name: str) -> Room:
        room = self._node.rooms.get(name)
        if room is None:
            raise RequestError(ErrorCode.NOT_FOUND, f"room {name!r} does not exist")
        return room

    @staticmethod
    def _participant(room: Room, identity: str) -> Participant:
        participant = room.participants.get(identity)
        if participant is None:
            raise RequestError(ErrorCode.NOT_FOUND, f"no participant {identity!r} in room {room.name!r}")
        return participant
