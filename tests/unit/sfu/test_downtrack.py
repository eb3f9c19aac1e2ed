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


def video_downtrack(
    buffer: PacketBuffer,
    wire: Wire,
    keyframe_requests: list[int],
    *more_layers: PacketBuffer,
    counters: MediaCounters | None = None,
) -> DownTrack:
    downtrack = DownTrack(
        kind="video",
        payload_type=96,
        clock_rate=90_000,
        send=wire.send,
        buffers=(buffer, *more_layers),
        counters=counters or MediaCounters(),
        is_keyframe=vp8_is_keyframe,
        request_keyframe=lambda layer: keyframe_requests.append(layer) is None,
        cname="test",
        rtx_payload_type=97,
    )
    downtrack.bind()
    return downtrack


def forward(downtrack: DownTrack, buffer: PacketBuffer, packet: bytes, layer: int = 0) -> None:
    header = RtpHeader.parse(packet)
    buffer.put(header.sequence_number, packet)
    downtrack.write(packet, header, layer)


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


def vp8_with_tid(tid: int, key: bool = False) -> bytes:
    """VP8 descriptor with X and T bits: TID in the TID/Y/KEYIDX byte."""
    return bytes([0x90, 0x20, tid << 6, 0x00 if key else 0x01]) + b"frame"


def test_simulcast_switches_layer_only_on_a_keyframe_of_the_target() -> None:
    low, high, wire, asks = PacketBuffer(64), PacketBuffer(64), Wire(), []
    downtrack = video_downtrack(low, wire, asks, high)
    downtrack.set_target_layer(0)
    assert downtrack.target_layer == 0
    forward(downtrack, low, source_packet(100, 1000, VP8_KEY), layer=0)
    forward(downtrack, high, source_packet(9000, 555_000, VP8_KEY), layer=1)  # not the target: ignored
    forward(downtrack, low, source_packet(101, 4000, VP8_DELTA), layer=0)
    assert len(wire.packets) == 2 and downtrack.current_layer == 0

    downtrack.set_target_layer(1)
    assert asks[-1] == 1, "a keyframe of the new target layer is requested"
    forward(downtrack, high, source_packet(9001, 558_000, VP8_DELTA), layer=1)  # delta: no switch yet
    forward(downtrack, low, source_packet(102, 7000, VP8_DELTA), layer=0)  # still forwarding low
    assert downtrack.current_layer == 0 and len(wire.packets) == 3
    forward(downtrack, high, source_packet(9002, 561_000, VP8_KEY), layer=1)
    forward(downtrack, low, source_packet(103, 10_000, VP8_DELTA), layer=0)  # old layer now dropped
    forward(downtrack, high, source_packet(9003, 564_000, VP8_DELTA), layer=1)
    assert downtrack.current_layer == 1
    assert [p.payload for p in wire.packets[3:]] == [VP8_KEY, VP8_DELTA]
    sequence = [p.sequence_number for p in wire.packets]
    assert [(b - a) & 0xFFFF for a, b in zip(sequence, sequence[1:])] == [1] * 4
    stamps = [p.timestamp for p in wire.packets]
    assert all(0 < (b - a) & 0xFFFFFFFF < 0x80000000 for a, b in zip(stamps, stamps[1:]))


def test_nack_after_a_switch_is_answered_from_the_right_layer() -> None:
    low, high, wire = PacketBuffer(64), PacketBuffer(64), Wire()
    downtrack = video_downtrack(low, wire, [], high)
    downtrack.set_target_layer(0)
    forward(downtrack, low, source_packet(100, 1000, VP8_KEY), layer=0)
    downtrack.set_target_layer(1)
    forward(downtrack, high, source_packet(9002, 561_000, VP8_KEY), layer=1)
    low_seq, high_seq = wire.packets[0].sequence_number, wire.packets[1].sequence_number
    downtrack.retransmit([low_seq, high_seq], now=50.0)
    originals = {int.from_bytes(p.payload[:2], "big"): p.payload[2:] for p in wire.packets[2:]}
    assert originals == {low_seq: VP8_KEY, high_seq: VP8_KEY}


def test_temporal_layers_above_the_limit_are_dropped_without_gaps() -> None:
    buffer, wire = PacketBuffer(64), Wire()
    downtrack = video_downtrack(buffer, wire, [])
    downtrack.set_target_layer(0, max_temporal=0)
    for i, tid in enumerate([0, 2, 1, 2, 0, 2]):
        forward(downtrack, buffer, source_packet(200 + i, 3000 * i, vp8_with_tid(tid, key=i == 0)))
    assert len(wire.packets) == 2
    sequence = [p.sequence_number for p in wire.packets]
    assert (sequence[1] - sequence[0]) & 0xFFFF == 1


def test_sender_report_maps_now_to_the_rtp_clock_of_the_last_packet_sent() -> None:
    buffer, wire = PacketBuffer(64), Wire()
    downtrack = video_downtrack(buffer, wire, [])
    assert downtrack.sender_report() is None, "nothing sent, nothing to report"
    forward(downtrack, buffer, source_packet(10, 0, VP8_KEY))
    time.sleep(0.05)
    report = downtrack.sender_report()
    assert report is not None
    sent = wire.packets[0]
    assert report.ssrc == downtrack.ssrc
    assert (report.packet_count, report.octet_count) == (1, len(VP8_KEY))
    advanced = (report.rtp_timestamp - sent.timestamp) & 0xFFFFFFFF
    assert 0.05 * 90_000 <= advanced < 1.0 * 90_000


def test_nack_for_a_packet_no_longer_buffered_is_counted_as_a_miss() -> None:
    buffer, wire, counters = PacketBuffer(4), Wire(), MediaCounters()
    downtrack = video_downtrack(buffer, wire, [], counters=counters)
    for i in range(8):
        forward(downtrack, buffer, source_packet(10 + i, 3000 * i, VP8_KEY if i == 0 else VP8_DELTA))
    downtrack.retransmit([wire.packets[0].sequence_number], now=100.0)
    assert counters.nack_misses == 1 and counters.retransmitted_packets == 0
    assert len(wire.packets) == 8
