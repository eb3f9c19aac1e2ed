"""Over-use detection from the trend of queueing delay (draft-ietf-rmcat-gcc-02, 5.3-5.4).

The draft's arrival-time filter is a Kalman filter; libwebrtc replaced it with
a trendline: the least-squares slope of the smoothed accumulated delay
variation over the last groups. The slope estimates (send rate - capacity) /
capacity, so a positive one means a queue is building. It is compared with a
threshold that adapts (draft 5.4) so a flow sharing the link with TCP is not
starved by a fixed, too sensitive threshold. Values follow libwebrtc's
trendline_estimator.cc; times are in milliseconds here because its constants are.
"""

from __future__ import annotations

from collections import deque
from enum import Enum

from mediapod.sfu.bwe.arrival_groups import GroupDelta

WINDOW = 20  # groups in the regression
SMOOTHING = 0.9  # exponential smoothing of the accumulated delay
THRESHOLD_GAIN = 4.0
# The slope is scaled by the number of samples (capped) so a young window,
# whose slope is noisy, needs a steeper trend to signal.
FULL_GAIN_DELTAS = 60
INITIAL_THRESHOLD_MS = 12.5
MIN_THRESHOLD_MS = 6.0
MAX_THRESHOLD_MS = 600.0
K_UP = 0.0087  # draft 5.4 gain per ms when the trend exceeds the threshold
K_DOWN = 0.039  # and when it is below: the threshold falls faster than it rises
# Draft 5.4: a trend this far over the threshold is a sudden capacity drop;
# adapting to it would make the detector deaf to the congestion it signals.
MAX_ADAPT_OFFSET_MS = 15.0
MAX_ADAPT_STEP_MS = 100.0
OVERUSE_TIME_MS = 10.0  # draft 5.4: over-use must persist this long


class BandwidthSignal(Enum):
    """The detector's hypothesis about the path (draft 5.4)."""

    NORMAL = "normal"
    OVERUSING = "overusing"
    UNDERUSING = "underusing"


class TrendlineDetector:
    """Turns inter-group delay variations into NORMAL / OVERUSING / UNDERUSING."""

    __slots__ = (
        "_accumulated",
        "_deltas",
        "_first_arrival_ms",
        "_history",
        "_last_threshold_ms",
        "_overuse_count",
        "_overuse_ms",
        "_previous_trend",
        "_smoothed",
        "_threshold",
        "signal",
    )

    def __init__(self) -> None:
        self._deltas = 0
        self._first_arrival_ms: float | None = None
        self._accumulated = 0.0
        self._smoothed = 0.0
        self._history: deque[tuple[float, float]] = deque(maxlen=WINDOW)
        self._previous_trend = 0.0
        self._threshold = INITIAL_THRESHOLD_MS
        self._last_threshold_ms: float | None = None
        self._overuse_ms: float | None = None
        self._overuse_count = 0
        self.signal = BandwidthSignal.NORMAL

    def update(self, delta: GroupDelta) -> BandwidthSignal:
        """Adds one group's delay variation and returns the new hypothesis."""
        send_ms = delta.send_delta * 1000.0
        arrival_ms = delta.arrival * 1000.0
        self._deltas = min(self._deltas + 1, FULL_GAIN_DELTAS)
        if self._first_arrival_ms is None:
            self._first_arrival_ms = arrival_ms
        self._accumulated += delta.arrival_delta * 1000.0 - send_ms
        self._smoothed = SMOOTHING * self._smoothed + (1 - SMOOTHING) * self._accumulated
        self._history.append((arrival_ms - self._first_arrival_ms, self._smoothed))
        trend = self._previous_trend
        if len(self._history) == WINDOW:
            trend = _slope(self._history, trend)
        self._detect(trend, send_ms, arrival_ms)
        return self.signal

    def _detect(self, trend: float, send_ms: float, now_ms: float) -> None:
        if self._deltas < 2:
            self.signal = BandwidthSignal.NORMAL
            return
        modified = self._deltas * trend * THRESHOLD_GAIN
        if modified > self._threshold:
            # Assume the over-use began halfway through the first interval.
            self._overuse_ms = send_ms / 2 if self._overuse_ms is None else self._overuse_ms + send_ms
            self._overuse_count += 1
            if (
                self._overuse_ms > OVERUSE_TIME_MS
                and self._overuse_count > 1
                and trend >= self._previous_trend
            ):
                self._overuse_ms = 0.0
                self._overuse_count = 0
                self.signal = BandwidthSignal.OVERUSING
        else:
            self._overuse_ms = None
            self._overuse_count = 0
            if modified < -self._threshold:
                self.signal = BandwidthSignal.UNDERUSING
            else:
                self.signal = BandwidthSignal.NORMAL
        self._previous_trend = trend
        self._adapt_threshold(abs(modified), now_ms)

    def _adapt_threshold(self, magnitude: float, now_ms: float) -> None:
        last, self._last_threshold_ms = self._last_threshold_ms, now_ms
        if last is None or magnitude > self._threshold + MAX_ADAPT_OFFSET_MS:
            return
        k = K_DOWN if magnitude < self._threshold else K_UP
        elapsed = min(max(now_ms - last, 0.0), MAX_ADAPT_STEP_MS)
        self._threshold += k * (magnitude - self._threshold) * elapsed
        self._threshold = min(max(self._threshold, MIN_THRESHOLD_MS), MAX_THRESHOLD_MS)


def _slope(points: deque[tuple[float, float]], fallback: float) -> float:
    """Least-squares slope of (arrival ms, smoothed delay ms); fallback if all x are equal."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    numerator = sum((x - mean_x) * (y - mean_y) for x, y in points)
    denominator = sum((x - mean_x) ** 2 for x, _ in points)
    return numerator / denominator if denominator > 0 else fallback
