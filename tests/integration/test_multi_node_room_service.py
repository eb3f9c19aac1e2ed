"""RoomService from any node for rooms on any node, and relayed sessions ending cleanly."""

from __future__ import annotations

import asyncio
import secrets
import signal
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from aiortc.mediastreams import VideoStreamTrack
from redis.asyncio import Redis

from mediapod import client
from mediapod.protocol import room_service_pb2, room_service_pb2_grpc, signal_pb2
from mediapod.routing import registry
from tests.support.mediapod_process import MediaPodProcess
from tests.support.redis_server import RedisServer



@pytest.fixture
def pods(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[MediaPodProcess]]:
    env = {
        "SWITCHBOARD_REDIS__ADDRESS": redis_server.address,
        "SWITCHBOARD_ROUTING__HEARTBEAT_INTERVAL": "1",
        "SWITCHBOARD_ROUTING__STALE_TIMEOUT": "3",
        "SWITCHBOARD_ROOM__DEPARTURE_TIMEOUT": "1",
    }
    log_dir = str(tmp_path_factory.mktemp("nodes"))
    started = [MediaPodProcess(node_id=name, env=env).start(log_dir) for name in ("node-x", "node-y")]
    yield started
    for pod in started:
        pod.stop(signal.SIGINT)


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    connection = Redis.from_url(redis_server.url)
    yield connection
    await connection.aclose()


def admin(pod: MediaPodProcess, room: str = "") -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {pod.admin_token(room)}"),)


async def test_room_service_calls_work_from_any_node_for_rooms_on_any_node(pods: list[MediaPodProcess], redis: Redis) -> None:
    room = f"room-{secrets.token_hex(3)}"
    async with grpc.aio.insecure_channel(pods[0].grpc_target) as first, grpc.aio.insecure_channel(pods[1].grpc_target) as second:
        stubs = {pods[0].node_id: room_service_pb2_grpc.RoomServiceStub(first), pods[1].node_id: room_service_pb2_grpc.RoomServiceStub(second)}
        created = await stubs["node-x"].CreateRoom(room_service_pb2.CreateRoomRequest(name=room), metadata=admin(pods[0], room))
        host = created.node_id
        other = next(p for p in pods if p.node_id != host)
        remote = stubs[other.node_id]  # a node that does not host the room

        async with await client.connect(other.grpc_target, other.token(room, "pub")) as publisher:
            info = await publisher.publish(VideoStreamTrack())
            watcher = await client.connect(other.grpc_target, other.token(room, "watcher"))

            for stub in stubs.values():
                listed = await stub.ListRooms(room_service_pb2.ListRoomsRequest(), metadata=admin(other, room))
                assert [(r.name, r.node_id, r.num_participants) for r in listed.rooms] == [(room, host, 2)]
            people = await remote.ListParticipants(room_service_pb2.ListParticipantsRequest(room=room), metadata=admin(other, room))
            assert sorted(p.identity for p in people.participants) == ["pub", "watcher"]

            muted = await remote.MutePublishedTrack(
                room_service_pb2.MuteRoomTrackRequest(room=room, identity="pub", track_sid=info.sid, muted=True),
                metadata=admin(other, room),
            )
            assert muted.track.muted

            await remote.RemoveParticipant(room_service_pb2.RoomParticipantIdentity(room=room, identity="watcher"), metadata=admin(other, room))
            await asyncio.wait_for(watcher.closed.wait(), 5)
            assert watcher.leave_reason == signal_pb2.LeaveRequest.PARTICIPANT_REMOVED

            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await remote.RemoveParticipant(room_service_pb2.RoomParticipantIdentity(room=room, identity="nobody"), metadata=admin(other, room))
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND

            await remote.DeleteRoom(room_service_pb2.DeleteRoomRequest(room=room), metadata=admin(other, room))
            await asyncio.wait_for(publisher.closed.wait(), 5)
            assert publisher.leave_reason == signal_pb2.LeaveRequest.ROOM_DELETED

        for _ in range(25):
            if await redis.hget(registry.ROOM_NODE_MAP, room) is None:
                break
            await asyncio.sleep(0.2)
        assert await redis.hget(registry.ROOM_NODE_MAP, room) is None
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await remote.ListParticipants(room_service_pb2.ListParticipantsRequest(room=room), metadata=admin(other, room))
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_relayed_room_calls_are_authorized_on_the_host(pods: list[MediaPodProcess]) -> None:
    room = f"room-{secrets.token_hex(3)}"
    async with grpc.aio.insecure_channel(pods[0].grpc_target) as channel:
        stub = room_service_pb2_grpc.RoomServiceStub(channel)
        created = await stub.CreateRoom(room_service_pb2.CreateRoomRequest(name=room), metadata=admin(pods[0], room))
    other = next(p for p in pods if p.node_id != created.node_id)
    async with grpc.aio.insecure_channel(other.grpc_target) as channel:
        stub = room_service_pb2_grpc.RoomServiceStub(channel)
        participant_token = (("authorization", f"Bearer {other.token(room, 'someone')}"),)
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await stub.ListParticipants(room_service_pb2.ListParticipantsRequest(room=room), metadata=participant_token)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "roomAdmin" in (denied.value.details() or "")


