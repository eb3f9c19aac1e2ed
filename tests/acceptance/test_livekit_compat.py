"""Issue 10 (livekit_compat): LiveKit's own client SDKs join a media pod unmodified.

One test per item of the issue's "What it must show", against a real media
pod process. The peers are LiveKit's `livekit` Python SDK (its Rust core and
libwebrtc) with tokens from `livekit-api`; what they decode is the oracle.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError, VideoStreamTrack
from livekit import api, rtc
from livekit.protocol import models as lk_models
from livekit.protocol import rtc as lk
from livekit.rtc.participant import PublishTrackError

from mediapod import client
from mediapod.client import RemoteTrack
from mediapod.config import DEV_API_KEY, DEV_API_SECRET
from tests.support.audio import ToneTrack
from tests.support.bystander import Bystander
from tests.support.livekit_browser import LiveKitBrowser, LiveKitPage
from tests.support.livekit_sdk import (
    TONE_RMS_THRESHOLD,
    DataInbox,
    ReceivedData,
    RoomEvents,
    SdkClient,
    sdk_token,
    ws_url,
)
from tests.support.mediapod_process import MediaPodProcess
from tests.support.proxied_pods import ProxiedPods
from tests.support.redis_server import RedisServer
from tests.support import readme
from tests.support.first_hour import VENV_BIN, busy_port_errors, sbctl_join
from tests.support.first_hour import dev_pod as first_hour_dev_pod
from tests.support.peers import count_frames
from tests.support.twirp import post

FRAMES = {"audio": 200, "video": 50}
RECEIVE_WITHIN = 10.0


async def wait_for_frames(client: SdkClient, audio: int, video: int, within: float) -> None:
    deadline = time.monotonic() + within
    reception = client.reception
    while time.monotonic() < deadline and (reception.tone_frames < audio or reception.video_frames < video):
        await asyncio.sleep(0.1)


async def test_item1_python_sdk_clients_exchange_audio_and_video(media_pod: MediaPodProcess) -> None:
    """Alice publishes a sine and a pattern, Bob a sine; each decodes the other's media.

    Bob joins second, so he learns of Alice from his join response (LiveKit's
    SDK fires participant_connected only for those who arrive later) and
    Alice sees Bob's participant_connected.
    """
    alice, bob = SdkClient(), SdkClient()
    try:
        await alice.connect(media_pod.http_url, sdk_token("lk-room", "alice"))
        await bob.connect(media_pod.http_url, sdk_token("lk-room", "bob"))
        assert [p.identity for p in bob.room.remote_participants.values()] == ["alice"]
        await alice.publish(video=True)
        await bob.publish(video=False)

        await wait_for_frames(bob, FRAMES["audio"], FRAMES["video"], RECEIVE_WITHIN)
        await wait_for_frames(alice, FRAMES["audio"], 0, 2.0)

        assert "bob" in alice.reception.connected
        assert sorted(bob.reception.subscribed) == [("alice", "audio"), ("alice", "video")]
        assert alice.reception.subscribed == [("bob", "audio")]
        assert bob.reception.tone_frames >= FRAMES["audio"], bob.reception
        assert bob.reception.video_frames >= FRAMES["video"], bob.reception
        assert alice.reception.tone_frames >= FRAMES["audio"], alice.reception
    finally:
        await alice.close()
        await bob.close()


async def tone_frames_decoded(remote: RemoteTrack, minimum: int, within: float) -> int:
    """How many of aiortc's decoded audio frames carry the tone's energy (silence and comfort noise do not)."""
    deadline, loud = time.monotonic() + within, 0
    while loud < minimum and (left := deadline - time.monotonic()) > 0:
        try:
            frame = await asyncio.wait_for(remote.track.recv(), left)
        except (TimeoutError, MediaStreamError):
            break
        samples = frame.to_ndarray().astype(np.float64)
        if samples.size and math.sqrt(float(np.mean(samples**2))) > TONE_RMS_THRESHOLD:
            loud += 1
    return loud


async def test_item3_grpc_client_and_livekit_sdk_client_receive_each_others_tracks(media_pod: MediaPodProcess) -> None:
    """Our gRPC client (aiortc) and the LiveKit SDK share a room; each decodes the other's audio and video.

    aiortc's decoders judge what reaches the gRPC client, the SDK's
    AudioStream/VideoStream what reaches the SDK; audio counts only frames
    with the tone's energy.
    """
    room = "lk-mixed"
    sdk = SdkClient()
    grpc_client = await client.connect(media_pod.grpc_target, media_pod.token(room, "grpc-carol"))
    try:
        await grpc_client.publish(ToneTrack(amplitude=0.5), name="tone")
        await grpc_client.publish(VideoStreamTrack(), name="cam")
        await sdk.connect(media_pod.http_url, sdk_token(room, "sdk-dave"))
        await sdk.publish(video=True)

        remotes = await grpc_client.wait_for_tracks(2, timeout=10)
        [audio] = [t for t in remotes if t.kind == "audio"]
        [video] = [t for t in remotes if t.kind == "video"]
        counted, loud = await asyncio.gather(
            count_frames([video], {"video": FRAMES["video"]}, RECEIVE_WITHIN),
            tone_frames_decoded(audio, FRAMES["audio"] // 4, RECEIVE_WITHIN),  # aiortc decodes 20 ms frames
        )
        await wait_for_frames(sdk, FRAMES["audio"], FRAMES["video"], RECEIVE_WITHIN)

        assert sorted(sdk.reception.subscribed) == [("grpc-carol", "audio"), ("grpc-carol", "video")]
        assert sdk.reception.tone_frames >= FRAMES["audio"], sdk.reception
        assert sdk.reception.video_frames >= FRAMES["video"], sdk.reception
        assert counted.get("video", 0) >= FRAMES["video"], counted
        assert loud >= FRAMES["audio"] // 4, f"{loud} decoded audio frames carried the SDK's tone"
    finally:
        await sdk.close()
        await grpc_client.close()


async def test_item4_data_reliable_lossy_topic_destinations_and_rpc(media_pod: MediaPodProcess, livekit_api: api.LiveKitAPI) -> None:
    """Three SDK clients: Alice and Bob exchange reliable and lossy packets addressed to each other, Carol gets none of them.

    The SDK's data_received is the oracle for payload, topic, sender and
    kind; a broadcast Carol does get shows her channel works, so her empty
    inbox means the destinations were honoured. An RPC (perform_rpc to a
    method Bob registered) round-trips through the pod's forwarding of RPC
    packets, and the server API's SendData reaches Carol with no sender.
    The browser half (livekit-client on one side) is
    test_item4_browser_half_data_both_ways_between_livekit_client_and_the_python_sdk.
    """
    room = "lk-data"
    alice, bob, carol = SdkClient(), SdkClient(), SdkClient()
    inbox = {"alice": DataInbox(alice.room), "bob": DataInbox(bob.room), "carol": DataInbox(carol.room)}
    try:
        for sdk, identity in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
            await sdk.connect(media_pod.http_url, sdk_token(room, identity))
        bob.room.local_participant.register_rpc_method("greet", lambda call: f"hello {call.caller_identity}: {call.payload}")
        for sender, peer in ((alice, "bob"), (bob, "alice")):
            me = sender.room.local_participant.identity
            await sender.room.local_participant.publish_data(f"{me} reliable", reliable=True, topic="state", destination_identities=[peer])
            await sender.room.local_participant.publish_data(f"{me} lossy", reliable=False, topic="cursor", destination_identities=[peer])
        got_bob = await inbox["bob"].wait_for(2, within=5)
        got_alice = await inbox["alice"].wait_for(2, within=2)
        await alice.room.local_participant.publish_data(b"to all", topic="all")
        got_carol = await inbox["carol"].wait_for(1, within=5)
        reply = await alice.room.local_participant.perform_rpc(destination_identity="bob", method="greet", payload="hi", response_timeout=5)
        await livekit_api.room.send_data(api.SendDataRequest(room=room, data=b"from server", topic="ops", destination_identities=["carol"]))
        from_server = (await inbox["carol"].wait_for(2, within=5))[1:]
    finally:
        for sdk in (alice, bob, carol):
            await sdk.close()

    assert sorted(got_bob[:2], key=lambda d: d.reliable) == [
        ReceivedData(b"alice lossy", "cursor", "alice", reliable=False),
        ReceivedData(b"alice reliable", "state", "alice", reliable=True),
    ]
    assert sorted(got_alice, key=lambda d: d.reliable) == [
        ReceivedData(b"bob lossy", "cursor", "bob", reliable=False),
        ReceivedData(b"bob reliable", "state", "bob", reliable=True),
    ]
    assert got_carol == [ReceivedData(b"to all", "all", "alice", reliable=True)]
    assert reply == "hello alice: hi"
    assert from_server == [ReceivedData(b"from server", "ops", "", reliable=True)]


async def refused_handshake_status(http_url: str, query: dict[str, str]) -> int:
    """The HTTP status a plain WebSocket client gets from /rtc; 101 if the socket opened."""
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(ws_url(http_url) + "/rtc", params=query, timeout=aiohttp.ClientWSTimeout(ws_close=5)):
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


async def add_track_refusal(http_url: str, token: str) -> lk.RequestResponse:
    """What the server answers a raw AddTrackRequest with (the first response after the join)."""
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url(http_url) + "/rtc", params={"access_token": token}) as ws:
        assert lk.SignalResponse.FromString(await ws.receive_bytes(timeout=5)).WhichOneof("message") == "join"
        request = lk.SignalRequest(add_track=lk.AddTrackRequest(cid="mic-1", name="mic", type=lk_models.AUDIO))
        await ws.send_bytes(request.SerializeToString())
        while True:
            response = lk.SignalResponse.FromString(await ws.receive_bytes(timeout=5))
            if response.WhichOneof("message") in ("request_response", "track_published"):
                return response.request_response


async def test_item7_bad_tokens_get_401_and_a_publish_without_can_publish_fails(media_pod: MediaPodProcess) -> None:
    """LiveKit's refusals: 401 on /rtc/validate and no WebSocket for a bad signature, an expired token and a
    token for another room; an AddTrackRequest without canPublish gets LiveKit's NOT_ALLOWED refusal.

    The SDK (1.2.1, like the Rust core's main branch) ignores that refusal and
    fails the publish after its own 10 s timeout, as it does against LiveKit
    (pkg/rtc/participant.go AddTrack answers the same RequestResponse), so the
    denied publish runs beside the other checks.
    """
    room = "lk-auth"
    grant = api.VideoGrants(room_join=True, room=room)
    bad_tokens = {
        "bad signature": api.AccessToken(DEV_API_KEY, "not-the-secret").with_identity("mallory").with_grants(grant).to_jwt(),
        "expired": api.AccessToken(DEV_API_KEY, DEV_API_SECRET)
        .with_identity("late")
        .with_grants(grant)
        .with_ttl(timedelta(minutes=-5))
        .to_jwt(),
        "another room": sdk_token("elsewhere", "stray"),
    }
    unauthorized_before = media_pod.metric("switchboard_signal_errors_total", frontend="livekit", reason="unauthorized")
    listener = SdkClient()
    await listener.connect(media_pod.http_url, sdk_token(room, "listener", can_publish=False))
    denied_publish = asyncio.create_task(listener.publish(video=False))
    try:
        async with aiohttp.ClientSession() as http:
            for case, token in bad_tokens.items():
                query = {"access_token": token, "room": room}
                async with http.get(media_pod.http_url + "/rtc/validate", params=query) as response:
                    assert response.status == 401, (case, response.status, await response.text())
                assert await refused_handshake_status(media_pod.http_url, query) == 401, case
        for case in ("bad signature", "expired"):  # the SDK names no room: its token does
            with pytest.raises(rtc.ConnectError, match="401"):
                await rtc.Room().connect(ws_url(media_pod.http_url), bad_tokens[case])

        refusal = await add_track_refusal(media_pod.http_url, sdk_token(room, "raw-listener", can_publish=False))
        assert refusal.reason == lk.RequestResponse.NOT_ALLOWED, refusal
        assert refusal.add_track.cid == "mic-1" and "canPublish" in refusal.message, refusal
        with pytest.raises(PublishTrackError, match="timed out"):
            await asyncio.wait_for(denied_publish, 15)
        after = media_pod.metric("switchboard_signal_errors_total", frontend="livekit", reason="unauthorized")
        assert after - unauthorized_before >= 3 * 2 + 2, after  # each refused validate and connect is counted
    finally:
        denied_publish.cancel()
        await listener.close()


async def test_item5_room_service_methods_through_livekit_api_with_their_effects(
    media_pod: MediaPodProcess, livekit_api: api.LiveKitAPI
) -> None:
    """Every RoomService method through livekit-api; each effect is judged by the events of connected SDK clients.

    Metadata and attribute updates must reach the others (the SDK's
    participant_metadata_changed, participant_attributes_changed,
    room_metadata_changed), a mute reaches Bob as track_muted, an
    unsubscription stops the tone Bob decodes and a resubscription brings it
    back, a removed participant gets disconnected with LiveKit's
    reason, and DeleteRoom disconnects everyone left. ListParticipants also
    goes once in JSON, as a client without livekit-api would call it.
    """
    rooms, name = livekit_api.room, "lk-admin"
    created = await rooms.create_room(api.CreateRoomRequest(name=name, metadata="first", empty_timeout=30))
    assert (created.name, created.metadata, created.empty_timeout) == (name, "first", 30)
    assert [r.name for r in (await rooms.list_rooms(api.ListRoomsRequest(names=[name]))).rooms] == [name]

    alice, bob = SdkClient(), SdkClient()
    names = ("participant_metadata_changed", "participant_attributes_changed", "room_metadata_changed", "track_muted",
             "track_subscribed", "participant_disconnected", "disconnected")  # fmt: skip
    seen_by = {"alice": RoomEvents(alice.room, *names), "bob": RoomEvents(bob.room, *names)}
    try:
        await alice.connect(media_pod.http_url, sdk_token(name, "alice"))
        await bob.connect(media_pod.http_url, sdk_token(name, "bob"))
        await alice.publish(video=False)
        await seen_by["bob"].wait_for("track_subscribed", within=10)
        [track_sid] = alice.room.local_participant.track_publications

        listed = await rooms.list_participants(api.ListParticipantsRequest(room=name))
        assert sorted(p.identity for p in listed.participants) == ["alice", "bob"]
        got = await rooms.get_participant(api.RoomParticipantIdentity(room=name, identity="alice"))
        assert (got.sid, [t.sid for t in got.tracks]) == (alice.room.local_participant.sid, [track_sid])
        status, body = await post(media_pod, "ListParticipants", json.dumps({"room": name}).encode(), "application/json",
                                  media_pod.admin_token(name))  # fmt: skip
        assert status == 200 and sorted(p["identity"] for p in body["participants"]) == ["alice", "bob"]  # type: ignore[union-attr]

        await rooms.update_participant(
            api.UpdateParticipantRequest(room=name, identity="alice", metadata="on stage", attributes={"role": "host"})
        )
        await seen_by["bob"].wait_for("participant_metadata_changed", lambda p, old, new: (p.identity, new) == ("alice", "on stage"))
        await seen_by["bob"].wait_for("participant_attributes_changed", lambda changed, p: dict(changed) == {"role": "host"})
        await rooms.update_room_metadata(api.UpdateRoomMetadataRequest(room=name, metadata="agenda"))
        for client_events in seen_by.values():
            await client_events.wait_for("room_metadata_changed", lambda old, new: new == "agenda")

        # LiveKit's SDK raises no event when the server unsubscribes it; what it decodes shows the effect.
        await wait_for_frames(bob, FRAMES["audio"], 0, RECEIVE_WITHIN)
        await rooms.update_subscriptions(
            api.UpdateSubscriptionsRequest(room=name, identity="bob", track_sids=[track_sid], subscribe=False)
        )
        await asyncio.sleep(0.5)
        tone_before = bob.reception.tone_frames
        await asyncio.sleep(1.0)
        assert bob.reception.tone_frames - tone_before < 10, "Bob still decodes Alice's tone after UpdateSubscriptions(False)"
        await rooms.update_subscriptions(
            api.UpdateSubscriptionsRequest(room=name, identity="bob", track_sids=[track_sid], subscribe=True)
        )
        await wait_for_frames(bob, tone_before + FRAMES["audio"], 0, RECEIVE_WITHIN)
        assert bob.reception.tone_frames >= tone_before + FRAMES["audio"], "Bob's resubscription brought no tone back"

        await rooms.mute_published_track(api.MuteRoomTrackRequest(room=name, identity="alice", track_sid=track_sid, muted=True))
        await seen_by["bob"].wait_for("track_muted", lambda p, publication: publication.sid == track_sid)

        inbox = DataInbox(bob.room)
        await rooms.send_data(api.SendDataRequest(room=name, data=b"hello", topic="chat", destination_identities=["bob"]))
        assert await inbox.wait_for(1, within=5) == [ReceivedData(b"hello", "chat", "", reliable=True)]

        await rooms.remove_participant(api.RoomParticipantIdentity(room=name, identity="bob"))
        [reason] = await seen_by["bob"].wait_for("disconnected")
        assert reason == rtc.DisconnectReason.PARTICIPANT_REMOVED
        await seen_by["alice"].wait_for("participant_disconnected", lambda p: p.identity == "bob")

        await rooms.delete_room(api.DeleteRoomRequest(room=name))
        [reason] = await seen_by["alice"].wait_for("disconnected")
        assert reason == rtc.DisconnectReason.ROOM_DELETED
        assert not (await rooms.list_rooms(api.ListRoomsRequest(names=[name]))).rooms
    finally:
        await alice.close()
        await bob.close()


async def closed_with(http_url: str, token: str, frame: bytes | str) -> tuple[int | None, str]:
    """Join, send one bad frame, and return the close code and reason the server ends the socket with."""
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url(http_url) + "/rtc", params={"access_token": token}) as ws:
        assert lk.SignalResponse.FromString(await ws.receive_bytes(timeout=5)).WhichOneof("message") == "join"
        await (ws.send_str(frame) if isinstance(frame, str) else ws.send_bytes(frame))
        while (message := await ws.receive(timeout=5)).type == aiohttp.WSMsgType.BINARY:
            pass  # participant updates and the like, sent before the close
        assert message.type == aiohttp.WSMsgType.CLOSE, message
        return ws.close_code, message.extra or ""


async def refusals_for(ws: aiohttp.ClientWebSocketResponse, requests: list[lk.SignalRequest]) -> list[lk.RequestResponse]:
    """Send requests, then a ping; the RequestResponses that came before its pong (the socket is still served)."""
    for request in requests:
        await ws.send_bytes(request.SerializeToString())
    await ws.send_bytes(lk.SignalRequest(ping_req=lk.Ping(timestamp=77)).SerializeToString())
    refusals = []
    while (response := lk.SignalResponse.FromString(await ws.receive_bytes(timeout=10))).WhichOneof("message") != "pong_resp":
        if response.WhichOneof("message") == "request_response":
            refusals.append(response.request_response)
    assert response.pong_resp.last_ping_timestamp == 77
    return refusals


async def test_item8_bad_websocket_input_gets_close_codes_or_refusals_counted_and_others_media_flows(
    media_pod: MediaPodProcess,
) -> None:
    """Malformed protobuf (1007), a text frame (1003) and a frame over 1 MiB (1009) close the socket with a reason;
    a garbage offer sent before the join response, and 1,000 garbage trickles, are refused one by one with LiveKit's
    RequestResponse (INVALID_REQUEST, the request echoed) and the socket stays up. Every case moves
    switchboard_signal_errors, and a bystander room's video keeps decoding throughout.

    LiveKit joins at connect, so no request can precede the join: an offer
    sent before the join response arrives is taken after the join, and a bad
    one is refused (LiveKit only logs it; a refusal tells the client why).
    """
    room = "lk-abuse"

    def errors(reason: str) -> float:
        return media_pod.metric("switchboard_signal_errors_total", frontend="livekit", reason=reason)

    async with Bystander(media_pod) as bystander:
        assert bystander.frames is not None
        before = {reason: errors(reason) for reason in ("malformed_message", "text_frame", "frame_too_large", "request_refused")}
        started, frames_before = time.monotonic(), len(bystander.frames.frames)

        code, reason = await closed_with(media_pod.http_url, sdk_token(room, "m1"), b"\x0a\xff\xff\xff\xff")
        assert (code, "could not be decoded" in reason) == (1007, True), (code, reason)
        code, reason = await closed_with(media_pod.http_url, sdk_token(room, "m2"), '{"offer": {}}')
        assert (code, "text frame" in reason) == (1003, True), (code, reason)
        code, reason = await closed_with(media_pod.http_url, sdk_token(room, "m3"), b"\x00" * (1024 * 1024 + 1))
        assert code == 1009, (code, reason)

        url = ws_url(media_pod.http_url) + "/rtc"
        async with aiohttp.ClientSession() as http, http.ws_connect(url, params={"access_token": sdk_token(room, "m4")}) as ws:
            # Sent at once, before the join response is read.
            await ws.send_bytes(lk.SignalRequest(offer=lk.SessionDescription(type="offer", sdp="not an sdp", id=1)).SerializeToString())
            assert lk.SignalResponse.FromString(await ws.receive_bytes(timeout=5)).WhichOneof("message") == "join"
            [offer_refusal] = await refusals_for(ws, [])
            assert offer_refusal.reason == lk.RequestResponse.INVALID_REQUEST and offer_refusal.message, offer_refusal

            garbage = [lk.SignalRequest(trickle=lk.TrickleRequest(candidateInit=f'{{"candidate":"x{i}"}}')) for i in range(1000)]
            refusals = await refusals_for(ws, garbage)
        assert len(refusals) == 1000
        assert {(r.reason, "candidateInit" in r.message) for r in refusals} == {(lk.RequestResponse.INVALID_REQUEST, True)}
        # A flood outruns the translator's memory of what it refused: the newest are echoed, all are refused.
        echoed = [r.trickle.candidateInit for r in refusals if r.HasField("trickle")]
        assert echoed[-1] == garbage[-1].trickle.candidateInit and set(echoed) <= {g.trickle.candidateInit for g in garbage}

        moved = {reason: errors(reason) - count for reason, count in before.items()}
        assert moved == {"malformed_message": 1, "text_frame": 1, "frame_too_large": 1, "request_refused": 1001}, moved
        await asyncio.sleep(max(0.0, started + 2.0 - time.monotonic()))  # watch the aftermath too
        ended = time.monotonic()
        arrivals = [at for at, _, _ in bystander.frames.between(started, ended)]
        assert len(bystander.frames.frames) - frames_before >= 25 * (ended - started) * 0.8, "the bystander's video slowed"
        assert max(b - a for a, b in zip([started, *arrivals], [*arrivals, ended], strict=True)) < 0.5, "a gap in the bystander's video"


# Mean power (totalAudioEnergy per second, Chromium's getStats) of the SDK's tone is about 0.03; silence is ~0.
TONE_POWER = 0.005


async def test_item2_livekit_client_in_chromium_publishes_simulcast_and_plays_with_the_python_sdk(media_pod: MediaPodProcess) -> None:
    """livekit-client in headless Chromium: page 1 publishes the fake camera in simulcast (q and h) and microphone;
    page 2, another browser context, plays them; a Python SDK client decodes the browser's media and the
    browser decodes the SDK's.

    Oracles: the browser's own getStats (framesDecoded, frameWidth, audio
    energy) and its <video> element's videoWidth; the SDK's decoded frames.
    Chromium's fake microphone beeps briefly twice a second, so the SDK
    counts frames carrying that beep's energy, not silence.
    """
    room, url = "lk-browser", ws_url(media_pod.http_url)
    sdk = SdkClient()
    async with LiveKitBrowser(media_pod.http_url) as browser:
        publisher, viewer = await browser.page(), await browser.page()
        try:
            await publisher.join(url, sdk_token(room, "chrome-pub"))
            rids = await publisher.publish(640, 360)
            await viewer.join(url, sdk_token(room, "chrome-view"))
            await sdk.connect(media_pod.http_url, sdk_token(room, "py"))
            await sdk.publish(video=True)

            video = await viewer.wait_for_inbound("chrome-pub", "video", "framesDecoded", FRAMES["video"], 15)
            audio = await viewer.wait_for_inbound("chrome-pub", "audio", "totalSamplesDuration", 2.0, 5)
            from_sdk_video = await publisher.wait_for_inbound("py", "video", "framesDecoded", FRAMES["video"], 10)
            from_sdk_audio = await publisher.wait_for_inbound("py", "audio", "totalSamplesDuration", 2.0, 5)
            await wait_for_frames(sdk, 5, FRAMES["video"], RECEIVE_WITHIN)
            viewer_plays = await viewer.received_kinds()
        finally:
            await sdk.close()

    assert rids == ["q", "h"], rids
    assert viewer_plays == ["chrome-pub/audio", "chrome-pub/video", "py/audio", "py/video"], viewer_plays
    assert video["framesDecoded"] >= FRAMES["video"] and video["videoWidth"] > 0, video
    assert audio["totalSamplesDuration"] >= 2.0, audio
    assert from_sdk_video["framesDecoded"] >= FRAMES["video"] and from_sdk_video["videoWidth"] == 320, from_sdk_video
    assert from_sdk_audio["totalAudioEnergy"] / from_sdk_audio["totalSamplesDuration"] > TONE_POWER, from_sdk_audio
    assert sorted(sdk.reception.subscribed) == [("chrome-pub", "audio"), ("chrome-pub", "video")], sdk.reception
    assert sdk.reception.video_frames >= FRAMES["video"] and sdk.reception.tone_frames >= 5, sdk.reception


async def sample_until(page: LiveKitPage, identity: str, done: Callable[[dict[str, float]], bool], within: float,
                       samples: list[dict[str, float]]) -> dict[str, float]:  # fmt: skip
    """Append identity's inbound video stats to samples every 100 ms until done(latest) or within seconds pass."""
    deadline = time.monotonic() + within
    while True:
        stats = await page.inbound(identity, "video")
        if stats is not None:
            samples.append(stats)
            if done(stats) or time.monotonic() > deadline:
                return stats
        elif time.monotonic() > deadline:
            return {}
        await asyncio.sleep(0.1)


