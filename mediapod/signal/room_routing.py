"""RoomService for a cluster: any node answers for rooms on any node.

Calls about one room run where the room is hosted: here, or sent as a
RoomCall to its node (which checks the caller's token again). ListRooms
merges this node's rooms with those of every other live node that hosts some.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from google.protobuf.message import Message

from mediapod.protocol import models_pb2, relay_pb2, room_service_pb2
from mediapod.rtc.errors import RequestError
from mediapod.signal.access import Caller
from mediapod.signal.room_admin import RoomAdmin, require_grant
from mediapod.signal.status import error_code

log = logging.getLogger(__name__)

Reply = TypeVar("Reply", bound=Message)

# Runs a RoomCall on another node (SignalRelay.call); raises RequestError when it cannot be reached.
CallNode = Callable[[str, relay_pb2.RoomCall], Awaitable[relay_pb2.RoomReply]]


class RoomLocator(Protocol):
    """What routed room calls need of the router: which node hosts which room."""

    @property
    def node_id(self) -> str: ...

    async def node_for_room(self, room_name: str) -> str: ...

    async def hosting_node(self, room_name: str) -> str | None: ...

    async def room_nodes(self) -> dict[str, str]: ...


class RoutedRoomAdmin:
    """RoomService that runs each call on the node hosting its room."""

    def __init__(self, local: RoomAdmin, router: RoomLocator, call_node: CallNode) -> None:
        self._local = local
        self._router = router
        self._call_node = call_node

    async def create_room(self, caller: Caller, request: room_service_pb2.CreateRoomRequest) -> models_pb2.Room:
        require_grant(caller.claims, "room_create")
        if request.name and not self._local.hosts(request.name):
            host = await self._router.node_for_room(request.name)
            if host != self._router.node_id:
                return await self._remote(host, caller, create_room=request)
        return await self._local.create_room(caller, request)

    async def list_rooms(self, caller: Caller, request: room_service_pb2.ListRoomsRequest) -> room_service_pb2.ListRoomsResponse:
        local = await self._local.list_rooms(caller, request)
        try:
            mapping = await self._router.room_nodes()
        except RequestError as exc:
            log.warning("ListRooms answers with this node's rooms only: %s", exc.message)
            return local
        wanted = set(request.names)
        by_node: dict[str, list[str]] = defaultdict(list)
        for room, node_id in mapping.items():
            if node_id != self._router.node_id and (not wanted or room in wanted):
                by_node[node_id].append(room)

        async def ask(node_id: str, rooms: list[str]) -> list[models_pb2.Room]:
            call = relay_pb2.RoomCall(token=caller.token, list_rooms=room_service_pb2.ListRoomsRequest(names=rooms))
            try:
                reply = await self._call_node(node_id, call)
            except RequestError as exc:
                log.warning("ListRooms skips node %s: %s", node_id, exc.message)
                return []
            return list(reply.rooms.rooms) if not reply.code else []

        found = await asyncio.gather(*(ask(n, rooms) for n, rooms in sorted(by_node.items())))
        seen = {room.name for room in local.rooms}
        merged = list(local.rooms) + [room for rooms in found for room in rooms if room.name not in seen]
        return room_service_pb2.ListRoomsResponse(rooms=merged)

    async def delete_room(self, caller: Caller, request: room_service_pb2.DeleteRoomRequest) -> room_service_pb2.DeleteRoomResponse:
        return await self._at_host(caller, request.room, "delete_room", request, self._local.delete_room)

    async def list_participants(
        self, caller: Caller, request: room_service_pb2.ListParticipantsRequest
    ) -> room_service_pb2.ListParticipantsResponse:
        return await self._at_host(caller, request.room, "list_participants", request, self._local.list_participants)

    async def remove_participant(
        self, caller: Caller, request: room_service_pb2.RoomParticipantIdentity
    ) -> room_service_pb2.RemoveParticipantResponse:
        return await self._at_host(caller, request.room, "remove_participant", request, self._local.remove_participant)

    async def mute_published_track(
        self, caller: Caller, request: room_service_pb2.MuteRoomTrackRequest
    ) -> room_service_pb2.MuteRoomTrackResponse:
        return await self._at_host(caller, request.room, "mute_published_track", request, self._local.mute_published_track)

    async def get_participant(self, caller: Caller, request: room_service_pb2.RoomParticipantIdentity) -> models_pb2.ParticipantInfo:
        return await self._at_host(caller, request.room, "get_participant", request, self._local.get_participant)

    async def update_participant(
        self, caller: Caller, request: room_service_pb2.UpdateParticipantRequest
    ) -> models_pb2.ParticipantInfo:
        return await self._at_host(caller, request.room, "update_participant", request, self._local.update_participant)

    async def update_subscriptions(
        self, caller: Caller, request: room_service_pb2.UpdateSubscriptionsRequest
    ) -> room_service_pb2.UpdateSubscriptionsResponse:
        return await self._at_host(caller, request.room, "update_subscriptions", request, self._local.update_subscriptions)

    async def send_data(self, caller: Caller, request: room_service_pb2.SendDataRequest) -> room_service_pb2.SendDataResponse:
        return await self._at_host(caller, request.room, "send_data", request, self._local.send_data)

    async def update_room_metadata(self, caller: Caller, request: room_service_pb2.UpdateRoomMetadataRequest) -> models_pb2.Room:
        return await self._at_host(caller, request.room, "update_room_metadata", request, self._local.update_room_metadata)

    async def _at_host(
        self, caller: Caller, room: str, call: str, request: Message, local: Callable[[Caller, Any], Awaitable[Reply]]
    ) -> Reply:
        """Run a call about one room where the room is: as RoomCall field ``call`` on its node, or here."""
        host = await self._host_of(room)
        if host is not None:
            reply: Reply = await self._remote(host, caller, **{call: request})
            return reply
        return await local(caller, request)

    async def _host_of(self, room: str) -> str | None:
        """The other node hosting room, or None when it is here or nowhere."""
        if not room or self._local.hosts(room):
            return None
        host = await self._router.hosting_node(room)
        return host if host != self._router.node_id else None

    async def _remote(self, node_id: str, caller: Caller, **call: Any) -> Any:
        """Run one call on node_id; its reply's payload, or its refusal raised as RequestError."""
        reply = await self._call_node(node_id, relay_pb2.RoomCall(token=caller.token, **call))
        if reply.code:
            raise RequestError(error_code(reply.code), reply.message)
        return getattr(reply, reply.WhichOneof("reply"))
