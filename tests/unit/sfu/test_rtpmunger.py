"""RtpMunger: one contiguous sequence number space and a monotonic clock across switches, drops, padding and late packets."""

from __future__ import annotations

from itertools import pairwise

from mediapod.rtp.packet import RtpHeader
from mediapod.sfu.extpacket import ExtPacket
from mediapod.sfu.rtpmunger import MAX_MISSING, RtpMunger

CLOCK = 90_000


def packet(extended: int, timestamp: int, *, marker: bool = True, at: float = 0.0) -> ExtPacket:
    header = RtpHeader(96, marker, extended & 0xFFFF, timestamp & 0xFFFFFFFF, 1, 12, 20)
    return ExtPacket(bytes(20), header, at, 0, extended)


def steps(numbers: list[int], modulo: int = 0x10000) -> list[int]:
    return [(b - a) % modulo for a, b in pairwise(numbers)]


def started(first: int = 1000, timestamp: int = 50_000) -> tuple[RtpMunger, tuple[int, int]]:
    munger = RtpMunger(CLOCK)
    ext = packet(first, timestamp)
    munger.switch(ext, 0.0)
    out = munger.translate(ext)
    assert out is not None
    return munger, out


def test_within_a_source_output_is_input_plus_fixed_offsets() -> None:
    munger, (seq0, ts0) = started(1000, 50_000)
    outs = [munger.translate(packet(1000 + i, 50_000 + 3000 * i)) for i in range(1, 4)]
    assert outs == [((seq0 + i) & 0xFFFF, (ts0 + 3000 * i) & 0xFFFFFFFF) for i in range(1, 4)]


def test_a_gap_in_the_input_stays_a_gap_the_subscriber_can_nack() -> None:
    munger, (seq0, _) = started(1000)
    out = munger.translate(packet(1003, 59_000))
    assert out is not None and (out[0] - seq0) & 0xFFFF == 3


def test_numbers_stay_contiguous_across_the_input_wrap() -> None:
    munger, first = started(65534)
    outs = [first] + [munger.translate(packet(65534 + i, 3000 * i)) for i in range(1, 4)]  # 65535, 0, 1
    assert steps([o[0] for o in outs if o is not None]) == [1, 1, 1]


def test_a_skipped_packet_moves_later_packets_down_one() -> None:
    munger, (seq0, _) = started(200)
    munger.skip(packet(201, 53_000))
    munger.skip(packet(202, 56_000))
    out = munger.translate(packet(203, 59_000))
    assert out is not None and (out[0] - seq0) & 0xFFFF == 1


def test_a_late_packet_fills_its_hole_with_the_number_it_had_then() -> None:
    munger, (seq0, _) = started(10)
    at_12 = munger.translate(packet(12, 6000))  # 11 is missing: a hole at seq0 + 1
    munger.skip(packet(13, 9000))  # a temporal drop after the hole moves 14 down
    at_14 = munger.translate(packet(14, 12_000))
    late_11 = munger.translate(packet(11, 3000))
    assert at_12 is not None and at_14 is not None and late_11 is not None
    assert [(n - seq0) & 0xFFFF for n in (late_11[0], at_12[0], at_14[0])] == [1, 2, 3]
    assert munger.translate(packet(11, 3000)) is None, "a hole is filled once"


def test_a_late_packet_from_before_a_switch_is_not_sent() -> None:
    munger, _ = started(10)
    munger.translate(packet(12, 6000))  # 11 missing
    munger.switch(packet(500, 900_000), 0.0)
    assert munger.translate(packet(11, 3000)) is None


def test_a_packet_later_than_the_holes_remembered_is_not_sent() -> None:
    munger, _ = started(0)
    munger.translate(packet(MAX_MISSING + 10, 0))  # more holes than remembered
    assert munger.translate(packet(1, 0)) is None
    assert munger.translate(packet(MAX_MISSING + 9, 0)) is not None


def test_a_switch_continues_our_numbers_one_past_the_last_and_our_clock_by_the_time_passed() -> None:
    munger = RtpMunger(CLOCK)
    sent = []
    first = packet(1000, 50_000, at=10.0)
    munger.switch(first, 10.0)
    for i in range(3):
        sent.append(munger.translate(packet(1000 + i, 50_000 + 3000 * i, at=10.0 + i / 30)))
    # Another layer (or the same one after a pause): its own numbers and clock.
    new = packet(40_000, 7_000_000, at=11.0)
    munger.switch(new, 11.0)
    sent.append(munger.translate(new))
    sent.append(munger.translate(packet(40_001, 7_003_000, at=11.03)))
    assert all(s is not None for s in sent)
    assert steps([s[0] for s in sent if s]) == [1, 1, 1, 1]
    clock = steps([s[1] for s in sent if s], 1 << 32)
    assert clock[2] == int((11.0 - (10.0 + 2 / 30)) * CLOCK), "the clock moved by the time that passed"
    assert all(0 < step < 1 << 31 for step in clock)


def test_switching_down_and_up_again_keeps_one_stream() -> None:
    munger = RtpMunger(CLOCK)
    sent = []
    for layer_start, ts_start, at in ((9000, 500_000, 1.0), (100, 10_000, 2.0), (9500, 590_000, 3.0)):
        munger.switch(packet(layer_start, ts_start, at=at), at)
        for i in range(3):
            sent.append(munger.translate(packet(layer_start + i, ts_start + 3000 * i, at=at + i / 30)))
    assert steps([s[0] for s in sent if s]) == [1] * 8
    assert all(0 < step < 1 << 31 for step in steps([s[1] for s in sent if s], 1 << 32))