async def test_item6_adaptive_stream_small_element_gets_the_lower_layer_and_switches_on_keyframes(media_pod: MediaPodProcess) -> None:
    """The viewer plays the browser publisher's camera (layers q 320x180, h 640x360) with adaptive stream on: in a
    640x360 element it decodes h, shrunk to 160x90 it decodes q, grown back it decodes h again.

    The decoded frame size is Chromium's own (inbound-rtp frameWidth). A
    switch counts as made on a keyframe when Chromium's keyFramesDecoded
    went up within it and the viewer never had to ask for one (pliCount
    unchanged): a layer entered on a delta frame leaves the decoder with
    references it cannot use, and Chromium sends a PLI. So does a switch that
    does not continue VP8's picture id and TL0PICIDX, which each simulcast
    layer numbers on its own (before sfu/vp8munger.py: about 0.4 s frozen
    and 3 PLIs at every switch down).
    """
    room, url = "lk-adaptive", ws_url(media_pod.http_url)
    async with LiveKitBrowser(media_pod.http_url) as browser:
        publisher, viewer = await browser.page(), await browser.page()
        await publisher.join(url, sdk_token(room, "chrome-pub"))
        await publisher.publish(640, 360)
        await viewer.join(url, sdk_token(room, "chrome-view"), adaptive_stream=True)
        samples: list[dict[str, float]] = []
        large = await sample_until(viewer, "chrome-pub", lambda s: s["frameWidth"] == 640 and s["framesDecoded"] >= 25, 15, samples)
        settled = len(samples)
        await viewer.resize("chrome-pub", 160, 90)
        small = await sample_until(viewer, "chrome-pub", lambda s: s["frameWidth"] == 320, 8, samples)
        await viewer.resize("chrome-pub", 640, 360)
        large_again = await sample_until(viewer, "chrome-pub", lambda s: s["frameWidth"] == 640, 8, samples)
        decoded = large_again.get("framesDecoded", 0)
        more = await sample_until(viewer, "chrome-pub", lambda s: s["framesDecoded"] >= decoded + 25, 3, samples)

    assert (large["frameWidth"], large["frameHeight"]) == (640, 360), large
    assert (small["frameWidth"], small["frameHeight"]) == (320, 180), small
    assert (large_again["frameWidth"], large_again["frameHeight"]) == (640, 360), large_again
    after = samples[settled - 1:]
    switches = [(a, b) for a, b in itertools.pairwise(after) if a["frameWidth"] != b["frameWidth"]]
    assert len(switches) == 2, [s["frameWidth"] for s in after]
    assert all(b["keyFramesDecoded"] > a["keyFramesDecoded"] for a, b in switches), switches
    assert more["framesDecoded"] >= decoded + 25, more
    trace = [(s["frameWidth"], s["framesDecoded"], s["keyFramesDecoded"], s["pliCount"]) for s in after]
    assert (more["pliCount"], more["firCount"]) == (large["pliCount"], large["firCount"]), (
        f"the viewer asked for keyframes across the switches; width, decoded, key, PLIs: {trace}"
    )


