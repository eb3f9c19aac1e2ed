"""DownTrack: header munging, keyframe starts, continuity across switches, NACK answers."""

from __future__ import annotations

import time

from mediapod.metrics import MediaCounters
from mediapod.rtp.codecs import vp8_is_keyframe
from mediapod.rtp.packet import RtpHeader, RtpPacket
from mediapod.sfu.buffer import PacketBuffer
from mediapod.sfu.downtrack import DownTrack

# VP8 payload descriptor (S=1, PID=0) + a key frame's first byte (P bit 0) / a delta frame's (P bit 1).
VP8_KEY = bytes([0x10, 0x00]) + b"keyframe-bytes"
VP8_DELTA = bytes([0x10, 0x01]) + b"delta-bytes"


def source_packet(seq: int, ts: int, payload: bytes, marker: bool = True, extensions: dict[int, bytes] | None = None) -> bytes:
    return RtpPacket(
        payload_type=100,
        sequence_number=seq,
        timestamp=ts,
        ssrc=0xAAAA,
        marker=marker,
        extension_profile=0xBEDE if extensions else None,
        extensions=extensions or {},
        payload=payload,
    ).serialize()


class Wire:
    """Where the DownTrack sends: the packets, parsed."""

    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []

    def send(self, data: bytes) -> None:
        self.packets.append(RtpPacket.parse(data))


def video_downtrack(buffer: PacketBuffer, wire: Wire, keyframe_requests: list[int]) -> DownTrack:
    downtrack = DownTrack(
        kind="video",
        payload_type=96,
        clock_rate=90_000,
        send=wire.send,
        buffer=buffer,
        counters=MediaCounters(),
        is_keyframe=vp8_is_keyframe,
        request_keyframe=lambda: keyframe_requests.append(1) is None,
        cname="test",
        rtx_payload_type=97,
    )
    downtrack.bind()
    return downtrack


def forward(downtrack: DownTrack, buffer: PacketBuffer, packet: bytes) -> None:
    header = RtpHeader.parse(packet)
    buffer.put(header.sequence_number, packet)
    downtrack.write(packet, header)


def test_video_waits_for_a_keyframe_and_asks_for_one() -> None:
    buffer, wire, asks = PacketBuffer(64), Wire(), []
    downtrack = video_downtrack(buffer, wire, asks)
    assert asks, "binding a video DownTrack requests a keyframe"
    forward(downtrack, buffer, source_packet(1, 3000, VP8_DELTA))
    assert wire.packets == []
    forward(downtrack, buffer, source_packet(2, 6000, VP8_KEY))
    forward(downtrack, buffer, source_packet(3, 9000, VP8_DELTA))
    assert len(wire.packets) == 2


def test_header_is_rewritten_and_publisher_extensions_stripped() -> None:
    buffer, wire = PacketBuffer(64), Wire()
    downtrack = video_downtrack(buffer, wire, [])
    forward(downtrack, buffer, source_packet(500, 1_000_000, VP8_KEY, extensions={1: b"0", 3: b"\x01\x02\x03"}))
    [out] = wire.packets
    assert out.ssrc == downtrack.ssrc != 0xAAAA
    assert out.payload_type == 96
    assert out.extensions == {} and out.extension_profile is None
    assert out.payload == VP8_KEY
    assert out.marker


def test_sequence_numbers_and_timestamps_stay_continuous_across_a_switch() -> None:
    buffer, wire = PacketBuffer(64), Wire()
    downtrack = video_downtrack(buffer, wire, [])
    for i in range(5):
        forward(downtrack, buffer, source_packet(1000 + i, 50_000 + 3000 * i, VP8_KEY if i == 0 else VP8_DELTA))
    # The source restarts elsewhere (mute/unmute, a layer switch): new seq and ts space.
    downtrack.resume_on_keyframe()
    time.sleep(0.02)
    forward(downtrack, buffer, source_packet(40_000, 7_000_000, VP8_DELTA))  # not a keyframe: held back
    for i in range(3):
        forward(downtrack, buffer, source_packet(40_001 + i, 7_003_000 + 3000 * i, VP8_KEY if i == 0 else VP8_DELTA))
    sequence = [p.sequence_number for p in wire.packets]
    assert [(b - a) & 0xFFFF for a, b in zip(sequence, sequence[1:])] == [1] * 7
    stamps = [p.timestamp for p in wire.packets]
    steps = [(b - a) & 0xFFFFFFFF for a, b in zip(stamps, stamps[1:])]
    assert all(0 < step < 0x80000000 for step in steps), "timestamps are monotonic"
    assert steps[4] >= 0.02 * 90_000, "the clock advanced by the time the stream was paused"


def test_nack_is_answered_over_rtx_with_the_original_sequence_number() -> None:
    buffer, wire = PacketBuffer(64), Wire()
    downtrack = video_downtrack(buffer, wire, [])
    for i in range(4):
        forward(downtrack, buffer, source_packet(10 + i, 3000 * i, VP8_KEY if i == 0 else VP8_DELTA))
    lost = wire.packets[2]
    downtrack.retransmit([lost.sequence_number], now=100.0)
    rtx = wire.packets[-1]
    assert rtx.ssrc == downtrack.rtx_ssrc and rtx.payload_type == 97
    assert int.from_bytes(rtx.payload[:2], "big") == lost.sequence_number
    assert rtx.payload[2:] == lost.payload
    assert rtx.timestamp == lost.timestamp


def test_duplicate_nack_within_the_window_is_answered_once() -> None:
    buffer, wire = PacketBuffer(64), Wire()
    downtrack = video_downtrack(buffer, wire, [])
    forward(downtrack, buffer, source_packet(10, 0, VP8_KEY))
    seq = wire.packets[0].sequence_number
    downtrack.retransmit([seq, seq], now=100.0)
    downtrack.retransmit([seq], now=100.05)
    assert len(wire.packets) == 2
