"""The test-support oracles in tests/support/peers.py: sequence-gap counting and VP8 frame judging.

Acceptance tests trust these to say "no packet was lost" and "this is a key
frame", so they get their own tests with crafted inputs whose answers are
known: wraps past 65535, duplicates, reordering, retransmissions, real gaps.
"""

from __future__ import annotations

import asyncio
import fractions
import random
from dataclasses import dataclass, field

import av
import pytest
from aiortc import RTCRtpCodecParameters
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RtpPacket

from tests.support.peers import (
    RtpArrival,
    RtpProbe,
    eventually,
    extended_sequence_numbers,
    missing_sequence_numbers,
    sequence_coverage,
    standalone_picture_size,
    vp8_frames,
)

RTX_PT = 97


def test_extended_numbers_move_forward_across_the_wrap_and_place_late_packets_behind() -> None:
    assert extended_sequence_numbers([65534, 65535, 0, 1]) == [65534, 65535, 65536, 65537]
    assert extended_sequence_numbers([65535, 1, 0, 2]) == [65535, 65537, 65536, 65538]
    assert extended_sequence_numbers([5, 3, 6]) == [5, 3, 6]


@pytest.mark.parametrize(
    ("received", "missing"),
    [
        ([], 0),
        ([7], 0),
        ([1, 2, 3, 4], 0),
        ([65534, 65535, 0, 1], 0),  # wrap
        ([1, 2, 2, 3], 0),  # duplicate
        ([1, 2, 2, 4], 1),  # a duplicate does not cancel a real gap
        ([1, 3, 2, 4], 0),  # reordering is not loss
        ([65534, 0, 65535, 1], 0),  # reordering across the wrap
        ([65533, 65535, 2], 3),  # 65534, 0 and 1 lost across the wrap
        ([10, 14, 12, 12, 15], 2),  # 11 and 13 lost, one late, one duplicated
    ],
)
def test_missing_numbers_count_each_absent_number_once(received: list[int], missing: int) -> None:
    assert missing_sequence_numbers(received) == missing


@pytest.mark.parametrize(
    ("received", "repaired", "missing"),
    [
        ([1, 2, 4, 5], [3], 0),  # the retransmission filled the gap
        ([65535, 1], [0], 0),  # ...across the wrap
        ([1, 2, 5], [3], 1),  # 4 still missing
        ([1, 2], [4], 1),  # a repaired tail extends the range: 3 still missing
        ([10, 11], [5], 0),  # repairs a packet sent before the stream was watched
        ([1, 2, 4], [3, 3], 0),  # a packet retransmitted twice counts once
    ],
)
def test_retransmissions_count_as_received(received: list[int], repaired: list[int], missing: int) -> None:
    assert missing_sequence_numbers(received, repaired) == missing


def test_coverage_is_distinct_numbers_over_the_range_they_span() -> None:
    assert sequence_coverage([65530, 65531, 65531, 2], [65535]) == (4, 9)


@dataclass
class FakeReceiver:
    """Stands in for aiortc's RTCRtpReceiver: the codecs it negotiated (VP8 and its rtx), what the probe passes on."""

    passed_on: list[int] = field(default_factory=list)
    _RTCRtpReceiver__codecs: dict[int, RTCRtpCodecParameters] = field(
        default_factory=lambda: {
            96: RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=96),
            RTX_PT: RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90_000, payloadType=RTX_PT, parameters={"apt": 96}),
        }
    )

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        self.passed_on.append(packet.sequence_number)


def deliver(receiver: FakeReceiver, packets: list[RtpPacket]) -> None:
    async def run() -> None:
        for packet in packets:
            await receiver._handle_rtp_packet(packet, 0)

    asyncio.run(run())


def video(ssrc: int, seq: int) -> RtpPacket:
    return RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq * 3000, ssrc=ssrc, payload=b"\x10vp8")


def rtx(ssrc: int, seq: int, original: int) -> RtpPacket:
    return RtpPacket(payload_type=RTX_PT, sequence_number=seq, ssrc=ssrc, payload=original.to_bytes(2, "big") + b"vp8")


