"""RoomService for a cluster: any node answers for rooms on any node.

Calls about one room run where the room is hosted: here, or relayed to its
node (which checks the caller's token again). ListRooms merges this node's
rooms with those of every other live node that hosts some.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import grpc

from mediapod import auth
from mediapod.protocol import relay_pb2, room_service_pb2
from mediapod.rtc.errors import RequestError
from mediapod.rtc.node import MediaNode
from mediapod.signal.grpc_service import RoomServicer, _abort
from mediapod.signal.relay import status_code

if TYPE_CHECKING:
    from mediapod.routing.redis_router import RedisRouter
    from mediapod.signal.relay import SignalRelay

log = logging.getLogger(__name__)


class RoutedRoomServicer(RoomServicer):
    """RoomServicer that sends each call to the node hosting the room."""

    def __init__(self, node: MediaNode, verifier: auth.TokenVerifier, router: RedisRouter, relay: SignalRelay) -> None:
        super().__init__(node, verifier)
        self._router = router
        self._relay = relay

    def _token(self, context: grpc.aio.ServicerContext) -> str:
        header = dict(context.invocation_metadata() or ()).get("authorization", "")
        return header[7:].strip() if isinstance(header, str) and header.lower().startswith("bearer ") else ""

    async def _remote(self, node_id: str, context: grpc.aio.ServicerContext, **call: Any) -> Any:
        try:
            reply = await self._relay.call(node_id, relay_pb2.RoomCall(token=self._token(context), **call))
        except RequestError as exc:
            await _abort(context, exc)
        if reply.code:
            await context.abort(status_code(reply.code), reply.message)
        return getattr(reply, reply.WhichOneof("reply"))

    async def _host_of(self, room: str, context: grpc.aio.ServicerContext) -> str | None:
        """The other node hosting room, or None when it is here or nowhere."""
        if not room or room in self._node.rooms:
            return None
        try:
            host = await self._router.hosting_node(room)
        except RequestError as exc:
            await _abort(context, exc)
        return host if host != self._router.node_id else None

    async def CreateRoom(self, request: room_service_pb2.CreateRoomRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        await self._require(context, "room_create")
        if request.name and request.name not in self._node.rooms:
            try:
                host = await self._router.node_for_room(request.name)
            except RequestError as exc:
                await _abort(context, exc)
            if host != self._router.node_id:
                return await self._remote(host, context, create_room=request)
        return await super().CreateRoom(request, context)

    async def ListRooms(self, request: room_service_pb2.ListRoomsRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        local = await super().ListRooms(request, context)
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

        async def ask(node_id: str, rooms: list[str]) -> list[Any]:
            call = relay_pb2.RoomCall(token=self._token(context), list_rooms=room_service_pb2.ListRoomsRequest(names=rooms))
            try:
                reply = await self._relay.call(node_id, call)
            except RequestError as exc:
                log.warning("ListRooms skips node %s: %s", node_id, exc.message)
                return []
            return list(reply.rooms.rooms) if not reply.code else []

        found = await asyncio.gather(*(ask(n, rooms) for n, rooms in sorted(by_node.items())))
        seen = {room.name for room in local.rooms}
        merged = list(local.rooms) + [room for rooms in found for room in rooms if room.name not in seen]
        return room_service_pb2.ListRoomsResponse(rooms=merged)

    async def DeleteRoom(self, request: room_service_pb2.DeleteRoomRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        host = await self._host_of(request.room, context)
        if host is not None:
            return await self._remote(host, context, delete_room=request)
        return await super().DeleteRoom(request, context)

    async def ListParticipants(self, request: room_service_pb2.ListParticipantsRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        host = await self._host_of(request.room, context)
        if host is not None:
            return await self._remote(host, context, list_participants=request)
        return await super().ListParticipants(request, context)

    async def RemoveParticipant(self, request: room_service_pb2.RoomParticipantIdentity, context: grpc.aio.ServicerContext):  # noqa: N802
        host = await self._host_of(request.room, context)
        if host is not None:
            return await self._remote(host, context, remove_participant=request)
        return await super().RemoveParticipant(request, context)

    async def MutePublishedTrack(self, request: room_service_pb2.MuteRoomTrackRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        host = await self._host_of(request.room, context)
        if host is not None:
            return await self._remote(host, context, mute_published_track=request)
        return await super().MutePublishedTrack(request, context)
