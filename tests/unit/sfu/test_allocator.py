"""StreamAllocator: layer choice, pauses, hysteresis and probing for one subscriber.

Numbers used throughout (bps):
  camera      layers 150k / 500k / 1.5M
  screenshare layers 200k / 600k / 1.5M  (priority scenario: cameras 100k / 300k / 800k)
  audio       32k
Headroom is 1.2, so an upgrade to a camera's top layer alone needs an estimate of 1.8M.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from mediapod.sfu.allocator import (
    CHANGE_REASONS,
    DEFICIENT_CHECK_INTERVAL_S,
    PAUSED,
    STABLE_CHECK_INTERVAL_S,
    UP_SWITCH_HEADROOM,
    AllocationResult,
    AllocatorState,
    AllocatorTrack,
    LayerChange,
    StreamAllocator,
    TrackPriority,
)
from mediapod.sfu.probe_controller import (
    ESTIMATE_SETTLE_S,
    PROBE_DURATION_S,
    PROBE_INTERVAL_BASE_S,
    PROBE_INTERVAL_MAX_S,
    PROBE_MAX_OVERAGE_BPS,
    PROBE_MAX_OVERAGE_RATIO,
    PROBE_REPORT_GRACE_S,
)

CAMERA_LAYERS = (150_000.0, 500_000.0, 1_500_000.0)
STABLE, DEFICIENT = AllocatorState.STABLE, AllocatorState.DEFICIENT
# Below the camera's top layer, yet within +25 % of what that layer needs with
# headroom (1.8M), so a probe's goal is not capped.
DEFICIENT_ESTIMATE = 1_450_000.0


def camera(key: str = "cam", order: int = 0, layers: tuple[float, ...] = CAMERA_LAYERS, max_layer: int = 2, muted: bool = False) -> AllocatorTrack:
    return AllocatorTrack(key, "video", TrackPriority.CAMERA, order, layers, max_layer, muted)


def screenshare(key: str = "screen", order: int = 0, layers: tuple[float, ...] = (200_000.0, 600_000.0, 1_500_000.0)) -> AllocatorTrack:
    return AllocatorTrack(key, "video", TrackPriority.SCREENSHARE, order, layers, 2)


def audio(key: str = "mic", bitrate: float = 32_000.0, muted: bool = False) -> AllocatorTrack:
    return AllocatorTrack(key, "audio", TrackPriority.CAMERA, 0, (bitrate,), 0, muted)


def run(allocator: StreamAllocator, tracks: Sequence[AllocatorTrack], estimate: float, now: float) -> AllocationResult:
    """allocate(), checking invariants every result must hold."""
    result = allocator.allocate(list(tracks), estimate, now)
    assert all(change.reason in CHANGE_REASONS for change in result.changes)
    assert result.state is allocator.state
    assert (result.state is DEFICIENT) == any(a.deficient for a in result.allocations.values())
    return result


def layers(result: AllocationResult) -> dict[str, int]:
    return {key: allocation.layer for key, allocation in result.allocations.items()}


def deficient_camera_at_layer_1(estimate: float = DEFICIENT_ESTIMATE) -> tuple[StreamAllocator, list[AllocatorTrack]]:
    """A camera that had its top layer, then lost it to an estimate drop at t=1."""
    allocator = StreamAllocator()
    tracks = [camera()]
    run(allocator, tracks, 2_000_000.0, now=0.0)
    result = run(allocator, tracks, estimate, now=1.0)
    assert layers(result) == {"cam": 1} and result.state is DEFICIENT
    return allocator, tracks


def poll_until_probe(allocator: StreamAllocator, tracks: list[AllocatorTrack], estimate: float, start: float) -> float:
    """Run allocate every 50 ms from start; return when the first probe is requested (within a minute)."""
    step = 0
    while step * 0.05 < 60.0:
        now = start + step * 0.05
        if run(allocator, tracks, estimate, now).probe is not None:
            return now
        step += 1
    raise AssertionError("no probe requested")


# --- basics ------------------------------------------------------------------


def test_no_tracks_allocates_nothing_and_is_stable() -> None:
    result = run(StreamAllocator(), [], 1_000_000.0, now=0.0)
    assert result.allocations == {} and result.changes == () and result.probe is None
    assert result.state is STABLE and result.allocated_bps == 0.0


def test_camera_gets_its_top_layer_when_bandwidth_is_plentiful() -> None:
    result = run(StreamAllocator(), [camera()], 2_000_000.0, now=0.0)
    assert layers(result) == {"cam": 2}
    assert result.allocations["cam"].limited_by == "none"
    assert result.changes == (LayerChange("cam", PAUSED, 2, "subscriber"),)
    assert result.state is STABLE and result.allocated_bps == 1_500_000.0


def test_same_inputs_give_the_same_decisions() -> None:
    tracks = [screenshare(), camera("a", 1), camera("b", 2), audio()]
    estimates = [3_000_000.0, 1_000_000.0, 2_200_000.0, 400_000.0, 5_000_000.0]
    first, second = StreamAllocator(), StreamAllocator()
    for i, estimate in enumerate(estimates):
        assert run(first, tracks, estimate, i) == run(second, tracks, estimate, i)


# --- STABLE <-> DEFICIENT on the estimate --------------------------------------


def test_estimate_drop_downgrades_at_once_and_enters_deficient() -> None:
    allocator = StreamAllocator()
    run(allocator, [camera()], 2_000_000.0, now=0.0)
    result = run(allocator, [camera()], 1_499_999.0, now=1.0)
    assert result.state is DEFICIENT
    assert result.changes == (LayerChange("cam", 2, 1, "bandwidth"),)
    assert result.allocations["cam"].deficient and not result.allocations["cam"].paused


def test_estimate_below_the_lowest_layer_pauses_the_camera() -> None:
    allocator = StreamAllocator()
    run(allocator, [camera()], 2_000_000.0, now=0.0)
    result = run(allocator, [camera()], 100_000.0, now=1.0)
    assert result.changes == (LayerChange("cam", 2, PAUSED, "bandwidth"),)
    assert result.paused == {"cam"} and result.state is DEFICIENT and result.allocated_bps == 0.0


def test_keeping_a_layer_needs_only_the_sum_to_fit() -> None:
    allocator = StreamAllocator()
    run(allocator, [camera()], 2_000_000.0, now=0.0)
    result = run(allocator, [camera()], 1_500_000.0, now=1.0)
    assert layers(result) == {"cam": 2} and result.changes == () and result.state is STABLE


def test_upgrade_needs_the_estimate_to_exceed_the_need_by_the_headroom() -> None:
    allocator, tracks = deficient_camera_at_layer_1(1_000_000.0)
    needed = 1_500_000.0
    assert run(allocator, tracks, needed, now=2.0).changes == ()
    assert run(allocator, tracks, needed * UP_SWITCH_HEADROOM * 0.99, now=3.0).changes == ()
    result = run(allocator, tracks, needed * UP_SWITCH_HEADROOM * 1.001, now=4.0)
    assert result.changes == (LayerChange("cam", 1, 2, "bandwidth"),)


def test_bandwidth_returning_resumes_a_paused_camera_and_returns_to_stable() -> None:
    allocator = StreamAllocator()
    run(allocator, [camera()], 2_000_000.0, now=0.0)
    run(allocator, [camera()], 100_000.0, now=1.0)
    result = run(allocator, [camera()], 2_000_000.0, now=2.0)
    assert result.changes == (LayerChange("cam", PAUSED, 2, "bandwidth"),)
    assert result.state is STABLE and result.paused == frozenset()


def test_estimate_oscillating_inside_the_hysteresis_band_changes_nothing() -> None:
    allocator = StreamAllocator()
    tracks = [camera()]
    run(allocator, tracks, 2_000_000.0, now=0.0)
    # Above the need but below need x headroom: the top layer is held...
    band = [1_500_000.0, 1_790_000.0, 1_550_000.0, 1_700_000.0, 1_510_000.0] * 4
    for i, estimate in enumerate(band):
        assert run(allocator, tracks, estimate, now=1.0 + i * 0.1).changes == ()
    # ...and once below, the same band does not bring it back.
    assert run(allocator, tracks, 1_400_000.0, now=5.0).changes == (LayerChange("cam", 2, 1, "bandwidth"),)
    for i, estimate in enumerate(band):
        assert run(allocator, tracks, estimate, now=6.0 + i * 0.1).changes == ()


# --- priorities ------------------------------------------------------------------


def test_screenshare_keeps_its_layer_while_cameras_are_downgraded_then_paused_lowest_priority_first() -> None:
    allocator = StreamAllocator()
    cams = (100_000.0, 300_000.0, 800_000.0)
    tracks = [camera("cam2", order=2, layers=cams), screenshare(order=3), camera("cam1", order=1, layers=cams)]
    assert layers(run(allocator, tracks, 4_000_000.0, now=0.0)) == {"screen": 2, "cam1": 2, "cam2": 2}

    downs: list[LayerChange] = []
    for i, estimate in enumerate([2_500_000.0, 2_350_000.0, 2_000_000.0, 1_650_000.0, 1_550_000.0]):
        result = run(allocator, tracks, estimate, now=1.0 + i)
        downs.extend(result.changes)
        assert result.allocations["screen"].layer == 2
    assert downs == [
        LayerChange("cam2", 2, 0, "bandwidth"),
        LayerChange("cam2", 0, PAUSED, "bandwidth"),
        LayerChange("cam1", 2, 1, "bandwidth"),
        LayerChange("cam1", 1, 0, "bandwidth"),
        LayerChange("cam1", 0, PAUSED, "bandwidth"),
    ]
    assert result.paused == {"cam1", "cam2"}

    # Bandwidth returns in steps: cam1 resumes before cam2.
    ups: list[LayerChange] = []
    for i, estimate in enumerate([2_000_000.0, 2_100_000.0, 4_000_000.0]):
        ups.extend(run(allocator, tracks, estimate, now=10.0 + i).changes)
    assert [(c.key, c.from_layer) for c in ups if c.from_layer == PAUSED] == [("cam1", PAUSED), ("cam2", PAUSED)]
    assert layers(run(allocator, tracks, 4_000_000.0, now=20.0)) == {"screen": 2, "cam1": 2, "cam2": 2}


def test_screenshare_takes_a_lower_layer_only_when_its_best_does_not_fit() -> None:
    allocator = StreamAllocator()
    tracks = [screenshare(), camera()]
    run(allocator, tracks, 4_000_000.0, now=0.0)
    result = run(allocator, tracks, 1_000_000.0, now=1.0)
    assert result.allocations["screen"].layer == 1
    assert result.allocations["cam"].layer == 0  # what is left after the screenshare


def test_equal_priority_ties_go_to_the_earlier_subscription() -> None:
    allocator = StreamAllocator()
    tracks = [camera("late", order=5), camera("early", order=1)]
    run(allocator, tracks, 4_000_000.0, now=0.0)
    result = run(allocator, tracks, 1_600_000.0, now=1.0)
    assert layers(result) == {"early": 2, "late": PAUSED}


def test_equal_priority_and_order_ties_go_to_the_smaller_key() -> None:
    result = run(StreamAllocator(), [camera("b"), camera("a")], 1_000_000.0, now=0.0)
    assert layers(result) == {"a": 1, "b": 0}


# --- audio -----------------------------------------------------------------------


def test_audio_is_budgeted_first_and_never_paused_or_listed() -> None:
    allocator = StreamAllocator()
    tracks = [audio(), camera()]
    result = run(allocator, tracks, 1_532_000.0 * UP_SWITCH_HEADROOM + 1, now=0.0)
    assert layers(result) == {"cam": 2} and result.allocated_bps == 1_532_000.0
    result = run(allocator, tracks, 1_520_000.0, now=1.0)  # fits the camera alone, not with audio
    assert layers(result) == {"cam": 1}
    for i, estimate in enumerate([0.0, 10_000.0, -5.0]):
        result = run(allocator, tracks, estimate, now=2.0 + i)
        assert "mic" not in result.allocations and "mic" not in result.paused
        assert all(change.key != "mic" for change in result.changes)
    assert result.paused == {"cam"}


def test_muted_audio_takes_no_budget() -> None:
    result = run(StreamAllocator(), [audio(muted=True), camera()], 1_510_000.0 * UP_SWITCH_HEADROOM, now=0.0)
    assert layers(result) == {"cam": 2} and result.allocated_bps == 1_500_000.0


# --- the subscriber's wish -------------------------------------------------------


def test_wish_lowered_while_stable_downgrades_for_the_subscriber() -> None:
    allocator = StreamAllocator()
    run(allocator, [camera()], 2_000_000.0, now=0.0)
    result = run(allocator, [camera(max_layer=0)], 2_000_000.0, now=1.0)
    assert result.changes == (LayerChange("cam", 2, 0, "subscriber"),)
    assert result.allocations["cam"].limited_by == "subscriber" and result.state is STABLE


def test_wish_raised_while_stable_with_room_upgrades_for_the_subscriber() -> None:
    allocator = StreamAllocator()
    run(allocator, [camera(max_layer=0)], 2_000_000.0, now=0.0)
    result = run(allocator, [camera()], 2_000_000.0, now=1.0)
    assert result.changes == (LayerChange("cam", 0, 2, "subscriber"),) and result.state is STABLE


def test_wish_raised_while_stable_without_room_makes_the_allocator_deficient() -> None:
    allocator = StreamAllocator()
    run(allocator, [camera(max_layer=1)], 700_000.0, now=0.0)
    result = run(allocator, [camera()], 700_000.0, now=1.0)
    assert result.changes == () and result.state is DEFICIENT
    assert result.allocations["cam"].desired_layer == 2


def test_wish_lowered_to_the_current_layer_while_deficient_makes_it_stable() -> None:
    allocator, _ = deficient_camera_at_layer_1()
    result = run(allocator, [camera(max_layer=1)], DEFICIENT_ESTIMATE, now=2.0)
    assert result.changes == () and result.state is STABLE


def test_wish_lowered_below_the_current_layer_while_deficient_downgrades_for_the_subscriber() -> None:
    allocator, _ = deficient_camera_at_layer_1()
    result = run(allocator, [camera(max_layer=0)], DEFICIENT_ESTIMATE, now=2.0)
    assert result.changes == (LayerChange("cam", 1, 0, "subscriber"),) and result.state is STABLE


def test_wish_raised_while_deficient_stays_deficient_without_changes() -> None:
    allocator = StreamAllocator()
    run(allocator, [camera(max_layer=1)], 300_000.0, now=0.0)  # layer 0, wants 1
    result = run(allocator, [camera()], 300_000.0, now=1.0)
    assert result.changes == () and result.state is DEFICIENT


def test_disabled_track_gets_nothing_is_not_deficient_and_frees_its_budget() -> None:
    allocator = StreamAllocator()
    tracks = [camera("a", 1), camera("b", 2)]
    run(allocator, tracks, 2_000_000.0, now=0.0)  # a: 2, b: 0 (1.65M fits 2M / 1.2, 2M does not)
    result = run(allocator, [camera("a", 1, max_layer=-1), camera("b", 2)], 2_000_000.0, now=1.0)
    assert result.allocations["a"].layer == PAUSED and result.allocations["a"].limited_by == "subscriber"
    assert "a" not in result.paused
    assert LayerChange("a", 2, PAUSED, "subscriber") in result.changes
    assert LayerChange("b", 0, 2, "bandwidth") in result.changes
    assert result.state is STABLE


# --- tracks added, removed, muted; the publisher's layers -------------------------


def test_added_track_starts_only_with_headroom_and_otherwise_makes_it_deficient() -> None:
    allocator = StreamAllocator()
    run(allocator, [camera("a", 1)], 1_700_000.0, now=0.0)  # a: 1 (top needs 1.8M)
    result = run(allocator, [camera("a", 1), camera("b", 2)], 1_700_000.0, now=1.0)
    assert result.changes == (LayerChange("b", PAUSED, 1, "subscriber"),)  # 1M x 1.2 fits, 2M x 1.2 not
    assert result.state is DEFICIENT


def test_added_track_that_fits_nothing_is_paused() -> None:
    allocator = StreamAllocator()
    run(allocator, [camera("a", 1)], 2_000_000.0, now=0.0)
    result = run(allocator, [camera("a", 1), camera("b", 2)], 1_600_000.0, now=1.0)  # a keeps 1.5M
    assert result.changes == () and result.paused == {"b"} and result.state is DEFICIENT


def test_removed_track_is_forgotten_and_its_budget_upgrades_the_others() -> None:
    allocator = StreamAllocator()
    run(allocator, [camera("a", 1), camera("b", 2)], 2_000_000.0, now=0.0)  # a: 2, b: 0
    result = run(allocator, [camera("b", 2)], 2_000_000.0, now=1.0)
    assert set(result.allocations) == {"b"}
    assert result.changes == (LayerChange("b", 0, 2, "bandwidth"),) and result.state is STABLE


def test_muted_track_takes_no_budget_and_is_not_deficient() -> None:
    allocator = StreamAllocator()
    run(allocator, [camera("a", 1), camera("b", 2)], 1_700_000.0, now=0.0)
    result = run(allocator, [camera("a", 1, muted=True), camera("b", 2)], 1_900_000.0, now=1.0)
    assert result.allocations["a"].limited_by == "mute" and "a" not in result.paused
    assert LayerChange("a", 1, PAUSED, "mute") in result.changes
    assert LayerChange("b", 1, 2, "bandwidth") in result.changes
    assert result.state is STABLE


def test_unmuted_track_resumes_for_mute_when_it_fits() -> None:
    allocator = StreamAllocator()
    run(allocator, [camera(muted=True)], 2_000_000.0, now=0.0)
    result = run(allocator, [camera()], 2_000_000.0, now=1.0)
    assert result.changes == (LayerChange("cam", PAUSED, 2, "mute"),)


def test_layer_the_publisher_stops_sending_is_not_selectable() -> None:
    allocator = StreamAllocator()
    run(allocator, [camera()], 2_000_000.0, now=0.0)
    result = run(allocator, [camera(layers=(150_000.0, 500_000.0, 0.0))], 2_000_000.0, now=1.0)
    assert result.changes == (LayerChange("cam", 2, 1, "publisher"),)
    assert result.allocations["cam"].limited_by == "publisher" and result.state is STABLE
    result = run(allocator, [camera()], 2_000_000.0, now=2.0)
    assert result.changes == (LayerChange("cam", 1, 2, "publisher"),)


def test_track_with_no_layer_received_takes_no_budget_and_is_not_deficient() -> None:
    allocator = StreamAllocator()
    result = run(allocator, [camera("silent", 1, layers=(0.0, 0.0, 0.0)), camera("b", 2)], 1_810_000.0, now=0.0)
    assert result.allocations["silent"].layer == PAUSED and "silent" not in result.paused
    assert layers(result)["b"] == 2 and result.state is STABLE


# --- probing ---------------------------------------------------------------------


def test_deficient_allocator_probes_once_the_estimate_has_settled() -> None:
    allocator, tracks = deficient_camera_at_layer_1()
    assert run(allocator, tracks, DEFICIENT_ESTIMATE, now=1.0 + ESTIMATE_SETTLE_S - 0.01).probe is None
    probe = run(allocator, tracks, DEFICIENT_ESTIMATE, now=1.0 + ESTIMATE_SETTLE_S).probe
    assert probe is not None and allocator.probing
    assert probe.goal_bps == pytest.approx(1_500_000.0 * UP_SWITCH_HEADROOM)  # what the upgrade needs
    assert probe.media_bps == 500_000.0
    assert probe.padding_bps == pytest.approx(probe.goal_bps - 500_000.0)
    assert probe.duration_s == PROBE_DURATION_S


def test_no_probe_while_the_estimate_keeps_falling() -> None:
    allocator, tracks = deficient_camera_at_layer_1(1_400_000.0)
    for i in range(20):
        assert run(allocator, tracks, 1_400_000.0 - i * 1_000, now=1.5 + i * 0.5).probe is None
    assert run(allocator, tracks, 1_381_000.0, now=11.0 + ESTIMATE_SETTLE_S).probe is not None


def test_probe_goal_is_bounded_by_the_overage_ratio_over_the_estimate() -> None:
    allocator, tracks = deficient_camera_at_layer_1(600_000.0)
    probe = run(allocator, tracks, 600_000.0, now=5.0).probe
    assert probe is not None and probe.goal_bps == pytest.approx(600_000.0 * (1 + PROBE_MAX_OVERAGE_RATIO))


def test_probe_goal_is_bounded_by_the_absolute_overage_cap() -> None:
    allocator = StreamAllocator()
    tracks = [camera(layers=(1_000_000.0, 4_000_000.0, 12_000_000.0))]
    run(allocator, tracks, 20_000_000.0, now=0.0)
    run(allocator, tracks, 6_000_000.0, now=1.0)
    probe = run(allocator, tracks, 6_000_000.0, now=5.0).probe
    assert probe is not None and probe.goal_bps == 6_000_000.0 + PROBE_MAX_OVERAGE_BPS


def test_probe_targets_the_highest_priority_deficient_track_without_starving_others() -> None:
    allocator = StreamAllocator()
    tracks = [screenshare(), camera()]
    run(allocator, tracks, 4_000_000.0, now=0.0)
    result = run(allocator, tracks, 1_000_000.0, now=1.0)  # screen 1 (600k), cam 0 (150k)
    probe = run(allocator, tracks, 1_000_000.0, now=5.0).probe
    assert result.allocated_bps == 750_000.0 and probe is not None
    # Next step for the screenshare is 1.5M, keeping the camera's 150k: (1.65M) x 1.2, capped above the estimate.
    assert probe.goal_bps == pytest.approx(min(1_650_000.0 * UP_SWITCH_HEADROOM, 1_000_000.0 * (1 + PROBE_MAX_OVERAGE_RATIO)))


def test_only_one_probe_runs_at_a_time() -> None:
    allocator, tracks = deficient_camera_at_layer_1()
    assert run(allocator, tracks, DEFICIENT_ESTIMATE, now=2.0).probe is not None
    assert run(allocator, tracks, DEFICIENT_ESTIMATE, now=2.2).probe is None


def test_successful_probe_upgrades_for_probe_and_returns_to_stable() -> None:
    allocator, tracks = deficient_camera_at_layer_1()
    probe = run(allocator, tracks, DEFICIENT_ESTIMATE, now=2.0).probe
    assert probe is not None
    allocator.on_probe_finished(True, probe.goal_bps + 50_000.0, now=2.5)
    assert not allocator.probing
    # The estimate sags a little after the probe; the probe still vouches for the upgrade.
    result = run(allocator, tracks, 1_700_000.0, now=2.6)
    assert result.changes == (LayerChange("cam", 1, 2, "probe"),)
    assert result.state is STABLE


def test_probe_confirmation_is_used_once() -> None:
    allocator, tracks = deficient_camera_at_layer_1()
    probe = run(allocator, tracks, DEFICIENT_ESTIMATE, now=2.0).probe
    assert probe is not None
    allocator.on_probe_finished(True, probe.goal_bps, now=2.5)
    # The next allocate may upgrade if the estimate still carries 1.5M; this one does not...
    assert run(allocator, tracks, 1_490_000.0, now=2.6).changes == ()
    # ...and the one after needs the headroom again (1.7M / 1.2 < 1.5M).
    assert run(allocator, tracks, 1_700_000.0, now=2.7).changes == ()


def test_probe_that_ends_below_its_goal_counts_as_failed() -> None:
    allocator, tracks = deficient_camera_at_layer_1()
    probe = run(allocator, tracks, DEFICIENT_ESTIMATE, now=2.0).probe
    assert probe is not None
    allocator.on_probe_finished(True, probe.goal_bps - 1.0, now=2.5)
    assert run(allocator, tracks, 1_700_000.0, now=2.6).changes == ()
    assert run(allocator, tracks, 1_700_000.0, now=2.5 + 2 * PROBE_INTERVAL_BASE_S - 0.05).probe is None


def test_failed_probes_back_off_exponentially_up_to_the_cap() -> None:
    allocator, tracks = deficient_camera_at_layer_1()
    started = poll_until_probe(allocator, tracks, DEFICIENT_ESTIMATE, start=1.0)
    waits = []
    for _ in range(6):
        failed_at = started + PROBE_DURATION_S
        allocator.on_probe_finished(False, DEFICIENT_ESTIMATE, now=failed_at)
        started = poll_until_probe(allocator, tracks, DEFICIENT_ESTIMATE, start=failed_at)
        waits.append(round(started - failed_at, 1))
    base = PROBE_INTERVAL_BASE_S
    assert waits == [2 * base, 4 * base, 8 * base, PROBE_INTERVAL_MAX_S, PROBE_INTERVAL_MAX_S, PROBE_INTERVAL_MAX_S]


def test_success_resets_the_backoff() -> None:
    allocator, tracks = deficient_camera_at_layer_1(1_000_000.0)
    started = poll_until_probe(allocator, tracks, 1_000_000.0, start=1.0)
    allocator.on_probe_finished(False, 1_000_000.0, now=started + 0.5)
    started = poll_until_probe(allocator, tracks, 1_000_000.0, start=started + 0.5)
    probe = run(allocator, tracks, 1_000_000.0, now=started).probe  # still the running one
    assert probe is None and allocator.probing
    reached = 1_000_000.0 * (1 + PROBE_MAX_OVERAGE_RATIO)
    allocator.on_probe_finished(True, reached, now=started + 0.5)  # reached the capped goal, not yet enough
    nxt = poll_until_probe(allocator, tracks, reached, start=started + 0.5)
    assert nxt - (started + 0.5) == pytest.approx(PROBE_INTERVAL_BASE_S, abs=0.06)


def test_entering_stable_resets_the_backoff() -> None:
    allocator, tracks = deficient_camera_at_layer_1()
    started = poll_until_probe(allocator, tracks, DEFICIENT_ESTIMATE, start=1.0)
    allocator.on_probe_finished(False, DEFICIENT_ESTIMATE, now=started + 0.5)
    started = poll_until_probe(allocator, tracks, DEFICIENT_ESTIMATE, start=started + 0.5)
    allocator.on_probe_finished(False, DEFICIENT_ESTIMATE, now=started + 0.5)  # next wait would be 8 s
    assert run(allocator, tracks, 2_000_000.0, now=started + 1.0).state is STABLE
    assert run(allocator, tracks, DEFICIENT_ESTIMATE, now=started + 2.0).state is DEFICIENT
    # Deficient anew: the first probe only waits for the estimate to settle...
    again = poll_until_probe(allocator, tracks, DEFICIENT_ESTIMATE, start=started + 2.0)
    assert again - (started + 2.0) == pytest.approx(ESTIMATE_SETTLE_S, abs=0.06)
    # ...and its failure waits the first failure's 2 x base, not 16 s.
    allocator.on_probe_finished(False, DEFICIENT_ESTIMATE, now=again + 0.5)
    nxt = poll_until_probe(allocator, tracks, DEFICIENT_ESTIMATE, start=again + 0.5)
    assert nxt - (again + 0.5) == pytest.approx(2 * PROBE_INTERVAL_BASE_S, abs=0.06)


def test_unreported_probe_counts_as_failed_after_its_grace_period() -> None:
    allocator, tracks = deficient_camera_at_layer_1()
    probe = run(allocator, tracks, DEFICIENT_ESTIMATE, now=2.0).probe
    assert probe is not None
    deadline = probe.ends_at + PROBE_REPORT_GRACE_S
    run(allocator, tracks, DEFICIENT_ESTIMATE, now=deadline - 0.01)
    assert allocator.probing
    assert run(allocator, tracks, DEFICIENT_ESTIMATE, now=deadline).probe is None
    assert not allocator.probing
    nxt = poll_until_probe(allocator, tracks, DEFICIENT_ESTIMATE, start=deadline)
    assert nxt - deadline == pytest.approx(2 * PROBE_INTERVAL_BASE_S, abs=0.06)


def test_probe_report_without_a_probe_is_ignored() -> None:
    allocator, tracks = deficient_camera_at_layer_1()
    allocator.on_probe_finished(True, 10_000_000.0, now=1.5)
    assert run(allocator, tracks, DEFICIENT_ESTIMATE, now=1.6).changes == ()


def test_no_probe_when_nothing_could_be_learned() -> None:
    allocator = StreamAllocator()
    tracks = [camera()]
    run(allocator, tracks, 0.0, now=0.0)  # paused, deficient, but +25 % of nothing is nothing
    assert run(allocator, tracks, 0.0, now=10.0).probe is None


# --- check interval --------------------------------------------------------------


def test_check_interval_is_long_while_stable() -> None:
    allocator = StreamAllocator()
    run(allocator, [camera()], 2_000_000.0, now=0.0)
    assert allocator.next_check_in(0.0) == STABLE_CHECK_INTERVAL_S


def test_check_interval_is_short_while_deficient_and_shorter_when_a_probe_falls_due() -> None:
    allocator, _ = deficient_camera_at_layer_1()
    assert allocator.next_check_in(1.0) == DEFICIENT_CHECK_INTERVAL_S
    assert allocator.next_check_in(1.0 + ESTIMATE_SETTLE_S - 0.2) == pytest.approx(0.2)
    assert allocator.next_check_in(5.0) == DEFICIENT_CHECK_INTERVAL_S


def test_check_interval_is_short_while_probing() -> None:
    allocator, tracks = deficient_camera_at_layer_1()
    probe = run(allocator, tracks, DEFICIENT_ESTIMATE, now=2.0).probe
    assert probe is not None
    assert allocator.next_check_in(2.0) == DEFICIENT_CHECK_INTERVAL_S
    deadline = probe.ends_at + PROBE_REPORT_GRACE_S
    assert allocator.next_check_in(deadline - 0.1) == pytest.approx(0.1)


# --- odd inputs ------------------------------------------------------------------


@pytest.mark.parametrize("estimate", [0.0, -1.0, -math.inf, math.nan, math.inf])
def test_odd_estimates_never_raise(estimate: float) -> None:
    allocator = StreamAllocator()
    result = run(allocator, [camera(), audio()], estimate, now=0.0)
    assert result.allocated_bps >= 0.0
    allocator.on_probe_finished(True, estimate, now=0.1)
    assert allocator.next_check_in(0.2) > 0


def test_nan_estimate_keeps_the_last_good_one_while_negative_means_nothing_fits() -> None:
    allocator = StreamAllocator()
    run(allocator, [camera()], 2_000_000.0, now=0.0)
    assert run(allocator, [camera()], math.nan, now=1.0).changes == ()
    assert layers(run(allocator, [camera()], -1.0, now=2.0)) == {"cam": PAUSED}


@pytest.mark.parametrize(
    "track",
    [
        camera(layers=()),
        camera(layers=(math.nan, -5.0, math.inf)),
        camera(max_layer=9),
        camera(layers=(), max_layer=-1),
        AllocatorTrack("mic", "audio", 0, 0, (), 0),
        AllocatorTrack("mic", "audio", 0, 0, (math.nan,), 0),
    ],
)
def test_odd_tracks_never_raise(track: AllocatorTrack) -> None:
    allocator = StreamAllocator()
    for i, estimate in enumerate([2_000_000.0, 0.0, 2_000_000.0]):
        result = run(allocator, [track], estimate, now=float(i))
        assert math.isfinite(result.allocated_bps)


def test_layers_without_a_valid_bitrate_are_not_selectable() -> None:
    result = run(StreamAllocator(), [camera(layers=(math.nan, -5.0, 900_000.0))], 2_000_000.0, now=0.0)
    assert layers(result) == {"cam": 2} and result.allocated_bps == 900_000.0


def test_wish_above_the_published_layers_means_the_top_one() -> None:
    result = run(StreamAllocator(), [camera(max_layer=9)], 2_000_000.0, now=0.0)
    assert layers(result) == {"cam": 2} and result.allocations["cam"].limited_by == "none"


def test_duplicate_keys_keep_the_first_track() -> None:
    result = run(StreamAllocator(), [camera(max_layer=0), camera()], 2_000_000.0, now=0.0)
    assert layers(result) == {"cam": 0}
