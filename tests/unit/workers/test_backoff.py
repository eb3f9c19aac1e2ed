"""Restart delays: doubling while a worker keeps crashing, back to the start once it ran long enough."""

from __future__ import annotations

from mediapod.workers.backoff import RestartBackoff


def test_a_worker_crashing_at_start_waits_longer_each_time_up_to_the_maximum() -> None:
    backoff = RestartBackoff(initial=0.5, maximum=3.0, stable_after=30.0)
    assert [backoff.delay(ran_for=1.0) for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_worker_that_ran_stably_before_dying_restarts_after_the_initial_delay() -> None:
    backoff = RestartBackoff(initial=0.5, maximum=3.0, stable_after=30.0)
    backoff.delay(1.0)
    backoff.delay(1.0)
    assert backoff.delay(ran_for=45.0) == 0.5
