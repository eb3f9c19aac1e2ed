"""Issue 10 (livekit_compat): LiveKit's own client SDKs join a media pod unmodified.

One test per item of the issue's "What it must show", against a real media
pod process. The peers are LiveKit's `livekit` Python SDK (its Rust core and
libwebrtc) with tokens from `livekit-api`; what they decode is the oracle.
"""

from __future__ import annotations

import asyncio
import time


from tests.support.livekit_sdk import SdkClient, sdk_token
from tests.support.mediapod_process import MediaPodProcess

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
