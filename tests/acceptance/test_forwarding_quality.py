"""Issue: Forwarding quality — NACK/RTX, keyframes, simulcast, mute, active speakers.

One test per item of the issue's "What it must show", against a real media
pod process and real aiortc peers; loss is injected by a UDP relay on
loopback (tests/support/lossy_relay.py) because this kernel has no netem.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mediapod import client
from mediapod.protocol import models_pb2, signal_pb2
from mediapod.rtp.codecs import vp8_is_keyframe
from tests.support.audio import ToneTrack
from tests.support.lossy_relay import LossyRelay
from tests.support.mediapod_process import MediaPodProcess
from tests.support.peers import (
    FrameLog,
    NoisyVideoTrack,
    RtpProbe,
    count_frames,
    eventually,
    rtx_payload_types,
    vp8_keyframe_size,
)
from tests.support.simulcast import SimulcastPublisher

LOSS = 0.05
WINDOW = 6.0  # seconds of video measured under loss


async def pod_behind_relay(tmp_path_factory: pytest.TempPathFactory, relay: LossyRelay) -> MediaPodProcess:
    port = await relay.start()
    pod = MediaPodProcess(node_id="lossy", env={"SWITCHBOARD_RTC__ADVERTISED_PORT": str(port)})
    pod.start(str(tmp_path_factory.mktemp("lossy")))
    relay.target = ("127.0.0.1", pod.udp_port)
    return pod


@pytest.fixture
async def downlink_lossy(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[MediaPodProcess, LossyRelay]]:
    relay = LossyRelay(downlink_loss=LOSS)
    pod = await pod_behind_relay(tmp_path_factory, relay)
    yield pod, relay
    pod.stop()
    relay.close()


@pytest.fixture
async def uplink_lossy(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[MediaPodProcess, LossyRelay]]:
    relay = LossyRelay(uplink_loss=LOSS)
    pod = await pod_behind_relay(tmp_path_factory, relay)
    yield pod, relay
    pod.stop()
    relay.close()


async def watch_video_under_loss(pod: MediaPodProcess, relay: LossyRelay) -> tuple[RtpProbe, int, float]:
    """Publish VP8, subscribe through the relay; returns the subscriber's probe, frames decoded, seconds."""
    room = f"loss-{secrets.token_hex(3)}"
    async with await client.connect(pod.grpc_target, pod.token(room, "pub")) as publisher:
        await publisher.publish(NoisyVideoTrack())
        async with await client.connect(pod.grpc_target, pod.token(room, "sub")) as subscriber:
            [remote] = await subscriber.wait_for_tracks(1)
            rtx = rtx_payload_types(subscriber.subscriber_pc.remoteDescription.sdp)
            assert rtx, "the subscriber offer negotiates RTX for video"
            assert (await count_frames([remote], {"video": 10}, timeout=10))["video"] == 10
            probe = RtpProbe(rtx_payload_types=rtx)
            probe.attach(remote.receiver)
            started = time.monotonic()
            frames = (await count_frames([remote], {"video": 10_000}, timeout=WINDOW)).get("video", 0)
            elapsed = time.monotonic() - started
            await asyncio.sleep(0.5)  # let the last retransmissions land
            return probe, frames, elapsed


def speaker_updates(session: client.Session) -> list[signal_pb2.SpeakersChanged]:
    return [m.speakers_changed for m in session.messages if m.WhichOneof("message") == "speakers_changed"]


def is_speaking(session: client.Session, sid: str) -> bool:
    return any(s.sid == sid for s in session.active_speakers)


async def test_1_downlink_loss_is_repaired_from_the_buffer(downlink_lossy: tuple[MediaPodProcess, LossyRelay]) -> None:
    pod, relay = downlink_lossy
    probe, frames, elapsed = await watch_video_under_loss(pod, relay)
    assert relay.dropped["downlink"] >= 10, relay.dropped
    assert probe.received_fraction() >= 0.99, probe.received_fraction()
    assert probe.recovered, "losses were repaired over RTX"
    # aiortc drops frames it cannot assemble; a continuous frame rate means none were corrupt.
    assert frames >= 0.9 * 30 * elapsed, (frames, elapsed)
    assert pod.metric("switchboard_nacks_received_total") > 0
    assert pod.metric("switchboard_retransmitted_packets_total") >= 0.8 * relay.dropped["downlink"]
    assert pod.metric("switchboard_retransmitted_bytes_total") > 0


