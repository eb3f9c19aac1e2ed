"""The per-subscriber estimate on synthetic traces over a bottleneck, and on odd feedback."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediapod.sfu.bwe.estimator import BandwidthEstimator
from mediapod.sfu.bwe.feedback import PacketResult
from mediapod.sfu.bwe.trendline import BandwidthSignal
from tests.support.bottleneck import Bottleneck, Trace

MIN, MAX = 30_000, 30_000_000


def trace(initial: float, capacity: float, **link: float) -> Trace:
    return Trace(BandwidthEstimator(initial_bps=initial, min_bps=MIN, max_bps=MAX), Bottleneck(capacity, **link))


def steady(rate_bps: float, start: float, seconds: float, first_sequence: int = 0) -> list[PacketResult]:
    """Packets every 10 ms arriving with constant delay."""
    gap = 0.01
    size = int(rate_bps * gap / 8)
    return [
        PacketResult(first_sequence + i, start + i * gap, size, 900 + start + i * gap)
        for i in range(int(seconds / gap))
    ]


def test_estimate_falls_to_the_bottleneck_capacity_within_two_seconds() -> None:
    t = trace(initial=3_000_000, capacity=1_000_000, max_queue_delay=math.inf)  # queueing, no drops
    t.run(2.0)
    assert 0.75 * 1_000_000 <= t.estimator.estimate_bps <= 1.05 * 1_000_000


def test_estimate_settles_near_capacity_when_the_sender_follows_it() -> None:
    t = trace(initial=3_000_000, capacity=1_000_000, max_queue_delay=math.inf)
    t.run(20.0)
    assert 0.8 * 1_000_000 <= t.mean_estimate(since=5.0) <= 1.05 * 1_000_000


def test_estimate_grows_while_delay_stays_steady() -> None:
    t = trace(initial=500_000, capacity=10_000_000)
    t.run(5.0)
    estimates = [estimate for _, estimate in t.history]
    assert estimates == sorted(estimates)
    assert t.estimator.estimate_bps > 1.3 * 500_000
    assert t.estimator.signal is BandwidthSignal.NORMAL


def test_estimate_recovers_when_capacity_rises() -> None:
    t = trace(initial=3_000_000, capacity=1_000_000, max_queue_delay=math.inf)
    t.run(10.0)
    t.link.capacity_bps = 2_000_000
    t.run(25.0)
    assert t.estimator.estimate_bps > 1.5 * 1_000_000


def test_heavy_random_loss_lowers_the_estimate() -> None:
    t = trace(initial=2_000_000, capacity=20_000_000, random_loss=0.2)
    t.run(8.0)
    assert t.estimator.estimate_bps < 0.5 * 2_000_000


def test_light_random_loss_never_lowers_the_estimate() -> None:
    t = trace(initial=1_000_000, capacity=20_000_000, random_loss=0.01)
    t.run(10.0)
    estimates = [estimate for _, estimate in t.history]
    assert estimates == sorted(estimates)


def test_receiver_reports_of_heavy_loss_lower_the_estimate() -> None:
    estimator = BandwidthEstimator(initial_bps=1_000_000)
    estimator.on_receiver_loss(0.3, now=1.0)
    assert estimator.estimate_bps == pytest.approx(1_000_000 * (1 - 0.5 * 0.3))


def test_receiver_reports_of_light_loss_change_nothing() -> None:
    estimator = BandwidthEstimator(initial_bps=1_000_000)
    for second in range(10):
        estimator.on_receiver_loss(0.015, now=float(second))
    assert estimator.estimate_bps == 1_000_000


def test_without_twcc_the_estimate_follows_remb() -> None:
    estimator = BandwidthEstimator(initial_bps=1_000_000)
    estimator.on_remb(400_000, now=1.0)
    assert estimator.estimate_bps == 400_000
    estimator.on_remb(2_500_000, now=2.0)
    assert estimator.estimate_bps == 2_500_000


def test_remb_is_still_bounded_by_loss_and_by_the_configured_range() -> None:
    estimator = BandwidthEstimator(initial_bps=1_000_000, max_bps=2_000_000)
    estimator.on_remb(5_000_000, now=1.0)
    assert estimator.estimate_bps == 2_000_000
    estimator.on_receiver_loss(0.5, now=1.5)
    assert estimator.estimate_bps == pytest.approx(0.75 * 2_000_000)


def test_remb_is_ignored_while_twcc_feedback_is_fresh() -> None:
    estimator = BandwidthEstimator(initial_bps=1_000_000)
    estimator.on_packet_results(steady(1_000_000, start=0.0, seconds=0.5), now=0.5)
    before = estimator.estimate_bps
    estimator.on_remb(100_000, now=0.6)
    assert estimator.estimate_bps == before
    estimator.on_remb(100_000, now=3.0)  # TWCC went quiet
    assert estimator.estimate_bps == 100_000


def test_probe_acknowledged_without_overuse_lifts_the_estimate() -> None:
    t = trace(initial=1_000_000, capacity=20_000_000)
    t.run(2.0)
    t.estimator.on_probe_result(4_000_000, now=t.now)
    assert t.estimator.estimate_bps == 4_000_000


def test_probe_below_the_estimate_changes_nothing() -> None:
    estimator = BandwidthEstimator(initial_bps=1_000_000)
    estimator.on_probe_result(500_000, now=1.0)
    assert estimator.estimate_bps == 1_000_000


def test_probe_during_overuse_is_rejected() -> None:
    t = trace(initial=3_000_000, capacity=1_000_000)
    for _ in range(20):
        t.run(0.1)
        if t.estimator.signal is BandwidthSignal.OVERUSING:
            break
    assert t.estimator.signal is BandwidthSignal.OVERUSING
    t.estimator.on_probe_result(5_000_000, now=t.now)
    assert t.estimator.estimate_bps < 3_000_000


ODD_FEEDBACK = {
    "empty": [],
    "all lost": [PacketResult(i, i * 0.01, 1200, None) for i in range(100)],
    "arrivals going backwards": [PacketResult(i, i * 0.01, 1200, 50 - i * 0.01) for i in range(100)],
    "one sequence repeated": [PacketResult(7, i * 0.01, 1200, 3 + i * 0.01) for i in range(100)],
    "duplicated sequences": [PacketResult(i // 2, i * 0.01, 1200, 3 + i * 0.01) for i in range(100)],
    "zero sizes": [PacketResult(i, i * 0.01, 0, 3 + i * 0.01) for i in range(100)],
    "huge arrival jumps": [PacketResult(i, i * 0.01, 1200, (i % 3) * 1e6) for i in range(100)],
    "not finite": [PacketResult(i, math.nan, 1200, math.inf) for i in range(10)],
    "negative sizes": [PacketResult(i, i * 0.01, -5, 3 + i * 0.01) for i in range(100)],
}


@pytest.mark.parametrize("results", ODD_FEEDBACK.values(), ids=ODD_FEEDBACK.keys())
def test_odd_feedback_never_raises_and_keeps_the_estimate_in_range(results: list[PacketResult]) -> None:
    estimator = BandwidthEstimator(initial_bps=1_000_000, min_bps=MIN, max_bps=MAX)
    for now in (1.0, 1.1, 1e6, 0.5, 1e6 + 0.1):  # including a huge jump and one backwards
        estimator.on_packet_results(results, now)
        assert MIN <= estimator.estimate_bps <= MAX
    for odd in (math.nan, -1.0, math.inf, 0.0):
        estimator.on_remb(odd, now=2e6)
        estimator.on_receiver_loss(odd, now=2e6)
        estimator.on_probe_result(odd, now=3e6)
        assert MIN <= estimator.estimate_bps <= MAX


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="min_bps"):
        BandwidthEstimator(initial_bps=10_000, min_bps=30_000)


times = st.floats(min_value=-1e7, max_value=1e7) | st.sampled_from([math.nan, math.inf, -math.inf])
results = st.builds(
    PacketResult,
    sequence=st.integers(0, 50),
    send_time=times,
    size=st.integers(-10, 100_000),
    arrival=st.none() | times,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.lists(results, max_size=40), times), max_size=8))
def test_any_feedback_sequence_keeps_the_estimate_in_range(feedbacks: list[tuple[list[PacketResult], float]]) -> None:
    estimator = BandwidthEstimator(initial_bps=1_000_000, min_bps=MIN, max_bps=MAX)
    for batch, now in feedbacks:
        estimator.on_packet_results(batch, now)
        assert MIN <= estimator.estimate_bps <= MAX
