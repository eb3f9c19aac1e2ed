"""The loss-based bound (draft-ietf-rmcat-gcc-02, section 6).

Loss above 10% cuts the bound by half the loss fraction; loss under 2% lifts
it 5%; in between it holds, since a little loss is what a full link with a
short queue looks like. The bound exists only while it binds: it starts from
the delay-based rate at the first heavy loss and is dropped once it has grown
back above it, so a long loss-free spell cannot leave a stale cap behind.
"""

from __future__ import annotations

import math

HIGH_LOSS = 0.10
LOW_LOSS = 0.02
INCREASE_FACTOR = 1.05
# Rate limits: one cut per second, the cadence of the receiver reports the
# draft's rule was made for. TWCC reports every 50-100 ms: cutting on each
# would compound one overflow (the loss of a queue that has not drained yet,
# while a downswitch waits for its keyframe) into a collapse far below the
# link. Increases come more often so the bound lets go soon after the loss.
DECREASE_INTERVAL = 1.0
INCREASE_INTERVAL = 0.2
# TWCC feedback is tallied until this many packets: a fraction of a handful is noise.
MIN_PACKETS = 20


class LossBasedController:
    """A ceiling on the estimate from observed loss; None while loss is not what limits."""

    __slots__ = ("_last_decrease", "_last_increase", "_lost", "_min", "_received", "ceiling_bps")

    def __init__(self, min_bps: float) -> None:
        self._min = min_bps
        self.ceiling_bps: float | None = None
        self._lost = 0
        self._received = 0
        self._last_decrease: float | None = None
        self._last_increase: float | None = None

    def on_packet_counts(self, lost: int, received: int, now: float, current_bps: float) -> None:
        """TWCC counts, tallied until MIN_PACKETS, then judged as one fraction."""
        self._lost += max(lost, 0)
        self._received += max(received, 0)
        total = self._lost + self._received
        if total >= MIN_PACKETS:
            fraction = self._lost / total
            self._lost = self._received = 0
            self.on_fraction_lost(fraction, now, current_bps)

    def on_fraction_lost(self, fraction: float, now: float, current_bps: float) -> None:
        """One loss fraction (0..1), from a receiver report or tallied TWCC counts."""
        if not math.isfinite(fraction):
            return
        fraction = min(max(fraction, 0.0), 1.0)
        if fraction > HIGH_LOSS:
            if _due(self._last_decrease, now, DECREASE_INTERVAL):
                base = current_bps if self.ceiling_bps is None else min(self.ceiling_bps, current_bps)
                self.ceiling_bps = max(base * (1 - 0.5 * fraction), self._min)
                self._last_decrease = now
        elif (
            fraction < LOW_LOSS
            and self.ceiling_bps is not None
            and _due(self._last_increase, now, INCREASE_INTERVAL)
        ):
            self.ceiling_bps *= INCREASE_FACTOR
            self._last_increase = now
            if self.ceiling_bps >= current_bps:
                self.ceiling_bps = None


    def on_probe(self, bitrate_bps: float, current_bps: float) -> None:
        """A padding probe got through clean at bitrate_bps: the link carries that much, so no lower bound from loss.

        Without this a ceiling cut during an overflow would outlive it until
        enough loss-free media flows to lift it 5 % at a time, which a paused
        subscriber never sends.
        """
        if self.ceiling_bps is not None and bitrate_bps > self.ceiling_bps:
            self.ceiling_bps = None if bitrate_bps >= current_bps else bitrate_bps


def _due(last: float | None, now: float, interval: float) -> bool:
    """True if `interval` has passed since `last`; a clock that went back counts as due."""
    return last is None or not 0 <= now - last < interval
