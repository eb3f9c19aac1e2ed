"""The delay-based rate: additive increase, multiplicative decrease (draft-ietf-rmcat-gcc-02, 5.5).

The detector's signal drives the draft's state machine: NORMAL increases,
OVERUSING decreases to BETA times the acknowledged bitrate and then holds,
UNDERUSING holds (the queue is draining; increasing now would refill it).
Far from the link's known capacity the increase is multiplicative, near it
additive, about one packet per response time. Follows libwebrtc's aimd_rate_control.cc.
"""

from __future__ import annotations

import math

from mediapod.sfu.bwe.trendline import BandwidthSignal

BETA = 0.85  # draft 5.5: decrease to 85% of what was received
GROWTH_PER_SECOND = 1.08  # draft 5.5: multiplicative increase, 8% a second
# No RTT is fed in yet; libwebrtc assumes this until it has one.
ASSUMED_RTT = 0.2
DETECTOR_RESPONSE = 0.1  # draft 5.5: the over-use detector reacts in about 100 ms
EXPECTED_PACKET_BYTES = 1200
FRAME_RATE = 30.0
MIN_ADDITIVE_BPS_PER_SECOND = 4000.0
MIN_MULTIPLICATIVE_STEP_BPS = 1000.0
# Draft 5.5: never more than 1.5x what is received; the rest keeps low rates moving.
INCREASE_LIMIT_FACTOR = 1.5
INCREASE_LIMIT_SLACK_BPS = 10_000.0
# One decrease per round trip (libwebrtc clamps the RTT to 10-200 ms), unless
# throughput collapsed below half the estimate.
REDUCE_INTERVAL = 0.2
MAX_STEP = 1.0  # seconds of growth credited to one update, so a long gap is not a jump
CAPACITY_SMOOTHING = 0.05
CAPACITY_SIGMAS = 3.0


class _LinkCapacity:
    """The throughput seen at past over-uses, in kbps: where the link saturates.

    Its presence tells AIMD it is near convergence and should increase additively.
    """

    __slots__ = ("_variance", "estimate")

    def __init__(self) -> None:
        self.estimate: float | None = None
        self._variance = 0.4  # normalised; libwebrtc's floor

    def on_overuse(self, kbps: float) -> None:
        if self.estimate is None:
            self.estimate = kbps
        else:
            self.estimate += CAPACITY_SMOOTHING * (kbps - self.estimate)
        error = self.estimate - kbps
        self._variance += CAPACITY_SMOOTHING * (error * error / max(self.estimate, 1.0) - self._variance)
        self._variance = min(max(self._variance, 0.4), 2.5)

    def upper(self) -> float:
        return math.inf if self.estimate is None else self.estimate + self._sigma()

    def lower(self) -> float:
        return -math.inf if self.estimate is None else self.estimate - self._sigma()

    def _sigma(self) -> float:
        return CAPACITY_SIGMAS * math.sqrt(self._variance * (self.estimate or 0.0))

    def reset(self) -> None:
        self.estimate = None


class AimdRateControl:
    """The delay-based bitrate, moved by the detector's signal and bounded by [min, max]."""

    __slots__ = ("_capacity", "_increasing", "_last_change", "_max", "_min", "_throughput", "rate_bps")

    def __init__(self, initial_bps: float, min_bps: float, max_bps: float) -> None:
        self._min = min_bps
        self._max = max_bps
        self.rate_bps = min(max(initial_bps, min_bps), max_bps)
        self._increasing = False  # False: hold, until a NORMAL signal
        self._last_change: float | None = None
        self._throughput = self.rate_bps  # until one is measured
        self._capacity = _LinkCapacity()

    def set_estimate(self, bps: float, now: float) -> None:
        """Replaces the rate (a REMB or an accepted probe), clamped."""
        self.rate_bps = min(max(bps, self._min), self._max)
        self._last_change = now

    def update(self, signal: BandwidthSignal, acked_bps: float | None, now: float) -> None:
        """Moves the rate once per feedback; acked_bps is None until measured."""
        if acked_bps is not None:
            self._throughput = acked_bps
        if signal is BandwidthSignal.OVERUSING:
            if self._time_to_reduce(now):
                self._decrease(now)
        elif signal is BandwidthSignal.UNDERUSING:
            self._increasing = False
        else:
            if not self._increasing:
                self._increasing = True
                self._last_change = now
            self._increase(now)
        self.rate_bps = min(max(self.rate_bps, self._min), self._max)

    def _time_to_reduce(self, now: float) -> bool:
        if self._last_change is None or not 0 <= now - self._last_change < REDUCE_INTERVAL:
            return True
        return self._throughput < 0.5 * self.rate_bps

    def _increase(self, now: float) -> None:
        if self._throughput / 1000 > self._capacity.upper():
            self._capacity.reset()  # the link got faster: ramp quickly again
        limit = INCREASE_LIMIT_FACTOR * self._throughput + INCREASE_LIMIT_SLACK_BPS
        step = 0.0 if self._last_change is None else min(max(now - self._last_change, 0.0), MAX_STEP)
        if self.rate_bps < limit:
            if self._capacity.estimate is not None:
                grown = self.rate_bps + self._additive_bps_per_second() * step
            else:
                grown = self.rate_bps + max(
                    self.rate_bps * (GROWTH_PER_SECOND**step - 1), MIN_MULTIPLICATIVE_STEP_BPS
                )
            self.rate_bps = min(grown, limit)
        self._last_change = now

    def _additive_bps_per_second(self) -> float:
        """About one packet per response time (draft 5.5), packets sized as a frame's share."""
        frame_bits = self.rate_bps / FRAME_RATE
        packets_per_frame = max(math.ceil(frame_bits / (EXPECTED_PACKET_BYTES * 8)), 1)
        response_time = 2 * (ASSUMED_RTT + DETECTOR_RESPONSE)
        return max(frame_bits / packets_per_frame / response_time, MIN_ADDITIVE_BPS_PER_SECOND)

    def _decrease(self, now: float) -> None:
        decreased = BETA * self._throughput
        if decreased > self.rate_bps and self._capacity.estimate is not None:
            decreased = BETA * self._capacity.estimate * 1000
        self.rate_bps = min(self.rate_bps, decreased)
        throughput_kbps = self._throughput / 1000
        if throughput_kbps < self._capacity.lower():
            self._capacity.reset()  # the link got slower: forget the old capacity
        self._capacity.on_overuse(throughput_kbps)
        self._increasing = False  # hold until the queue has drained
        self._last_change = now
