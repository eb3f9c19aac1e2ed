"""UnknownSsrcGuard: when unannounced RTP turns from a mistake into a flood."""

from __future__ import annotations

from mediapod.rtc.ssrc_guard import UnknownSsrcGuard, UnknownSsrcLimits


def guard(**limits: float) -> tuple[UnknownSsrcGuard, list[str]]:
    trips: list[str] = []
    return UnknownSsrcGuard(UnknownSsrcLimits(**limits), trips.append), trips  # type: ignore[arg-type]


def test_a_few_stray_ssrcs_are_tolerated() -> None:
    g, trips = guard(max_ssrcs=4, max_packets=100)
    for ssrc in range(4):
        for _ in range(10):
            g.observe(ssrc, now=1.0)
    assert trips == [] and not g.tripped


def test_one_ssrc_too_many_trips() -> None:
    g, trips = guard(max_ssrcs=4, max_packets=100)
    for ssrc in range(5):
        g.observe(ssrc, now=1.0)
    assert len(trips) == 1 and "4 unannounced SSRCs" in trips[0]


def test_too_many_packets_in_one_window_trip() -> None:
    g, trips = guard(max_ssrcs=4, max_packets=10, window=5.0)
    for i in range(11):
        g.observe(7, now=1.0 + i * 0.1)
    assert len(trips) == 1 and "10 RTP packets" in trips[0]


def test_the_packet_count_starts_over_each_window() -> None:
    g, trips = guard(max_ssrcs=4, max_packets=10, window=5.0)
    for window in range(5):
        for i in range(10):
            g.observe(7, now=window * 5.0 + i * 0.01)
    assert trips == []


def test_it_trips_once_whatever_follows() -> None:
    g, trips = guard(max_ssrcs=2, max_packets=1000)
    for ssrc in range(100):
        g.observe(ssrc, now=1.0)
    assert len(trips) == 1
