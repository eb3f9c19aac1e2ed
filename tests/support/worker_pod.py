"""A `switchboard-media --workers N` process on one Redis, and what tests read of its workers."""

from __future__ import annotations

import re

import grpc
from livekit import api

from mediapod.config import DEV_API_KEY, DEV_API_SECRET
from mediapod.protocol import room_service_pb2, room_service_pb2_grpc
from tests.support.mediapod_process import MediaPodProcess


def worker_pids(pod: MediaPodProcess) -> dict[str, int]:
    """Worker node id -> pid of its latest process, from the supervisor's log."""
    return {node: int(pid) for node, pid in re.findall(r"worker (\S+) started \(pid (\d+)\)", pod.log_text())}


def _admin(pod: MediaPodProcess) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {pod.admin_token()}"),)


async def create_room(pod: MediaPodProcess, name: str) -> str:
    """CreateRoom through the pod's shared gRPC port; the id of the worker chosen to host it."""
    async with grpc.aio.insecure_channel(pod.grpc_target) as channel:
        rooms = room_service_pb2_grpc.RoomServiceStub(channel)
        room = await rooms.CreateRoom(room_service_pb2.CreateRoomRequest(name=name), metadata=_admin(pod))
    return room.node_id


async def list_rooms(pod: MediaPodProcess) -> set[str]:
    """Twirp ListRooms through the pod's shared HTTP port, with LiveKit's own server SDK."""
    lkapi = api.LiveKitAPI(pod.http_url, DEV_API_KEY, DEV_API_SECRET, failover=False)
    try:
        return {room.name for room in (await lkapi.room.list_rooms(api.ListRoomsRequest())).rooms}
    finally:
        await lkapi.aclose()