async def test_leaving_through_the_edge_removes_the_participant_on_the_host(pods: list[MediaPodProcess]) -> None:
    room = f"room-{secrets.token_hex(3)}"
    async with grpc.aio.insecure_channel(pods[0].grpc_target) as channel:
        stub = room_service_pb2_grpc.RoomServiceStub(channel)
        host = (await stub.CreateRoom(room_service_pb2.CreateRoomRequest(name=room), metadata=admin(pods[0], room))).node_id
    host_pod = next(p for p in pods if p.node_id == host)
    edge = next(p for p in pods if p.node_id != host)
    staying = await client.connect(host_pod.grpc_target, host_pod.token(room, "staying"))
    leaving = await client.connect(edge.grpc_target, edge.token(room, "leaving"))
    await staying.wait_for(lambda s: leaving.participant_sid in s.participants)
    hung_up = await client.connect(edge.grpc_target, edge.token(room, "hung-up"))
    await staying.wait_for(lambda s: hung_up.participant_sid in s.participants)

    await leaving.leave()
    await hung_up.close()  # no LeaveRequest: the stream just goes away
    await staying.wait_for(lambda s: not s.participants, timeout=5)
    assert host_pod.metric("switchboard_participants") == 1
    await staying.leave()


async def test_a_host_restarted_under_the_same_id_ends_the_sessions_it_forgot(
    pods: list[MediaPodProcess], tmp_path_factory: pytest.TempPathFactory
) -> None:
    room = f"room-{secrets.token_hex(3)}"
    async with grpc.aio.insecure_channel(pods[0].grpc_target) as channel:
        stub = room_service_pb2_grpc.RoomServiceStub(channel)
        host = (await stub.CreateRoom(room_service_pb2.CreateRoomRequest(name=room), metadata=admin(pods[0], room))).node_id
    host_pod = next(p for p in pods if p.node_id == host)
    edge = next(p for p in pods if p.node_id != host)
    session = await client.connect(edge.grpc_target, edge.token(room, "orphan"))

    host_pod.kill()
    reborn = MediaPodProcess(node_id=host, env=host_pod.env).start(str(tmp_path_factory.mktemp("reborn")))
    pods.append(reborn)  # stopped by the fixture
    # The new process heartbeats under the old id, so only the relay can notice.
    await session.send(signal_pb2.SignalRequest(ping=signal_pb2.Ping(timestamp=1)))
    await asyncio.wait_for(session.closed.wait(), 5)
    assert "no such session" in session.close_reason
    await session.close()