def test_padding_after_a_frame_end_takes_the_next_number_and_media_moves_up_one() -> None:
    munger, (seq0, ts0) = started(100)
    assert munger.next_padding() == ((seq0 + 1) & 0xFFFF, ts0)
    assert munger.next_padding() == ((seq0 + 2) & 0xFFFF, ts0)
    out = munger.translate(packet(101, 53_000))
    assert out is not None and out[0] == (seq0 + 3) & 0xFFFF


def test_padding_is_refused_mid_frame_and_before_anything_was_sent() -> None:
    assert RtpMunger(CLOCK).next_padding() is None
    munger, _ = started(100)
    munger.translate(packet(101, 53_000, marker=False))
    assert munger.next_padding() is None, "padding inside a frame would corrupt it"


def test_a_late_packet_from_before_padding_keeps_its_number() -> None:
    munger, (seq0, _) = started(100)
    munger.translate(packet(102, 56_000))  # 101 missing
    munger.next_padding()
    after = munger.translate(packet(103, 59_000))
    late = munger.translate(packet(101, 53_000))
    assert after is not None and late is not None
    assert ((late[0] - seq0) & 0xFFFF, (after[0] - seq0) & 0xFFFF) == (1, 4)


def test_frames_of_our_own_continue_the_stream_and_a_later_switch_follows_them() -> None:
    munger, (seq0, ts0) = started(100, 1000)
    blanks = [munger.next_frame(5.0, 3000) for _ in range(3)]
    assert [b[0] for b in blanks] == [(seq0 + i) & 0xFFFF for i in (1, 2, 3)]
    assert steps([ts0] + [b[1] for b in blanks], 1 << 32)[1:] == [3000, 3000]
    resumed = packet(7000, 123, at=6.0)
    munger.switch(resumed, 6.0)
    out = munger.translate(resumed)
    assert out is not None and out[0] == (seq0 + 4) & 0xFFFF
    assert 0 < (out[1] - blanks[-1][1]) & 0xFFFFFFFF < 1 << 31


def test_rtp_time_extrapolates_the_clock_from_the_last_packet_sent() -> None:
    munger = RtpMunger(CLOCK)
    ext = packet(1, 0, at=20.0)
    munger.switch(ext, 20.0)
    _, ts = munger.translate(ext) or (0, 0)
    assert munger.rtp_time(20.5) == (ts + CLOCK // 2) & 0xFFFFFFFF


def vp8_payload(picture_id: int, tl0: int) -> bytes:
    """RFC 7741 4.2 descriptor as libwebrtc writes it for simulcast: X, S; I (15-bit M), L, T; then VP8 data."""
    return bytes([0x90, 0xE0, 0x80 | (picture_id >> 8), picture_id & 0xFF, tl0, 0x00]) + b"vp8-frame"


def vp8_packet(extended: int, picture_id: int, tl0: int) -> ExtPacket:
    payload = vp8_payload(picture_id, tl0)
    header = RtpHeader(96, True, extended & 0xFFFF, 0, 1, 12, 12 + len(payload))
    return ExtPacket(bytes(12) + payload, header, 0.0, 0, extended, picture_id_at=2, picture_id_len=2, tl0picidx_at=4)


def sent_vp8(munger: RtpMunger, ext: ExtPacket, retransmission: bool = False) -> tuple[int, int] | None:
    """What the subscriber reads in the descriptor: (picture id, TL0PICIDX), after the munger rewrote a copy."""
    if not retransmission and munger.translate(ext) is None:
        return None
    out = bytearray(ext.packet)
    munger.rewrite_payload(out, 12, ext, retransmission)
    return ((out[14] & 0x7F) << 8) | out[15], out[16]


def test_vp8_picture_ids_continue_across_a_switch() -> None:
    munger = RtpMunger(CLOCK, vp8=True)
    first = vp8_packet(10, 500, 20)
    munger.switch(first, 0.0)
    assert [sent_vp8(munger, first), sent_vp8(munger, vp8_packet(11, 501, 21))] == [(500, 20), (501, 21)]
    other = vp8_packet(9000, 7000, 200)  # the other layer numbers its pictures on its own
    munger.switch(other, 0.0)
    assert [sent_vp8(munger, other), sent_vp8(munger, vp8_packet(9001, 7001, 201))] == [(502, 22), (503, 23)]


def test_vp8_late_packets_and_retransmissions_do_not_move_the_last_picture_id() -> None:
    munger = RtpMunger(CLOCK, vp8=True)
    first = vp8_packet(10, 500, 20)
    munger.switch(first, 0.0)
    sent_vp8(munger, first)
    sent_vp8(munger, vp8_packet(12, 502, 21))  # 11 is late
    assert sent_vp8(munger, vp8_packet(11, 501, 20)) == (501, 20)
    assert sent_vp8(munger, vp8_packet(12, 502, 21), retransmission=True) == (502, 21)
    other = vp8_packet(9000, 7000, 200)
    munger.switch(other, 0.0)
    assert sent_vp8(munger, other) == (503, 22), "one past the newest sent, not past the late one"
