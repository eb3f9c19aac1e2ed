"""The AIMD rate controller (draft 5.5, libwebrtc aimd_rate_control.cc)."""

from __future__ import annotations

import pytest

from mediapod.sfu.bwe.aimd import AimdRateControl
from mediapod.sfu.bwe.trendline import BandwidthSignal

NORMAL, OVERUSING, UNDERUSING = BandwidthSignal.NORMAL, BandwidthSignal.OVERUSING, BandwidthSignal.UNDERUSING


def control(initial: float = 1_000_000) -> AimdRateControl:
    return AimdRateControl(initial, 30_000, 30_000_000)


def test_overuse_cuts_to_085_of_the_acknowledged_bitrate() -> None:
    aimd = control()
    aimd.update(OVERUSING, 800_000, now=1.0)
    assert aimd.rate_bps == pytest.approx(0.85 * 800_000)


def test_far_from_convergence_rate_grows_about_8_percent_a_second() -> None:
    aimd = control()
    for i in range(11):
        aimd.update(NORMAL, 1_000_000, now=i * 0.1)
    assert aimd.rate_bps == pytest.approx(1_080_000, rel=0.01)


def test_after_an_overuse_growth_is_additive_and_slower() -> None:
    aimd = control()
    aimd.update(OVERUSING, 1_000_000, now=0.0)
    after_cut = aimd.rate_bps
    for i in range(1, 12):
        aimd.update(NORMAL, 1_000_000, now=i * 0.1)
    assert 1_000 < aimd.rate_bps - after_cut < 0.08 * after_cut


def test_underuse_holds_the_rate() -> None:
    aimd = control()
    for i in range(10):
        aimd.update(UNDERUSING, 1_000_000, now=i * 0.1)
    assert aimd.rate_bps == 1_000_000


def test_increase_never_exceeds_one_and_a_half_times_the_acknowledged_bitrate() -> None:
    aimd = control(100_000)
    for i in range(300):
        aimd.update(NORMAL, 100_000, now=i * 0.1)
    assert aimd.rate_bps == pytest.approx(1.5 * 100_000 + 10_000)


def test_rate_already_above_the_increase_limit_does_not_grow() -> None:
    aimd = control()
    for i in range(30):
        aimd.update(NORMAL, 200_000, now=i * 0.1)
    assert aimd.rate_bps == 1_000_000


def test_one_cut_per_round_trip_while_overuse_persists() -> None:
    aimd = control()
    aimd.update(OVERUSING, 1_000_000, now=0.0)
    aimd.update(OVERUSING, 900_000, now=0.1)
    assert aimd.rate_bps == pytest.approx(850_000)
    aimd.update(OVERUSING, 900_000, now=0.25)
    assert aimd.rate_bps == pytest.approx(0.85 * 900_000)