# The demo page's tiles as the browser plays them: who, whether it is the page's own camera, the <video>'s
# decoded size, how many frames Chromium presented in it (HTMLVideoElement's own count), and the mean
# brightness (0-255) of the picture it shows now, read back through a canvas (a black tile has 0).
_TILES = """() => [...document.querySelectorAll('#tiles figure')].map((tile) => {
  const video = tile.querySelector('video');
  if (!video || !video.videoWidth) return {identity: tile.dataset.identity, local: tile.dataset.local === 'true', width: 0, frames: 0, brightness: 0};
  const canvas = Object.assign(document.createElement('canvas'), {width: video.videoWidth, height: video.videoHeight});
  const context = canvas.getContext('2d', {willReadFrequently: true});
  context.drawImage(video, 0, 0);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0;
  for (let i = 0; i < pixels.length; i += 4) sum += pixels[i] + pixels[i + 1] + pixels[i + 2];
  return {identity: tile.dataset.identity, local: tile.dataset.local === 'true', width: video.videoWidth,
          frames: video.getVideoPlaybackQuality().totalVideoFrames, brightness: sum / (pixels.length / 4 * 3)};
})"""
SCREENSHOT = Path(__file__).resolve().parents[2] / "bench" / "results" / "livekit_demo_page.png"


