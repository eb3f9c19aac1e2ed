"""TwccRecorder: publisher-side TWCC feedback, judged by hand-computed bytes for
a small case and otherwise by decoding what it sends (RTCP framing, then the
FCI) and comparing with the arrivals we fed it.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediapod.rtp.rtcp import TransportCC, parse_rtcp
from mediapod.rtp.twcc import TwccFeedback
from mediapod.sfu.twcc_feedback import MAX_FEEDBACK_BYTES, MAX_RECEIVED_PER_FEEDBACK, RESYNC_AFTER, WINDOW, TwccRecorder

SENDER, MEDIA = 0x11111111, 0x22222222
T0 = 1000.0


def decode(packets: list[bytes]) -> list[TwccFeedback]:
    feedbacks = []
    for packet in packets:
        [rtcp] = parse_rtcp(packet)
        assert isinstance(rtcp, TransportCC)
        assert (rtcp.sender_ssrc, rtcp.media_ssrc) == (SENDER, MEDIA)
        feedbacks.append(TwccFeedback.parse(rtcp.raw))
    return feedbacks


def statuses(feedbacks: list[TwccFeedback]) -> dict[int, float | None]:
    """Sequence -> arrival in seconds after the time base, across feedbacks that must not overlap."""
    out: dict[int, float | None] = {}
    for feedback in feedbacks:
        for index, arrival in enumerate(feedback.arrivals):
            sequence = (feedback.base_sequence + index) & 0xFFFF
            assert sequence not in out, f"sequence {sequence} reported twice"
            out[sequence] = None if arrival is None else (feedback.reference_time * 64_000 + arrival) / 1e6
    return out


def test_small_case_matches_hand_computed_bytes() -> None:
    recorder = TwccRecorder()
    recorder.on_packet(10, T0)
    recorder.on_packet(11, T0 + 0.001)
    recorder.on_packet(13, T0 + 0.0025)
    # Times since the first arrival in 250 µs ticks: 0, 4, 10; reference time 0.
    # FCI (draft -01 §3.1): base 10 = 000a, count 4 = 0004, reference 0 and
    # feedback count 0 = 00000000; statuses received, received, not, received
    # fit one one-bit vector (§3.1.4) 1|0|1 1 0 1 0 0 0 0 0 0 0 0 0 0 = b400;
    # small deltas (§3.1.5) 0, 4, 6 ticks = 00 04 06. 13 bytes of FCI plus the two
    # SSRCs is 21 bytes, so RTCP pads 3 (RFC 3550 6.4.1: P bit, last byte counts
    # them): first byte 1010 1111 = af (V=2, P, FMT 15), PT 205 = cd, 6 words.
    expected = bytes.fromhex("afcd0006" "11111111" "22222222" "000a0004" "00000000" "b400" "000406" "000003")
    assert recorder.feedback(SENDER, MEDIA) == [expected]


def test_next_feedback_continues_where_the_last_one_stopped() -> None:
    recorder = TwccRecorder()
    recorder.on_packet(10, T0)
    recorder.feedback(SENDER, MEDIA)
    recorder.on_packet(12, T0 + 0.070)
    recorder.on_packet(11, T0 + 0.071)
    [feedback] = decode(recorder.feedback(SENDER, MEDIA))
    assert feedback.base_sequence == 11
    assert feedback.feedback_count == 1
    # Ordered by sequence: 11 arrived after 12, so its arrival comes second in time.
    # 70 ms = 280 ticks; reference rounds down to 64 ms = 256 ticks, reference time 1.
    assert feedback.reference_time == 1
    assert feedback.arrivals == [7000, 6000]


def test_nothing_new_means_no_feedback() -> None:
    recorder = TwccRecorder()
    assert recorder.feedback(SENDER, MEDIA) == []
    recorder.on_packet(1, T0)
    assert len(recorder.feedback(SENDER, MEDIA)) == 1
    assert recorder.feedback(SENDER, MEDIA) == []


def test_duplicates_keep_the_first_arrival() -> None:
    recorder = TwccRecorder()
    recorder.on_packet(5, T0)
    recorder.on_packet(6, T0 + 0.002)
    recorder.on_packet(6, T0 + 0.009)
    assert statuses(decode(recorder.feedback(SENDER, MEDIA))) == {5: 0.0, 6: 0.002}


def test_late_packet_after_its_loss_was_reported_is_not_reported_again() -> None:
    recorder = TwccRecorder()
    recorder.on_packet(1, T0)
    recorder.on_packet(3, T0 + 0.001)
    assert statuses(decode(recorder.feedback(SENDER, MEDIA))) == {1: 0.0, 2: None, 3: 0.001}
    recorder.on_packet(2, T0 + 0.060)
    assert recorder.feedback(SENDER, MEDIA) == []
    recorder.on_packet(4, T0 + 0.061)
    assert statuses(decode(recorder.feedback(SENDER, MEDIA))) == {4: 0.061}


def test_sequence_numbers_wrap() -> None:
    recorder = TwccRecorder()
    for i, sequence in enumerate([65534, 65535, 0, 1]):
        recorder.on_packet(sequence, T0 + i / 1000)
    [feedback] = decode(recorder.feedback(SENDER, MEDIA))
    assert feedback.base_sequence == 65534
    assert feedback.arrivals == [0, 1000, 2000, 3000]


def test_arrivals_come_back_within_the_rounding() -> None:
    recorder = TwccRecorder()
    sent = {}
    for sequence in range(300):
        if sequence % 7 == 3:
            continue
        sent[sequence] = 0.5 + sequence * 0.000333
        recorder.on_packet(sequence, T0 + sent[sequence])
    reported = statuses(decode(recorder.feedback(SENDER, MEDIA)))
    assert set(reported) == set(range(300))
    for sequence, arrival in reported.items():
        if sequence in sent:
            # The recorder's time base is the first arrival.
            assert abs(arrival - (sent[sequence] - sent[0])) <= 0.000125 + 1e-9
        else:
            assert arrival is None


def test_many_packets_split_into_bounded_feedback_packets() -> None:
    recorder = TwccRecorder()
    for sequence in range(2000):
        recorder.on_packet(sequence, T0 + sequence * 0.0001)
    packets = recorder.feedback(SENDER, MEDIA)
    feedbacks = decode(packets)
    assert len(packets) == 4
    assert all(len(packet) <= MAX_FEEDBACK_BYTES for packet in packets)
    assert all(sum(a is not None for a in f.arrivals) <= MAX_RECEIVED_PER_FEEDBACK for f in feedbacks)
    assert [f.feedback_count for f in feedbacks] == [0, 1, 2, 3]
    assert set(statuses(feedbacks)) == set(range(2000))


def test_worst_case_packet_still_fits_the_byte_limit() -> None:
    # Every other packet lost and every delta large (100 ms apart): two-bit vectors
    # and two-byte deltas, so 512 received packets would take 20 + 2 * 147 + 1024 bytes.
    recorder = TwccRecorder()
    for sequence in range(0, 2000, 2):
        recorder.on_packet(sequence, T0 + sequence * 0.05)
    packets = recorder.feedback(SENDER, MEDIA)
    assert all(len(packet) <= MAX_FEEDBACK_BYTES for packet in packets)
    reported = statuses(decode(packets))
    assert set(reported) == set(range(1999))
    for sequence in range(0, 2000, 2):
        assert reported[sequence] == pytest.approx(sequence * 0.05)
    assert len(packets) == 4  # 256 received packets each after halving the 512 that did not fit


def test_delta_beyond_16_bits_starts_a_new_feedback_packet() -> None:
    recorder = TwccRecorder()
    recorder.on_packet(1, T0)
    recorder.on_packet(2, T0 + 10.0)
    first, second = decode(recorder.feedback(SENDER, MEDIA))
    assert (first.base_sequence, first.arrivals) == (1, [0])
    # 10 s = 156.25 * 64 ms: reference time 156, first delta the remaining 16 ms.
    assert (second.base_sequence, second.reference_time, second.arrivals) == (2, 156, [16_000])
    assert (first.feedback_count, second.feedback_count) == (0, 1)


def test_feedback_count_wraps_at_256() -> None:
    recorder = TwccRecorder()
    counts = []
    for sequence in range(300):
        recorder.on_packet(sequence, T0 + sequence * 0.05)
        counts += [f.feedback_count for f in decode(recorder.feedback(SENDER, MEDIA))]
    assert counts == [i % 256 for i in range(300)]


def test_forward_jump_reports_at_most_one_window() -> None:
    recorder = TwccRecorder()
    recorder.on_packet(0, T0)
    recorder.on_packet(30_000, T0 + 0.001)
    reported = statuses(decode(recorder.feedback(SENDER, MEDIA)))
    assert len(reported) == WINDOW
    assert reported[30_000] == 0.001
    assert sum(a is not None for a in reported.values()) == 1


def test_a_packet_from_far_outside_the_window_is_ignored() -> None:
    recorder = TwccRecorder()
    recorder.on_packet(100, T0)
    recorder.on_packet(100 + 40_000, T0 + 0.001)  # unwraps to 25536 before 100
    recorder.on_packet(101, T0 + 0.002)
    assert statuses(decode(recorder.feedback(SENDER, MEDIA))) == {100: 0.0, 101: 0.002}


def test_a_sender_that_restarts_its_numbering_is_followed_after_a_while() -> None:
    recorder = TwccRecorder()
    recorder.on_packet(40_000, T0)
    recorder.feedback(SENDER, MEDIA)
    for i in range(RESYNC_AFTER + 2):  # 20000 is 20000 behind 40000, not 45536 ahead
        recorder.on_packet(20_000 + i, T0 + 1 + i / 1000)
    feedbacks = decode(recorder.feedback(SENDER, MEDIA))
    reported = statuses(feedbacks)
    # Restarted at the packet that completed the run of stale ones; the time base stays.
    first = 20_000 + RESYNC_AFTER - 1
    assert set(reported) == {first, first + 1, first + 2}
    assert abs(reported[first] - (1 + (RESYNC_AFTER - 1) / 1000)) <= 0.000125
    assert feedbacks[0].feedback_count == 1


def test_reference_time_wraps_in_24_bits() -> None:
    recorder = TwccRecorder()
    recorder.on_packet(1, 0.0)
    recorder.feedback(SENDER, MEDIA)
    later = (1 << 23) * 0.064 + 0.010  # just past the signed 24-bit range of 64 ms units
    recorder.on_packet(2, later)
    [feedback] = decode(recorder.feedback(SENDER, MEDIA))
    assert feedback.reference_time == -(1 << 23)
    assert feedback.arrivals == [10_000]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.floats(0, 0.2), st.booleans()), max_size=300))
def test_any_input_gives_parseable_bounded_feedback(events: list[tuple[int, float, bool]]) -> None:
    recorder = TwccRecorder()
    now = T0
    for sequence, step, tick in events:
        now += step
        recorder.on_packet(sequence, now)
        if tick:
            packets = recorder.feedback(SENDER, MEDIA)
            assert all(len(packet) <= MAX_FEEDBACK_BYTES for packet in packets)
            assert len(statuses(decode(packets))) <= WINDOW
