"""Signaling sessions and the RoomService against a real media pod and aiortc peers."""

from __future__ import annotations

import asyncio
import secrets

import grpc
import pytest
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from mediapod import client
from mediapod.protocol import room_service_pb2, room_service_pb2_grpc, signal_pb2
from tests.support.mediapod_process import MediaPodProcess
from tests.support.peers import count_frames


def room_name() -> str:
    return f"room-{secrets.token_hex(3)}"


def admin(pod: MediaPodProcess, room: str = "") -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {pod.admin_token(room)}"),)


async def test_explicit_subscribe_and_unsubscribe_without_auto_subscribe(media_pod: MediaPodProcess) -> None:
    room = room_name()
    async with await client.connect(media_pod.grpc_target, media_pod.token(room, "pub")) as publisher:
        info = await publisher.publish(VideoStreamTrack())
        async with await client.connect(
            media_pod.grpc_target, media_pod.token(room, "picky"), auto_subscribe=False
        ) as picky:
            await picky.wait_for(lambda s: any(p.tracks for p in s.participants.values()))
            await asyncio.sleep(0.5)
            assert not picky.remote_tracks, "nothing is sent before an explicit subscription"

            await picky.subscribe([info.sid])
            [remote] = await picky.wait_for_tracks(1)
            assert remote.sid == info.sid
            assert (await count_frames([remote], {"video": 5}, timeout=10))["video"] == 5

            await picky.subscribe([info.sid], subscribe=False)
            await picky.wait_for(lambda s: not s.remote_tracks)

            with pytest.raises(client.RequestFailed) as unknown:
                await picky.request(
                    signal_pb2.SignalRequest(subscription=signal_pb2.UpdateSubscription(track_sids=["TR_nope"], subscribe=True)),
                    expect="never",
                    timeout=5,
                )
            assert unknown.value.code == grpc.StatusCode.NOT_FOUND


async def test_duplicate_identity_replaces_the_older_session(media_pod: MediaPodProcess) -> None:
    room = room_name()
    first = await client.connect(media_pod.grpc_target, media_pod.token(room, "same"))
    second = await client.connect(media_pod.grpc_target, media_pod.token(room, "same"))
    try:
        await asyncio.wait_for(first.closed.wait(), 5)
        assert first.leave_reason == signal_pb2.LeaveRequest.DUPLICATE_IDENTITY
        assert not second.closed.is_set()
    finally:
        await first.close()
        await second.leave()


async def test_room_service_needs_a_token_with_the_right_grant(media_pod: MediaPodProcess) -> None:
    async with grpc.aio.insecure_channel(media_pod.grpc_target) as channel:
        rooms = room_service_pb2_grpc.RoomServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await rooms.ListRooms(room_service_pb2.ListRoomsRequest())
        assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED

        participant_token = media_pod.token("r", "someone")
        with pytest.raises(grpc.aio.AioRpcError) as no_grant:
            await rooms.ListRooms(
                room_service_pb2.ListRoomsRequest(), metadata=(("authorization", f"Bearer {participant_token}"),)
            )
        assert no_grant.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "roomList" in (no_grant.value.details() or "")

        with pytest.raises(grpc.aio.AioRpcError) as garbage:
            await rooms.ListRooms(room_service_pb2.ListRoomsRequest(), metadata=(("authorization", "Bearer a.b.c"),))
        assert garbage.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_remove_participant_and_delete_room_disconnect_clients(media_pod: MediaPodProcess) -> None:
    room = room_name()
    async with grpc.aio.insecure_channel(media_pod.grpc_target) as channel:
        rooms = room_service_pb2_grpc.RoomServiceStub(channel)
        kicked = await client.connect(media_pod.grpc_target, media_pod.token(room, "kicked"))
        stays = await client.connect(media_pod.grpc_target, media_pod.token(room, "stays"))
        await rooms.RemoveParticipant(
            room_service_pb2.RoomParticipantIdentity(room=room, identity="kicked"), metadata=admin(media_pod, room)
        )
        await asyncio.wait_for(kicked.closed.wait(), 5)
        assert kicked.leave_reason == signal_pb2.LeaveRequest.PARTICIPANT_REMOVED

        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await rooms.RemoveParticipant(
                room_service_pb2.RoomParticipantIdentity(room=room, identity="kicked"), metadata=admin(media_pod, room)
            )
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND

        await rooms.DeleteRoom(room_service_pb2.DeleteRoomRequest(room=room), metadata=admin(media_pod, room))
        await asyncio.wait_for(stays.closed.wait(), 5)
        assert stays.leave_reason == signal_pb2.LeaveRequest.ROOM_DELETED
        listing = await rooms.ListRooms(room_service_pb2.ListRoomsRequest(), metadata=admin(media_pod, room))
        assert room not in [r.name for r in listing.rooms]
        await kicked.close()
        await stays.close()