async def test_item9_demo_page_joins_a_room_and_plays_its_own_camera_and_the_sdk_clients_video(
    media_pod: MediaPodProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Headless Chromium opens the dev pod's demo page at /, picks a room and a name as a person would, and joins
    where a Python SDK client publishes: both tiles play (the page's own camera and the SDK's 320x240 pattern), each
    with frames Chromium presented in its <video> and a picture that is not black. A screenshot goes to bench/results/livekit_demo_page.png (the
    path is printed) for a person to look at.

    The page mints its token at /dev/token, which like / exists only in dev
    mode: a pod whose config turns dev off (SWITCHBOARD_DEV=false, every other
    setting as in dev) answers 404 for both.
    """
    room = "lk-demo"
    sdk = SdkClient()
    await sdk.connect(media_pod.http_url, sdk_token(room, "py-demo"))
    await sdk.publish(video=True)
    try:
        async with LiveKitBrowser(media_pod.http_url) as browser:
            page = await browser.open(media_pod.http_url + "/", viewport=(1000, 700))
            await page.fill("input[name=room]", room)
            await page.fill("input[name=identity]", "visitor")
            await page.click("form#join button")
            deadline, tiles = time.monotonic() + 15, []
            while time.monotonic() < deadline:
                tiles = sorted(await page.evaluate(_TILES), key=lambda t: t["identity"])
                if len(tiles) == 2 and all(t["frames"] >= FRAMES["video"] for t in tiles):
                    break
                await asyncio.sleep(0.2)
            status = await page.text_content("#status")
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT))
            print(f"demo page screenshot: {SCREENSHOT.resolve()}")
            await wait_for_frames(sdk, 0, FRAMES["video"], RECEIVE_WITHIN)
    finally:
        await sdk.close()

    assert status == f'In room "{room}" as visitor.', status
    assert [(t["identity"], t["local"]) for t in tiles] == [("py-demo", False), ("visitor", True)], tiles
    assert tiles[0]["width"] == 320 and tiles[1]["width"] > 0, tiles
    assert all(t["frames"] >= FRAMES["video"] and t["brightness"] > 20 for t in tiles), tiles
    assert sdk.reception.subscribed and sdk.reception.video_frames >= FRAMES["video"], sdk.reception  # the page published

    not_dev = MediaPodProcess(node_id="not-dev", env={"SWITCHBOARD_DEV": "false"}).start(str(tmp_path_factory.mktemp("not-dev")))
    try:
        async with aiohttp.ClientSession() as http:
            for path in ("/", "/dev/token?room=r&identity=i", "/livekit-client.js"):
                async with http.get(not_dev.http_url + path) as response:
                    assert response.status == 404, (path, response.status)
                async with http.get(media_pod.http_url + path) as response:
                    assert response.status == 200, (path, response.status)
    finally:
        not_dev.stop()


async def test_item4_browser_half_data_both_ways_between_livekit_client_and_the_python_sdk(media_pod: MediaPodProcess) -> None:
    """livekit-client in Chromium and the Python SDK exchange reliable and lossy packets addressed to each other, with
    topics; Carol (another SDK client) gets none of them but does get a broadcast; RPC round-trips both ways.

    The oracles are each SDK's own data events: livekit-client's
    RoomEvent.DataReceived in the page, the Python SDK's data_received.
    """
    room, url = "lk-data-browser", ws_url(media_pod.http_url)
    py, carol = SdkClient(), SdkClient()
    inbox = {"py": DataInbox(py.room), "carol": DataInbox(carol.room)}
    try:
        async with LiveKitBrowser(media_pod.http_url) as browser:
            chrome = await browser.page()
            await chrome.join(url, sdk_token(room, "chrome"))
            await py.connect(media_pod.http_url, sdk_token(room, "py"))
            py.room.local_participant.register_rpc_method("greet", lambda call: f"hello {call.caller_identity}: {call.payload}")
            await carol.connect(media_pod.http_url, sdk_token(room, "carol"))
            for reliable, topic in ((True, "state"), (False, "cursor")):
                await chrome.publish_data(f"chrome {topic}", reliable=reliable, topic=topic, destinations=["py"])
                await py.room.local_participant.publish_data(f"py {topic}", reliable=reliable, topic=topic, destination_identities=["chrome"])
            got_py = await inbox["py"].wait_for(2, within=5)
            deadline = time.monotonic() + 5
            while len(got_chrome := await chrome.inbox()) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await chrome.publish_data("to all", reliable=True, topic="all", destinations=[])
            got_carol = await inbox["carol"].wait_for(1, within=5)
            from_py = await py.room.local_participant.perform_rpc(destination_identity="chrome", method="greet", payload="hi", response_timeout=5)
            from_chrome = await chrome.perform_rpc("py", "greet", "hey")
    finally:
        await py.close()
        await carol.close()

    assert sorted(got_py[:2], key=lambda d: d.reliable) == [
        ReceivedData(b"chrome cursor", "cursor", "chrome", reliable=False),
        ReceivedData(b"chrome state", "state", "chrome", reliable=True),
    ]
    assert sorted(got_chrome, key=lambda d: d["reliable"]) == [
        {"payload": "py cursor", "sender": "py", "reliable": False, "topic": "cursor"},
        {"payload": "py state", "sender": "py", "reliable": True, "topic": "state"},
    ]
    assert got_carol == [ReceivedData(b"to all", "all", "chrome", reliable=True)]
    assert (from_py, from_chrome) == ("hello py: hi", "hello chrome: hey")


async def test_sbctl_room_join_publish_demo_is_decoded_and_heard_by_a_livekit_sdk_client(media_pod: MediaPodProcess) -> None:
    """``sbctl room join --publish-demo`` (the installed command) publishes bars and a tone a LiveKit SDK client decodes.

    Oracles: the SDK's decoded video frames and the tone's energy in its
    decoded audio (silence and comfort noise do not count); ``sbctl
    participant list`` against the same pod shows the demo's two tracks; on
    Ctrl-C sbctl leaves and the SDK sees it go.
    """
    room, sdk = "lk-sbctl-demo", SdkClient()
    events = RoomEvents(sdk.room, "participant_disconnected")
    try:
        with sbctl_join("sbctl room join", room, "--publish-demo", "--identity", "demo", "--url", media_pod.grpc_target) as (demo, _):
            await sdk.connect(media_pod.http_url, sdk_token(room, "watcher"))
            await wait_for_frames(sdk, FRAMES["audio"], FRAMES["video"], RECEIVE_WITHIN)
            listing = await asyncio.to_thread(
                subprocess.run, [str(VENV_BIN / "sbctl"), "participant", "list", room, "--url", media_pod.grpc_target],
                capture_output=True, text=True, timeout=20,
            )
            demo.send_signal(signal.SIGINT)
            exit_status = await asyncio.to_thread(demo.wait, 10)
            [gone] = await events.wait_for("participant_disconnected", within=5)
    finally:
        await sdk.close()

    assert sorted(sdk.reception.subscribed) == [("demo", "audio"), ("demo", "video")], sdk.reception
    assert sdk.reception.video_frames >= FRAMES["video"], sdk.reception
    assert sdk.reception.tone_frames >= FRAMES["audio"], sdk.reception
    demo_row = next(line.split() for line in listing.stdout.splitlines() if line.startswith("demo "))
    assert sorted(track.split(":")[0] for track in demo_row[3:]) == ["audio", "video"], listing.stdout
    assert (exit_status, gone.identity) == (0, "demo")


def test_item11_readme_first_hour_dev_command_demo_page_sbctl_livekit_snippet_and_busy_ports(tmp_path: Path) -> None:
    """The README's first hour, followed as written: its first command (with free ports, passed through as it
    says flags are), the demo page it names, ``.venv/bin/sbctl room join ... --publish-demo`` watched by the
    README's own LiveKit SDK snippet, and a one-line error naming each busy port.

    Oracles: the snippet's own output (the SDK's decoder counts the frames and
    reports their size), the pod's HTTP answer for the page, the exit status
    and stderr of a pod whose port is taken. The first command runs in this
    checkout (its install step is idempotent), not in a fresh clone.
    """
    assert "Extra flags go to `switchboard-media`" in " ".join(readme.text().split()), "the port flags below rely on it"
    join_command = readme.inline_command(".venv/bin/sbctl room join")
    snippet = readme.python_block_with("from livekit import")
    run_snippet = readme.inline_command(".venv/bin/python ")
    assert "ws://127.0.0.1:7880" in snippet and "http://127.0.0.1:7880/" in readme.text()

    with first_hour_dev_pod(readme.first_commands()[0], tmp_path / "dev.log") as pod:
        page = urllib.request.urlopen(pod.demo_page, timeout=10)
        assert (page.status, urllib.parse.urlsplit(pod.demo_page).path) == (200, "/")
        assert page.headers.get_content_type() == "text/html"
        with sbctl_join(join_command, "--url", pod.grpc_target) as (_, said):
            publisher = said[0].split(" as ")[1].split(";")[0]
            script = tmp_path / run_snippet.split()[-1]
            script.write_text(snippet.replace("ws://127.0.0.1:7880", ws_url(pod.http_url)))
            watcher = subprocess.run(
                [str(readme.ROOT / run_snippet.split()[0]), str(script)], capture_output=True, text=True, timeout=60,
            )

    assert watcher.returncode == 0, watcher.stderr[-3000:]
    decoded = re.search(r"decoded (\d+) frames of (\d+)x(\d+) video from (\S+)", watcher.stdout)
    assert decoded, watcher.stdout
    assert (int(decoded[1]), int(decoded[2]), int(decoded[3]), decoded[4]) == (100, 640, 480, publisher), watcher.stdout

    for flag, (port, status, stderr) in busy_port_errors().items():
        assert status == 1 and len(stderr.strip().splitlines()) == 1, (flag, status, stderr)
        assert f":{port} is already in use" in stderr, (flag, stderr)


# Item 10's pods heartbeat every second and count as gone after 3 s: a killed
# host's room moves on the first join after that, and the SDKs' rejoin takes a
# few seconds more (measured here: video again about 6 s after the SIGKILL; with
# a 5 s stale timeout about 11 s, so failover time is stale_timeout plus ~5 s).
TWO_POD_ROUTING = {
    "SWITCHBOARD_ROUTING__HEARTBEAT_INTERVAL": "1",
    "SWITCHBOARD_ROUTING__STALE_TIMEOUT": "3",
    "SWITCHBOARD_ROOM__DEPARTURE_TIMEOUT": "1",
}
RECOVER_WITHIN = 15.0


async def media_flows(clients: list[SdkClient], video: int, tone: int, within: float) -> float | None:
    """Seconds until every client decoded video more frames and tone more frames with the tone's energy; None if not within."""
    started = time.monotonic()
    marks = [(c.reception.video_frames, c.reception.tone_frames) for c in clients]
    while time.monotonic() - started < within:
        if all(c.reception.video_frames - v >= video and c.reception.tone_frames - t >= tone for c, (v, t) in zip(clients, marks)):
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return None


