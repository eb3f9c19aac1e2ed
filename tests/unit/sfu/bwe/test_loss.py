"""The loss-based bound (draft section 6)."""

from __future__ import annotations

import pytest

from mediapod.sfu.bwe.loss import LossBasedController

RATE = 1_000_000  # the delay-based rate the bound is judged against


def test_loss_above_ten_percent_cuts_by_half_the_loss() -> None:
    loss = LossBasedController(min_bps=30_000)
    loss.on_fraction_lost(0.2, now=0.0, current_bps=RATE)
    assert loss.ceiling_bps == pytest.approx(0.9 * RATE)


def test_cuts_are_at_most_one_per_second() -> None:
    loss = LossBasedController(min_bps=30_000)
    for now in (0.0, 0.3, 0.6, 1.01, 1.4, 1.8, 2.05):
        loss.on_fraction_lost(0.2, now=now, current_bps=RATE)
    assert loss.ceiling_bps == pytest.approx(RATE * 0.9**3)  # at 0.0, 1.01 and 2.05


def test_a_clean_probe_above_the_ceiling_lifts_it() -> None:
    loss = LossBasedController(min_bps=30_000)
    loss.on_fraction_lost(0.5, now=0.0, current_bps=RATE)
    loss.on_probe(0.9 * RATE, current_bps=RATE)
    assert loss.ceiling_bps == pytest.approx(0.9 * RATE)
    loss.on_probe(1.1 * RATE, current_bps=RATE)
    assert loss.ceiling_bps is None


def test_loss_between_two_and_ten_percent_holds() -> None:
    loss = LossBasedController(min_bps=30_000)
    loss.on_fraction_lost(0.2, now=0.0, current_bps=RATE)
    for i in range(1, 20):
        loss.on_fraction_lost(0.05, now=i * 0.5, current_bps=RATE)
    assert loss.ceiling_bps == pytest.approx(0.9 * RATE)


def test_loss_below_two_percent_never_bounds_and_lifts_a_bound_5_percent_a_step() -> None:
    loss = LossBasedController(min_bps=30_000)
    loss.on_fraction_lost(0.01, now=0.0, current_bps=RATE)
    assert loss.ceiling_bps is None
    loss.on_fraction_lost(0.3, now=1.0, current_bps=RATE)
    loss.on_fraction_lost(0.0, now=1.5, current_bps=RATE)
    assert loss.ceiling_bps == pytest.approx(0.85 * RATE * 1.05)


def test_bound_lets_go_once_it_grows_past_the_delay_based_rate() -> None:
    loss = LossBasedController(min_bps=30_000)
    loss.on_fraction_lost(0.15, now=0.0, current_bps=RATE)
    for i in range(1, 10):
        loss.on_fraction_lost(0.0, now=i * 0.2, current_bps=RATE)
    assert loss.ceiling_bps is None


def test_twcc_counts_are_judged_per_twenty_packets() -> None:
    loss = LossBasedController(min_bps=30_000)
    loss.on_packet_counts(lost=3, received=7, now=0.0, current_bps=RATE)  # 30% of only 10
    assert loss.ceiling_bps is None
    loss.on_packet_counts(lost=0, received=10, now=0.1, current_bps=RATE)  # 15% of 20
    assert loss.ceiling_bps == pytest.approx(RATE * (1 - 0.5 * 0.15))


def test_total_loss_stops_at_the_minimum() -> None:
    loss = LossBasedController(min_bps=30_000)
    for i in range(100):
        loss.on_fraction_lost(1.0, now=i * 0.3, current_bps=RATE)
    assert loss.ceiling_bps == 30_000