def test_probe_counts_gaps_per_ssrc_and_credits_retransmissions_to_their_receivers_stream() -> None:
    probe = RtpProbe()
    camera, screen = FakeReceiver(), FakeReceiver()
    probe.attach(camera)  # type: ignore[arg-type]
    probe.attach(screen)  # type: ignore[arg-type]
    deliver(camera, [video(1, 65534), video(1, 0), rtx(11, 500, 65535), video(1, 1), video(1, 1)])
    deliver(screen, [video(2, 100), video(2, 102), video(2, 101), video(2, 104)])

    assert probe.gaps() == 1  # only 103 of the second stream never arrived
    assert probe.recovered == {1: [65535]}
    assert probe.sequence_numbers == {1: [65534, 0, 1, 1], 2: [100, 102, 101, 104]}
    assert camera.passed_on == [65534, 0, 500, 1, 1], "every packet still reaches aiortc"


def test_rtx_padding_is_neither_a_stream_nor_a_repair() -> None:
    """A bandwidth probe's padding on the rtx stream (no original sequence number) is left out of the counts."""
    probe = RtpProbe()
    receiver = FakeReceiver()
    probe.attach(receiver)  # type: ignore[arg-type]
    padding = RtpPacket(payload_type=RTX_PT, sequence_number=900, ssrc=11, payload=b"")
    deliver(receiver, [video(1, 1), padding, video(1, 2)])
    assert probe.sequence_numbers == {1: [1, 2]} and probe.recovered == {}
    assert probe.received_fraction() == 1.0


def test_probe_received_fraction_counts_retransmissions() -> None:
    probe = RtpProbe()
    receiver = FakeReceiver()
    probe.attach(receiver)  # type: ignore[arg-type]
    deliver(receiver, [video(1, n) for n in range(100) if n not in (10, 20)] + [rtx(11, 0, 10)])
    assert probe.received_fraction() == 99 / 100


def encoded_vp8(count: int) -> list[list[bytes]]:
    """RTP payloads of ``count`` noisy 160x120 frames from aiortc's VP8 encoder: a key frame, then inter frames."""
    encoder, noise = Vp8Encoder(), random.Random(3)
    frames = []
    for index in range(count):
        frame = av.VideoFrame(160, 120, "yuv420p")
        for plane in frame.planes:
            plane.update(noise.randbytes(plane.buffer_size))
        frame.pts, frame.time_base = index * 3000, fractions.Fraction(1, 90_000)
        payloads, _ = encoder.encode(frame)
        frames.append(payloads)
    return frames


def arrivals_of(frames: list[list[bytes]], shuffle_within_frames: bool = False) -> list[RtpArrival]:
    arrivals, seq = [], 65530  # numbering wraps inside the sequence
    for index, payloads in enumerate(frames):
        packets = []
        for position, payload in enumerate(payloads):
            packets.append(RtpArrival(float(index), 5, seq & 0xFFFF, index * 3000, position == len(payloads) - 1, payload))
            seq += 1
        if shuffle_within_frames:
            packets.reverse()
        arrivals += packets
    return arrivals


def test_reassembled_key_frame_decodes_alone_and_inter_frames_do_not() -> None:
    frames = vp8_frames(arrivals_of(encoded_vp8(3), shuffle_within_frames=True))
    assert len(frames) == 3
    assert [standalone_picture_size(f) for f in frames] == [(160, 120), None, None]


def test_a_key_frame_with_a_packet_missing_is_not_taken_for_a_key_frame() -> None:
    [key] = encoded_vp8(1)
    assert len(key) > 1, "noise at 160x120 needs several packets"
    [frame] = vp8_frames(arrivals_of([key[:-1]]))
    assert standalone_picture_size(frame) is None


async def test_eventually_accepts_async_predicates_and_reports_the_time_it_took() -> None:
    calls = []

    async def third_time() -> bool:
        calls.append(1)
        return len(calls) >= 3

    took = await eventually(third_time, timeout=1, interval=0.01)
    assert len(calls) == 3 and 0.02 <= took < 1


async def test_eventually_fails_when_the_condition_never_holds() -> None:
    with pytest.raises(AssertionError, match="within 0.05 s"):
        await eventually(lambda: False, timeout=0.05, interval=0.01)