async def test_item10_two_pods_relayed_and_hosted_sdk_clients_exchange_media_and_recover_from_a_killed_host(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Alice's WebSocket lands on pod-a, Bob's on pod-b (a TCP proxy stands in for the Service); the room lives
    on one of them, so one client is on its host and the other is relayed over Redis with media straight to the
    host. Both publish a pattern and a tone and decode each other's. Then the hosting pod is SIGKILLed: the SDKs'
    resume gets a leave with RECONNECT from the survivor, they rejoin through it, the survivor re-maps the room
    of the gone node and hosts it, and media flows again within 15 s.

    Oracles: the SDK's decoded frames and tone energy; which pod the proxy
    connected each WebSocket to; Redis's room_node_map.
    """
    room = "lk-two-pods"
    alice, bob = SdkClient(), SdkClient()
    async with ProxiedPods(redis_server, tmp_path, ["pod-a", "pod-b"], TWO_POD_ROUTING) as pods:
        try:
            landed = {}
            for sdk, node in ((alice, "pod-a"), (bob, "pod-b")):
                pods.proxy.preferred, seen = pods.backend(node), len(pods.proxy.connections)
                await sdk.connect(pods.url, sdk_token(room, node.replace("pod-", "user-")))
                landed[node] = {pods.node_of(b) for b in pods.proxy.connections[seen:]}
            host = await pods.host_of(room)
            assert host in ("pod-a", "pod-b"), f"room_node_map has {host!r} for {room}"
            await alice.publish(video=True)
            await bob.publish(video=True)
            before = await media_flows([alice, bob], FRAMES["video"], FRAMES["audio"], RECEIVE_WITHIN)

            pods.pod(host).kill()
            seen = len(pods.proxy.connections)
            after = await media_flows([alice, bob], FRAMES["video"] // 2, FRAMES["audio"] // 2, RECOVER_WITHIN)
            reconnected_to = {pods.node_of(b) for b in pods.proxy.connections[seen:]}
            new_host = await pods.host_of(room)
        finally:
            await alice.close()
            await bob.close()

    survivor = "pod-b" if host == "pod-a" else "pod-a"
    assert landed == {"pod-a": {"pod-a"}, "pod-b": {"pod-b"}}, landed
    assert before is not None, (alice.reception, bob.reception)
    assert after is not None, f"no media within {RECOVER_WITHIN} s of killing {host}: {alice.reception}, {bob.reception}"
    assert (reconnected_to, new_host) == ({survivor}, survivor)
