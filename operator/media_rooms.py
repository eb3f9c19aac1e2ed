"""The operator's calls to media pods: their RoomService over gRPC, with an admin token.

The operator talks to the node that hosts a room directly (its address and
gRPC port come from its entry in Redis `nodes`), so a call never depends on a
relay through a third node. Every call has a timeout; failures surface as
:class:`MediaPodError` and the caller decides whether to retry.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

import grpc

from mediapod.auth import AccessToken, VideoGrant
from mediapod.protocol import (
    models_pb2,
    node_pb2,
    room_service_pb2,
    room_service_pb2_grpc,
)
from sfu_operator.scheduler import LiveRoom, RoomSpec

# Long enough to outlive any call, short enough that a leaked one is useless.
TOKEN_TTL = timedelta(minutes=5)


class MediaPodError(Exception):
    """A media pod could not be reached or refused a call."""


class MediaRooms:
    """RoomService clients for every media node, one gRPC channel per address."""

    def __init__(self, api_key: str, api_secret: str, timeout: float = 2.0) -> None:
        self._token = AccessToken(api_key, api_secret).with_ttl(TOKEN_TTL)
        self._timeout = timeout
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _stub(self, node: node_pb2.Node) -> room_service_pb2_grpc.RoomServiceStub:
        target = f"{node.ip}:{node.grpc_port}"
        channel = self._channels.get(target)
        if channel is None:
            channel = self._channels[target] = grpc.aio.insecure_channel(target)
        return room_service_pb2_grpc.RoomServiceStub(channel)

    def _metadata(self, room: str = "") -> tuple[tuple[str, str]]:
        """Call credentials: room creation and listing, and administration of ``room`` only.

        As in LiveKit, a roomAdmin grant is only honoured for the room it
        names, so calls about one room carry a token minted for it.
        """
        grant = VideoGrant(room_create=True, room_list=True, room_admin=bool(room), room=room)
        return (("authorization", f"Bearer {self._token.with_grant(grant).to_jwt()}"),)

    async def live_rooms(self, node: node_pb2.Node) -> dict[str, LiveRoom]:
        """The rooms a node hosts, with participant, publisher and track counts."""
        stub = self._stub(node)
        try:
            listed = await stub.ListRooms(room_service_pb2.ListRoomsRequest(), metadata=self._metadata(), timeout=self._timeout)
            rooms: dict[str, LiveRoom] = {}
            for room in listed.rooms:
                if room.node_id and room.node_id != node.id:
                    continue  # a relayed answer about another node's room
                tracks = 0
                if room.num_participants:
                    tracks = await self._tracks(stub, room)
                spec = RoomSpec(room.max_participants, room.empty_timeout, room.departure_timeout, metadata=room.metadata)
                rooms[room.name] = LiveRoom(node.id, room.num_participants, room.num_publishers, tracks, spec)
        except grpc.aio.AioRpcError as exc:
            raise MediaPodError(f"ListRooms on node {node.id}: {exc.code().name} {exc.details()}") from None
        return rooms

    async def _tracks(self, stub: room_service_pb2_grpc.RoomServiceStub, room: models_pb2.Room) -> int:
        try:
            listed = await stub.ListParticipants(
                room_service_pb2.ListParticipantsRequest(room=room.name),
                metadata=self._metadata(room.name),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return 0  # closed between the two calls
            raise
        return sum(len(p.tracks) for p in listed.participants)

    async def create_room(self, node: node_pb2.Node, name: str, spec: RoomSpec) -> None:
        """Create the room on the node with the Room's settings (a no-op if it exists there)."""
        request = room_service_pb2.CreateRoomRequest(
            name=name,
            empty_timeout=spec.empty_timeout,
            departure_timeout=spec.departure_timeout,
            max_participants=spec.max_participants,
            metadata=spec.metadata,
        )
        try:
            await self._stub(node).CreateRoom(request, metadata=self._metadata(), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise MediaPodError(f"CreateRoom {name} on node {node.id}: {exc.code().name} {exc.details()}") from None

    async def delete_room(self, node: node_pb2.Node, name: str) -> bool:
        """Close the room on the node (participants are told, media stops); False if it was not there."""
        try:
            await self._stub(node).DeleteRoom(
                room_service_pb2.DeleteRoomRequest(room=name), metadata=self._metadata(), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return False
            raise MediaPodError(f"DeleteRoom {name} on node {node.id}: {exc.code().name} {exc.details()}") from None
        return True

    async def close(self) -> None:
        for channel in self._channels.values():
            with contextlib.suppress(Exception):
                await channel.close()
        self._channels.clear()