async def test_2_uplink_loss_is_repaired_by_our_nacks(uplink_lossy: tuple[MediaPodProcess, LossyRelay]) -> None:
    pod, relay = uplink_lossy
    probe, frames, elapsed = await watch_video_under_loss(pod, relay)
    assert relay.dropped["uplink"] >= 10, relay.dropped
    assert probe.received_fraction() >= 0.99, probe.received_fraction()
    assert frames >= 0.9 * 30 * elapsed, (frames, elapsed)
    assert pod.metric("switchboard_nacks_sent_total") > 0
    assert pod.metric("switchboard_packets_lost_total") <= 0.01 * relay.relayed_rtp["uplink"]


async def test_3_simulcast_switches_layers_on_keyframes_with_contiguous_numbering(media_pod: MediaPodProcess) -> None:
    room = f"simulcast-{secrets.token_hex(3)}"
    async with await client.connect(media_pod.grpc_target, media_pod.token(room, "pub")) as session:
        publisher = SimulcastPublisher(session)
        track_sid = await publisher.start()
        try:
            async with await client.connect(media_pod.grpc_target, media_pod.token(room, "sub")) as subscriber:
                [remote] = await subscriber.wait_for_tracks(1)
                probe = RtpProbe()
                probe.attach(remote.receiver)
                frames = FrameLog(remote).start()
                try:
                    await subscriber.set_video_quality([track_sid], signal_pb2.LOW)
                    await eventually(lambda: len(frames.frames) >= 10 and frames.frames[-1][1:] == (80, 60))
                    low_at = time.monotonic()
                    await eventually(lambda: len(frames.between(low_at, time.monotonic())) >= 15)
                    assert {f[1:] for f in frames.between(low_at, time.monotonic())} == {(80, 60)}

                    high_requested = time.monotonic()
                    await subscriber.set_video_quality([track_sid], signal_pb2.HIGH)
                    await eventually(lambda: any(f[1:] == (320, 240) for f in frames.between(high_requested, time.monotonic())))
                    first_high = next(f[0] for f in frames.between(high_requested, time.monotonic()) if f[1:] == (320, 240))
                    await eventually(lambda: len(frames.between(first_high, time.monotonic())) >= 15)
                finally:
                    frames.stop()

                # The switch happened on a key frame of the high layer, and after it only high frames decode.
                after_request = [payload for at, payload in probe.arrivals if at >= high_requested]
                sizes = [vp8_keyframe_size(p) for p in after_request]
                switch = next(i for i, size in enumerate(sizes) if size == (320, 240))
                assert all(size in (None, (80, 60)) for size in sizes[:switch])
                assert {f[1:] for f in frames.between(first_high, time.monotonic())} == {(320, 240)}
                # One continuous stream for the subscriber across both switches.
                assert len(probe.sequence_numbers) == 1
                assert probe.gaps() == 0
                steps = [(b - a) & 0xFFFFFFFF for a, b in zip(probe.timestamps, probe.timestamps[1:])]
                assert all(step < 0x80000000 for step in steps), "timestamps went backwards"
                assert media_pod.metric("switchboard_layer_switches_total") >= 1
        finally:
            await publisher.stop()


