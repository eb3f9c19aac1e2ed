"""BandwidthController: feedback reaches the estimator, decisions reach the Forwarders, probes pad and are judged.

Socket-free: the pacer's send function records packets, TWCC feedback is
built with the wire encoder from the arrivals a test chooses, and the
controller runs on the test's event loop.
"""

from __future__ import annotations

import asyncio

import pytest

from mediapod.metrics import MediaCounters
from mediapod.rtp.packet import RtpHeader
from mediapod.rtp.twcc import TwccFeedback
from mediapod.sfu.allocator import AllocatorState, TrackPriority
from mediapod.sfu.bandwidth_controller import (
    UNLIMITED_BPS,
    BandwidthController,
    _ProbeMeter,
)
from mediapod.sfu.bwe.feedback import PacketResult
from mediapod.sfu.downtrack import DownTrack
from mediapod.sfu.forwarder import Forwarder
from mediapod.sfu.probe_controller import ProbeRequest
from mediapod.sfu.receiver import TrackReceiver


def video_track(controller: BandwidthController, key: str, layer_bytes: tuple[int, ...]) -> tuple[Forwarder, DownTrack]:
    """A simulcast track whose layers have received ``layer_bytes`` each over the last second."""
    receivers = tuple(TrackReceiver(key, "video", "video/VP8", 90_000, 100 + i, lambda ssrc: None, layer=i) for i in range(len(layer_bytes)))
    for receiver, total in zip(receivers, layer_bytes, strict=True):
        for n in range(10):  # ten packets spread over the last second
            packet = bytes([0x80, 96]) + n.to_bytes(2, "big") + bytes(8) + bytes(total // 10 - 12)
            receiver.on_rtp(packet, RtpHeader.parse(packet), asyncio.get_running_loop().time() - 1 + n / 10)
    forwarder = Forwarder(len(layer_bytes), request_keyframe=lambda layer: None)
    downtrack = DownTrack("video", 96, 90_000, controller.pacer.send, tuple(r.buffer for r in receivers), MediaCounters(),
                          forwarder, "cname", rtx_payload_type=97, twcc_extension_id=2)
    controller.add_track(key, "video", TrackPriority.CAMERA, forwarder, receivers, downtrack)
    return forwarder, downtrack


async def test_without_congestion_control_the_estimate_is_unlimited_and_the_best_layer_is_allowed() -> None:
    controller = BandwidthController(lambda data: None, MediaCounters(), congestion_control=False)
    forwarder, _ = video_track(controller, "TR_cam", (10_000, 40_000, 120_000))
    await asyncio.sleep(0)

    assert controller.estimate_bps == UNLIMITED_BPS and controller.history is None
    assert controller.state is AllocatorState.STABLE and not forwarder.paused
    controller.close()


async def test_a_low_remb_downgrades_a_track_at_once() -> None:
    controller = BandwidthController(lambda data: None, MediaCounters(), congestion_control=True)
    controller.set_transport_feedback(False)  # a peer that took no transport-wide numbers: REMB is all it sends
    forwarder, _ = video_track(controller, "TR_cam", (10_000, 40_000, 120_000))
    await asyncio.sleep(0)
    forwarder.start()
    assert forwarder.target_spatial == 2

    controller.on_remb(500_000)

    assert controller.state is AllocatorState.DEFICIENT and forwarder.target_spatial == 1
    controller.close()


async def test_malformed_transport_feedback_is_refused_and_counted_nowhere_else() -> None:
    counters = MediaCounters()
    controller = BandwidthController(lambda data: None, counters, congestion_control=True)

    assert controller.on_transport_feedback(b"\x00\x01") is False
    assert counters.congestion_feedback[("twcc", "received")] == 0
    controller.close()


async def test_feedback_for_sent_packets_reaches_the_estimator() -> None:
    sent: list[bytes] = []
    counters = MediaCounters()
    controller = BandwidthController(sent.append, counters, congestion_control=True)
    packet = bytearray(bytes([0x90, 96]) + bytes(10) + bytes([0xBE, 0xDE, 0, 1, 0x21, 0, 0, 0]) + bytes(1000))
    for _ in range(200):
        controller.pacer.send_now(packet)
    # Every packet arrived 10 ms after the previous one: about 830 kbit/s delivered, delay steady.
    arrivals = [n * 10_000 for n in range(200)]
    for start in range(0, 200, 50):
        raw = TwccFeedback(base_sequence=start, reference_time=0, feedback_count=start // 50, arrivals=arrivals[start : start + 50]).serialize()
        assert controller.on_transport_feedback(raw)

    assert counters.congestion_feedback[("twcc", "received")] == 4
    assert [int.from_bytes(p[17:19], "big") for p in sent[:3]] == [0, 1, 2]  # stamped in wire order
    controller.close()


def test_the_probe_meter_takes_the_lower_of_the_sent_and_received_rates() -> None:
    meter = _ProbeMeter(ProbeRequest(goal_bps=1_000_000, media_bps=0, started_at=10.0, duration_s=0.3))
    for n in range(31):  # 1000 bytes every 10 ms sent; received spread over 20 ms each
        meter.add(PacketResult(n, 10.0 + n * 0.01, 1000, 500.0 + n * 0.02))
    meter.add(PacketResult(99, 11.0, 1000, 501.0))  # sent after the probe: not counted
    meter.add(PacketResult(98, 10.1, 1000, None))  # lost

    assert meter.lost == 1
    assert meter.rate_bps() == pytest.approx(8 * 30 * 1000 / 0.6)
