"""SendHistory: TWCC feedback is matched to what was sent, across the 16-bit wrap, and only to what is remembered."""

from __future__ import annotations

from mediapod.rtp.twcc import TwccFeedback
from mediapod.sfu.send_history import SIZE, SendHistory


def feedback(base: int, arrivals: list[int | None]) -> TwccFeedback:
    return TwccFeedback(base_sequence=base, reference_time=0, feedback_count=0, arrivals=arrivals)


def test_sequence_numbers_keep_growing_across_the_wrap() -> None:
    history = SendHistory()
    for n in range(65530, 65540):
        history.record(n & 0xFFFF, n / 1000, 100)

    results = history.results(feedback(65534, [0, 250, 500, 750]))

    assert [r.sequence for r in results] == [65534, 65535, 65536, 65537]
    assert [r.send_time for r in results] == [65.534, 65.535, 65.536, 65.537]
    assert [r.arrival for r in results] == [0.0, 0.00025, 0.0005, 0.00075]


def test_numbers_never_sent_or_long_forgotten_are_left_out() -> None:
    history = SendHistory()
    for n in range(SIZE + 10):
        history.record(n, float(n), 50)

    assert history.results(feedback(0, [0, 0])) == []  # overwritten by SIZE later packets
    assert [r.sequence for r in history.results(feedback(SIZE + 8, [0, 0, 0, 0]))] == [SIZE + 8, SIZE + 9]


def test_feedback_before_anything_was_sent_matches_nothing() -> None:
    assert SendHistory().results(feedback(0, [0, None])) == []


def test_the_largest_datagram_size_is_kept_exactly() -> None:
    history = SendHistory()
    history.record(7, 1.0, 65_507)  # the largest UDP payload: sizes are stored in 16 bits

    assert [r.size for r in history.results(feedback(7, [0]))] == [65_507]