async def test_4_mute_ends_on_a_blank_keyframe_forwards_nothing_and_resumes_on_a_keyframe(
    media_pod: MediaPodProcess,
) -> None:
    room = f"mute-{secrets.token_hex(3)}"
    async with await client.connect(media_pod.grpc_target, media_pod.token(room, "pub")) as publisher:
        info = await publisher.publish(NoisyVideoTrack())
        async with await client.connect(media_pod.grpc_target, media_pod.token(room, "sub")) as subscriber:
            [remote] = await subscriber.wait_for_tracks(1)
            probe = RtpProbe()
            probe.attach(remote.receiver)
            frames = FrameLog(remote).start()
            try:
                await eventually(lambda: len(frames.frames) >= 20)
                assert frames.frames[-1][1:] == (320, 240)

                muted_at = time.monotonic()
                await publisher.set_muted(info.sid, True)
                await subscriber.wait_for(lambda s: any(t.muted for p in s.participants.values() for t in p.tracks))
                await asyncio.sleep(0.5)
                # The decoder's last picture is the blank key frame, not a frozen half frame.
                assert frames.frames[-1][1:] == (16, 16), frames.frames[-3:]
                forwarded = media_pod.metric("switchboard_rtp_packets_forwarded_total")
                quiet_from = time.monotonic()
                await asyncio.sleep(1.5)
                assert media_pod.metric("switchboard_rtp_packets_forwarded_total") == forwarded
                assert not [a for a in probe.arrivals if a[0] >= quiet_from], "media reached the subscriber while muted"
                assert not frames.between(quiet_from, time.monotonic())

                unmuted_at = time.monotonic()
                await publisher.set_muted(info.sid, False)
                await eventually(lambda: len(frames.between(unmuted_at, time.monotonic())) >= 10)
                [first_after_unmute, *_] = [payload for at, payload in probe.arrivals if at >= unmuted_at]
                assert vp8_is_keyframe(first_after_unmute), "forwarding resumed on a key frame"
                assert frames.frames[-1][1:] == (320, 240)
                assert muted_at < quiet_from < unmuted_at
            finally:
                frames.stop()


async def test_5_speaker_updates_follow_the_loud_participant_and_stop_when_quiet(media_pod: MediaPodProcess) -> None:
    room = f"speakers-{secrets.token_hex(3)}"
    # 0.5 of full scale is far above the 30 dBov active level; 0.003 is
    # audible on a meter but never speech.
    loud_track, quiet_track = ToneTrack(0.5), ToneTrack(0.003)
    async with (
        await client.connect(media_pod.grpc_target, media_pod.token(room, "listener"), auto_subscribe=False) as listener,
        await client.connect(media_pod.grpc_target, media_pod.token(room, "loud")) as loud,
        await client.connect(media_pod.grpc_target, media_pod.token(room, "quiet")) as quiet,
    ):
        everyone = (listener, loud, quiet)
        await loud.publish(loud_track, name="mic", source=models_pb2.MICROPHONE)
        await quiet.publish(quiet_track, name="mic", source=models_pb2.MICROPHONE)

        # Loud: every participant, the speaker included, learns who speaks.
        for session in everyone:
            await session.wait_for(lambda s: is_speaking(s, loud.participant_sid), timeout=10)
        [entry] = listener.active_speakers
        assert entry.active and entry.level > 0.1, entry
        await asyncio.sleep(1.0)  # keep talking: time for the quiet one to show up if it wrongly would
        assert [s.sid for s in listener.active_speakers] == [loud.participant_sid]

        # Quiet: an update says the speaker stopped...
        loud_track.amplitude = 0.0
        for session in everyone:
            await session.wait_for(lambda s: not is_speaking(s, loud.participant_sid), timeout=5)
            last = speaker_updates(session)[-1]
            assert [(s.sid, s.active) for s in last.speakers] == [(loud.participant_sid, False)], last
        # ...and then nothing more, since nothing changes.
        settled = [len(speaker_updates(s)) for s in everyone]
        await asyncio.sleep(2.0)
        assert [len(speaker_updates(s)) for s in everyone] == settled

        for session in everyone:
            updates = speaker_updates(session)
            assert any(s.sid == loud.participant_sid and s.active for u in updates for s in u.speakers)
            assert not any(s.sid == quiet.participant_sid for u in updates for s in u.speakers), (
                "the quiet publisher was listed as a speaker"
            )
        assert media_pod.metric("switchboard_speaker_updates_total") >= sum(settled)


def test_6_unit_tests_of_sequencer_nack_bitmask_munger_and_duplicate_suppression_pass() -> None:
    root = Path(__file__).resolve().parents[2]
    required = {
        "tests/unit/sfu/test_sequencer.py": ["wraps_around_65535", "duplicate_nacks"],
        "tests/unit/rtp/test_rtcp.py": ["nack"],
        "tests/unit/sfu/test_downtrack.py": ["continuous_across_a_switch", "duplicate_nack"],
    }
    for suite, topics in required.items():
        text = (root / suite).read_text()
        for topic in topics:
            assert topic in text, f"{suite} has no test about {topic}"
    result = subprocess.run(
        [sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", *required, "tests/unit/sfu"],
        cwd=root, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
