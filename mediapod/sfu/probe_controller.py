"""When to probe a subscriber's downlink with padding, how hard, and how long to back off.

The StreamAllocator (allocator.py) knows *that* more bandwidth would let a
track upgrade and *how much* that upgrade needs. This module decides whether
now is a good time to find out, bounds how far above the current estimate a
probe may push the link, and backs off after failures so that a link which
really is full is not hammered with padding.

Pure: time is passed in, nothing is sent here. The caller sends padding at
``ProbeRequest.padding_bps`` for ``duration_s``, stops early and reports a
failure if its estimator sees congestion, and reports the outcome with
``finish``. A probe nobody reports on within ``report_grace_s`` after its end
counts as failed, so a lost report cannot stop probing for good.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# A failed probe overloads the link by at most overage x duration: with +50 %
# for 0.3 s that is 150 ms worth of the link's rate, which fits the queue of
# a home router (tested against a 300 kbit/s link with a 213 ms queue) and
# which a jitter buffer rides out. Simulcast layers are ~2-4x apart, so one
# or two successful probes reach the next layer.
PROBE_DURATION_S = 0.3
PROBE_MAX_OVERAGE_RATIO = 0.5
# On fast links +50 % would be megabits of padding; half a megabit is enough
# to confirm the next layer of any camera or screenshare.
PROBE_MAX_OVERAGE_BPS = 500_000.0
# After a success the next probe may follow soon (the next step up); each
# failure doubles the wait, up to 8 s: a link that is really full then pays
# at most 0.3 s of padding every 8 s (< 2 % of its time), and a link that
# frees up is found within 8 s. LiveKit uses 5 s x 1.5 up to 30 s; we start
# shorter because our probes are shorter.
PROBE_INTERVAL_BASE_S = 1.0
PROBE_BACKOFF_FACTOR = 2.0
PROBE_INTERVAL_MAX_S = 8.0
# "The estimate is stable": not lowered during the last second. GCC lowers
# its estimate in steps a few feedback intervals (~100 ms each) apart, so a
# second without a decrease means the decrease phase is over.
ESTIMATE_SETTLE_S = 1.0
# How long after a probe's planned end a missing report is taken as failure.
PROBE_REPORT_GRACE_S = 1.0


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """A probe cluster to run: pad the subscriber's link up to goal_bps for duration_s."""

    goal_bps: float
    media_bps: float  # what the allocator expects media (audio + video) to use meanwhile
    started_at: float
    duration_s: float

    @property
    def padding_bps(self) -> float:
        """Rate of padding to send on top of media to reach the goal."""
        return max(0.0, self.goal_bps - self.media_bps)

    @property
    def ends_at(self) -> float:
        return self.started_at + self.duration_s


class ProbeController:
    """Gates probes: one at a time, only after the estimate settled, backing off on failure."""

    __slots__ = (
        "_active",
        "_backoff_factor",
        "_duration_s",
        "_interval_base_s",
        "_interval_max_s",
        "_interval_s",
        "_last_estimate",
        "_max_overage_bps",
        "_max_overage_ratio",
        "_not_before",
        "_report_grace_s",
        "_settle_s",
    )

    def __init__(
        self,
        *,
        duration_s: float = PROBE_DURATION_S,
        max_overage_ratio: float = PROBE_MAX_OVERAGE_RATIO,
        max_overage_bps: float = PROBE_MAX_OVERAGE_BPS,
        interval_base_s: float = PROBE_INTERVAL_BASE_S,
        backoff_factor: float = PROBE_BACKOFF_FACTOR,
        interval_max_s: float = PROBE_INTERVAL_MAX_S,
        settle_s: float = ESTIMATE_SETTLE_S,
        report_grace_s: float = PROBE_REPORT_GRACE_S,
    ) -> None:
        self._duration_s = duration_s
        self._max_overage_ratio = max_overage_ratio
        self._max_overage_bps = max_overage_bps
        self._interval_base_s = interval_base_s
        self._backoff_factor = backoff_factor
        self._interval_max_s = interval_max_s
        self._settle_s = settle_s
        self._report_grace_s = report_grace_s
        self._active: ProbeRequest | None = None
        self._interval_s = interval_base_s
        self._not_before = -math.inf
        self._last_estimate: float | None = None

    @property
    def active(self) -> ProbeRequest | None:
        """The probe in flight, if any."""
        return self._active

    @property
    def interval_s(self) -> float:
        """Wait after the latest probe: the base after a success, doubled by each failure (capped)."""
        return self._interval_s

    def next_event_at(self) -> float:
        """When something may change here: the in-flight probe's deadline, else the earliest next probe."""
        if self._active is not None:
            return self._active.ends_at + self._report_grace_s
        return self._not_before

    def observe_estimate(self, estimate_bps: float, now: float) -> None:
        """Note the latest estimate; a decrease means it is not stable, so hold probes off."""
        if self._last_estimate is not None and estimate_bps < self._last_estimate:
            self._hold_off_until(now + self._settle_s)
        self._last_estimate = estimate_bps

    def on_deficient(self, now: float) -> None:
        """The allocator just became DEFICIENT: let the situation settle before the first probe."""
        self._hold_off_until(now + self._settle_s)

    def on_stable(self) -> None:
        """The allocator just became STABLE: a later deficiency is a new situation, backoff starts afresh."""
        self._interval_s = self._interval_base_s
        self._not_before = -math.inf

    def maybe_start(self, target_bps: float, media_bps: float, estimate_bps: float, now: float) -> ProbeRequest | None:
        """Start a probe toward target_bps if allowed now; the goal is capped above the estimate."""
        self.expire(now)
        if self._active is not None or now < self._not_before:
            return None
        goal = min(
            target_bps,
            estimate_bps * (1.0 + self._max_overage_ratio),
            estimate_bps + self._max_overage_bps,
        )
        # A goal the link already carries, or that media alone reaches, teaches nothing.
        if not goal > max(estimate_bps, media_bps):
            return None
        self._active = ProbeRequest(goal_bps=goal, media_bps=media_bps, started_at=now, duration_s=self._duration_s)
        return self._active

    def finish(self, succeeded: bool, estimate_bps: float, now: float) -> bool:
        """Record the in-flight probe's outcome; True only if it ran clean and the estimate reached the goal."""
        probe = self._active
        if probe is None:
            return False
        self._active = None
        success = succeeded and estimate_bps >= probe.goal_bps
        if success:
            self._interval_s = self._interval_base_s
        else:
            self._interval_s = min(self._interval_s * self._backoff_factor, self._interval_max_s)
        self._hold_off_until(now + self._interval_s)
        return success

    def expire(self, now: float) -> None:
        """Count a probe whose report is overdue as failed."""
        if self._active is not None and now >= self._active.ends_at + self._report_grace_s:
            self.finish(False, 0.0, now)

    def _hold_off_until(self, moment: float) -> None:
        self._not_before = max(self._not_before, moment)
