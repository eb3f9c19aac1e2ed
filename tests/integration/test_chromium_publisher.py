"""A real browser publishes through the media pod: headless Chromium, simulcast VP8."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest

from mediapod import client
from mediapod.protocol import signal_pb2
from tests.support.chromium import ChromiumPublisher, Encoding
from tests.support.lossy_relay import LossyRelay
from tests.support.mediapod_process import MediaPodProcess
from tests.support.peers import FrameLog, RtpProbe, count_frames, eventually, standalone_picture_size, vp8_frames

# Chromium sends as many layers as its resolution and start bitrate allow:
# at 640x360 that is the two lower ones, which is what this test switches between.
ENCODINGS = [
    Encoding("q", 4, 150_000, 160, 90),
    Encoding("h", 2, 500_000, 320, 180),
    Encoding("f", 1, 1_500_000, 640, 360),
]


@pytest.fixture
async def chromium() -> AsyncIterator[ChromiumPublisher]:
    browser = await ChromiumPublisher().launch()
    yield browser
    await browser.close()


async def test_chromium_simulcast_reaches_an_aiortc_subscriber_which_switches_layers_on_keyframes(
    media_pod: MediaPodProcess, chromium: ChromiumPublisher
) -> None:
    room = f"chromium-{secrets.token_hex(3)}"
    async with await client.connect(media_pod.grpc_target, media_pod.token(room, "browser")) as browser_session:
        track_sid = await chromium.publish(browser_session, 640, 360, ENCODINGS)
        async with await client.connect(media_pod.grpc_target, media_pod.token(room, "viewer")) as viewer:
            [remote] = await viewer.wait_for_tracks(1)
            probe = RtpProbe()
            probe.attach(remote.receiver)
            frames = FrameLog(remote).start()
            try:
                await viewer.set_video_quality([track_sid], signal_pb2.LOW)
                await eventually(lambda: len(frames.frames) >= 10 and frames.frames[-1][1:] == (160, 90), timeout=15)
                assert await chromium.connection_state() == "connected"

                medium_requested = time.monotonic()
                await viewer.set_video_quality([track_sid], signal_pb2.MEDIUM)
                await eventually(
                    lambda: any(f[1:] == (320, 180) for f in frames.between(medium_requested, time.monotonic())), timeout=15
                )
                first_medium = next(f[0] for f in frames.between(medium_requested, time.monotonic()) if f[1:] == (320, 180))
                await eventually(lambda: len(frames.between(first_medium, time.monotonic())) >= 10)
            finally:
                frames.stop()

            # The first frame after the request a fresh decoder shows at 320x180 is where the switch happened.
            sizes = [standalone_picture_size(f) for f in vp8_frames(a for a in probe.arrivals if a.at >= medium_requested)]
            switch = sizes.index((320, 180))
            assert all(size in (None, (160, 90)) for size in sizes[:switch]), "switched before a key frame of the new layer"
            assert {f[1:] for f in frames.between(first_medium, time.monotonic())} == {(320, 180)}
            assert len(probe.sequence_numbers) == 1 and probe.gaps() == 0
            steps = [(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in zip(probe.arrivals, probe.arrivals[1:])]
            assert all(step < 0x80000000 for step in steps)


@pytest.fixture
async def pod_behind_lossy_uplink(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[MediaPodProcess, LossyRelay]]:
    relay = LossyRelay(uplink_loss=0.05)
    port = await relay.start()
    pod = MediaPodProcess(node_id="lossy-chromium", env={"SWITCHBOARD_RTC__ADVERTISED_PORT": str(port)})
    pod.start(str(tmp_path_factory.mktemp("lossy-chromium")))
    relay.target = ("127.0.0.1", pod.udp_port)
    yield pod, relay
    pod.stop()
    relay.close()


async def test_chromium_simulcast_uplink_loss_is_repaired_over_rtx_found_by_repaired_rid(
    pod_behind_lossy_uplink: tuple[MediaPodProcess, LossyRelay], chromium: ChromiumPublisher
) -> None:
    pod, relay = pod_behind_lossy_uplink
    room = f"chromium-loss-{secrets.token_hex(3)}"
    async with await client.connect(pod.grpc_target, pod.token(room, "browser")) as browser_session:
        track_sid = await chromium.publish(browser_session, 640, 360, ENCODINGS)
        async with await client.connect(pod.grpc_target, pod.token(room, "viewer")) as viewer:
            [remote] = await viewer.wait_for_tracks(1)
            await viewer.set_video_quality([track_sid], signal_pb2.LOW)
            await count_frames([remote], {"video": 30}, timeout=15)
            probe = RtpProbe()
            probe.attach(remote.receiver)
            await count_frames([remote], {"video": 10_000}, timeout=6)
            await asyncio.sleep(0.5)
    assert relay.dropped["uplink"] >= 5, relay.dropped
    assert probe.received_fraction() >= 0.99
    assert pod.metric("switchboard_nacks_sent_total") > 0
    # Chromium's RTX streams signal no SSRC: they were recognised by repaired-rid, not dropped.
    assert pod.metric("switchboard_packets_dropped_total", reason="rtp_unknown_ssrc") == 0
    assert pod.metric("switchboard_packets_lost_total") == 0
