"""Issue 10 (livekit_compat): LiveKit's own client SDKs join a media pod unmodified.

One test per item of the issue's "What it must show", against a real media
pod process. The peers are LiveKit's `livekit` Python SDK (its Rust core and
libwebrtc) with tokens from `livekit-api`; what they decode is the oracle.
"""

from __future__ import annotations

import asyncio
import math
import time

import numpy as np
from aiortc.mediastreams import MediaStreamError, VideoStreamTrack

from mediapod import client
from mediapod.client import RemoteTrack
from tests.support.audio import ToneTrack
from tests.support.livekit_sdk import TONE_RMS_THRESHOLD, SdkClient, sdk_token
from tests.support.mediapod_process import MediaPodProcess
from tests.support.peers import count_frames

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
