"""Trendline over-use detection with an adaptive threshold (draft 5.3-5.4)."""

from __future__ import annotations

from mediapod.sfu.bwe.arrival_groups import GroupDelta
from mediapod.sfu.bwe.trendline import BandwidthSignal, TrendlineDetector


def run(extra_delay_per_group: float, groups: int = 60, spacing: float = 0.02) -> list[BandwidthSignal]:
    detector = TrendlineDetector()
    arrival = 0.0
    signals = []
    for _ in range(groups):
        arrival += spacing + extra_delay_per_group
        signals.append(detector.update(GroupDelta(spacing, spacing + extra_delay_per_group, arrival)))
    return signals


def test_steady_delay_is_normal() -> None:
    assert set(run(0.0)) == {BandwidthSignal.NORMAL}


def test_delay_growing_two_ms_per_group_is_overuse_once_the_window_fills() -> None:
    signals = run(0.002)
    assert BandwidthSignal.OVERUSING not in signals[:19]  # the regression needs 20 groups
    assert signals[-1] is BandwidthSignal.OVERUSING


def test_draining_queue_is_underuse() -> None:
    assert run(-0.002)[-1] is BandwidthSignal.UNDERUSING


def test_small_jitter_around_a_steady_delay_stays_normal() -> None:
    detector = TrendlineDetector()
    arrival = 0.0
    for i in range(200):
        jitter = 0.001 if i % 2 else -0.001
        arrival += 0.02 + jitter
        signal = detector.update(GroupDelta(0.02, 0.02 + jitter, arrival))
    assert signal is BandwidthSignal.NORMAL
