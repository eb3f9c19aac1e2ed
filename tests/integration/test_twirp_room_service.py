"""LiveKit's RoomService over Twirp against a real media pod: every method through livekit-api, with its effect.

The caller is LiveKit's own server SDK (livekit-api), which speaks Twirp in
protobuf; the participants are our gRPC clients, so each effect (a metadata
update, a room update, a mute, a removal, a deleted room) is judged by what
a connected client receives. One call goes in JSON, and bad requests get
Twirp's errors, as aiohttp sees them on the wire.
"""

from __future__ import annotations

import asyncio
import secrets

import pytest
from aiortc.mediastreams import AudioStreamTrack
from livekit import api
from livekit.protocol import models as lk_models

from mediapod import client
from mediapod.auth import AccessToken, VideoGrant
from mediapod.config import DEV_API_KEY
from mediapod.protocol import signal_pb2
from tests.support.mediapod_process import MediaPodProcess
from tests.support.twirp import post


def got_room_update(session: client.Session, metadata: str) -> bool:
    return any(m.WhichOneof("message") == "room_update" and m.room_update.room.metadata == metadata for m in session.messages)


def data_messages_handled(pod: MediaPodProcess) -> float:
    return pod.metric("switchboard_data_packets_forwarded_total") + pod.metric("switchboard_data_packets_dropped_total")


async def test_every_room_service_method_through_livekit_api_has_its_effect(
    media_pod: MediaPodProcess, livekit_api: api.LiveKitAPI
) -> None:
    rooms = livekit_api.room
    name = f"twirp-{secrets.token_hex(3)}"
    created = await rooms.create_room(api.CreateRoomRequest(name=name, metadata="first", empty_timeout=30))
    assert (created.name, created.metadata, created.empty_timeout) == (name, "first", 30) and created.sid
    listed = await rooms.list_rooms(api.ListRoomsRequest(names=[name]))
    assert [r.name for r in listed.rooms] == [name]

    alice = await client.connect(media_pod.grpc_target, media_pod.token(name, "alice"))
    bob = await client.connect(media_pod.grpc_target, media_pod.token(name, "bob"))
    try:
        track = await alice.publish(AudioStreamTrack())
        await bob.wait_for_tracks(1)
        participants = await rooms.list_participants(api.ListParticipantsRequest(room=name))
        assert sorted(p.identity for p in participants.participants) == ["alice", "bob"]
        got = await rooms.get_participant(api.RoomParticipantIdentity(room=name, identity="alice"))
        assert (got.sid, [t.sid for t in got.tracks], got.tracks[0].type) == (alice.participant_sid, [track.sid], lk_models.AUDIO)

        updated = await rooms.update_participant(
            api.UpdateParticipantRequest(room=name, identity="alice", metadata="on stage", attributes={"role": "host"})
        )
        assert (updated.metadata, dict(updated.attributes)) == ("on stage", {"role": "host"})
        await bob.wait_for(lambda s: s.participants[alice.participant_sid].metadata == "on stage", timeout=5)
        await alice.wait_for(lambda s: dict(s.participant.attributes) == {"role": "host"}, timeout=5)

        room = await rooms.update_room_metadata(api.UpdateRoomMetadataRequest(room=name, metadata="agenda"))
        assert (room.metadata, room.num_participants) == ("agenda", 2)
        for session in (alice, bob):
            await session.wait_for(lambda s: got_room_update(s, "agenda"), timeout=5)

        muted = await rooms.mute_published_track(
            api.MuteRoomTrackRequest(room=name, identity="alice", track_sid=track.sid, muted=True)
        )
        assert muted.track.muted
        await alice.wait_for(lambda s: any(m.WhichOneof("message") == "mute" and m.mute.muted for m in s.messages), timeout=5)
        await bob.wait_for(lambda s: s.participants[alice.participant_sid].tracks[0].muted, timeout=5)

        await rooms.update_subscriptions(
            api.UpdateSubscriptionsRequest(room=name, identity="bob", track_sids=[track.sid], subscribe=False)
        )
        await bob.wait_for(lambda s: not s.remote_tracks, timeout=5)
        await rooms.update_subscriptions(
            api.UpdateSubscriptionsRequest(room=name, identity="bob", track_sids=[track.sid], subscribe=True)
        )
        await bob.wait_for_tracks(1)

        # Our gRPC clients open no data channels: the packet reaches each recipient's
        # data path (delivered or counted as dropped there), not their application.
        before = data_messages_handled(media_pod)
        await rooms.send_data(api.SendDataRequest(room=name, data=b"hello", topic="chat", destination_identities=["bob"]))
        assert data_messages_handled(media_pod) == before + 1

        await rooms.remove_participant(api.RoomParticipantIdentity(room=name, identity="bob"))
        await asyncio.wait_for(bob.closed.wait(), 5)
        assert bob.leave_reason == signal_pb2.LeaveRequest.PARTICIPANT_REMOVED

        await rooms.delete_room(api.DeleteRoomRequest(room=name))
        await asyncio.wait_for(alice.closed.wait(), 5)
        assert alice.leave_reason == signal_pb2.LeaveRequest.ROOM_DELETED
        assert not (await rooms.list_rooms(api.ListRoomsRequest(names=[name]))).rooms
    finally:
        await bob.close()
        await alice.close()
    for method in ("CreateRoom", "UpdateParticipant", "SendData", "DeleteRoom"):
        assert media_pod.metric("switchboard_twirp_calls_total", method=method, code="ok") >= 1


async def test_json_calls_and_bad_requests_get_twirp_answers(media_pod: MediaPodProcess) -> None:
    name = f"twirp-{secrets.token_hex(3)}"
    admin = media_pod.admin_token(name)
    status, created = await post(media_pod, "CreateRoom", b'{"name": "%s", "metadata": "m"}' % name.encode(), "application/json", admin)
    assert (status, created["name"], created["metadata"]) == (200, name, "m")
    status, listed = await post(media_pod, "ListRooms", b"{}", "application/json", admin)
    assert status == 200 and name in [r["name"] for r in listed["rooms"]]  # type: ignore[union-attr]

    forged = AccessToken(DEV_API_KEY, "not-the-secret-" * 3).with_grant(VideoGrant(room_list=True)).to_jwt()
    status, body = await post(media_pod, "ListRooms", b"{}", "application/json", forged)
    assert (status, body["code"]) == (401, "unauthenticated") and body["msg"]
    participant = media_pod.token(name, "alice")  # may join, may not administer
    status, body = await post(media_pod, "ListParticipants", b'{"room": "%s"}' % name.encode(), "application/json", participant)
    assert (status, body["code"]) == (403, "permission_denied") and "roomAdmin" in str(body["msg"])
    status, body = await post(media_pod, "ListRooms", b"\xff\xff\xff", "application/protobuf", admin)
    assert (status, body["code"]) == (400, "malformed")
    status, body = await post(media_pod, "ListRooms", b'{"names": ', "application/json", admin)
    assert (status, body["code"]) == (400, "malformed")
    status, body = await post(media_pod, "ForwardParticipant", b"", "application/protobuf", admin)
    assert (status, body["code"]) == (404, "bad_route")

    async with api.LiveKitAPI(media_pod.http_url, DEV_API_KEY, "wrong-secret-" * 3, failover=False) as wrong:
        with pytest.raises(api.TwirpError) as refused:
            await wrong.room.list_rooms(api.ListRoomsRequest())
    assert (refused.value.code, refused.value.status) == ("unauthenticated", 401)
    assert "Traceback" not in media_pod.log_text()
    assert media_pod.metric("switchboard_twirp_calls_total", method="ListRooms", code="malformed") == 2