async def test_muting_a_published_track_stops_its_forwarding(media_pod: MediaPodProcess) -> None:
    room = room_name()
    async with await client.connect(media_pod.grpc_target, media_pod.token(room, "pub")) as publisher:
        info = await publisher.publish(AudioStreamTrack())
        async with await client.connect(media_pod.grpc_target, media_pod.token(room, "sub")) as subscriber:
            tracks = await subscriber.wait_for_tracks(1)
            await count_frames(tracks, {"audio": 20}, timeout=10)
            async with grpc.aio.insecure_channel(media_pod.grpc_target) as channel:
                rooms = room_service_pb2_grpc.RoomServiceStub(channel)
                muted = await rooms.MutePublishedTrack(
                    room_service_pb2.MuteRoomTrackRequest(room=room, identity="pub", track_sid=info.sid, muted=True),
                    metadata=admin(media_pod, room),
                )
                assert muted.track.muted
                await subscriber.wait_for(lambda s: all(t.muted for p in s.participants.values() for t in p.tracks))
                await asyncio.sleep(0.3)
                before = media_pod.metric("switchboard_rtp_packets_forwarded_total")
                await asyncio.sleep(1.0)
                assert media_pod.metric("switchboard_rtp_packets_forwarded_total") == before

                await rooms.MutePublishedTrack(
                    room_service_pb2.MuteRoomTrackRequest(room=room, identity="pub", track_sid=info.sid, muted=False),
                    metadata=admin(media_pod, room),
                )
                await asyncio.sleep(1.0)
                assert media_pod.metric("switchboard_rtp_packets_forwarded_total") > before


async def test_garbage_bytes_on_the_signal_stream_do_not_hurt_the_pod(media_pod: MediaPodProcess) -> None:
    async with grpc.aio.insecure_channel(media_pod.grpc_target) as channel:
        raw = channel.stream_stream(
            "/switchboard.v1.Signal/Connect", request_serializer=lambda b: b, response_deserializer=lambda b: b
        )
        call = raw()
        await call.write(secrets.token_bytes(64) + b"\xff\xff\xff\xff\x0f")
        with pytest.raises(grpc.aio.AioRpcError):
            await asyncio.wait_for(call.read(), 5)
    session = await client.connect(media_pod.grpc_target, media_pod.token(room_name(), "after"))
    await session.leave()


async def test_a_new_track_reuses_the_m_line_of_a_track_that_left(media_pod: MediaPodProcess) -> None:
    room = room_name()
    async with await client.connect(media_pod.grpc_target, media_pod.token(room, "viewer")) as viewer:
        for generation in range(3):
            publisher = await client.connect(media_pod.grpc_target, media_pod.token(room, f"pub-{generation}"))
            info = await publisher.publish(VideoStreamTrack())
            await viewer.wait_for(lambda s: info.sid in s.remote_tracks)
            remote = viewer.remote_tracks[info.sid]
            assert (await count_frames([remote], {"video": 5}, timeout=10))["video"] == 5
            await publisher.leave()
            await viewer.wait_for(lambda s: info.sid not in s.remote_tracks)
        offer = viewer.subscriber_pc.remoteDescription.sdp
        assert offer.count("m=video") == 1, "three tracks in turn shared one m-line"
