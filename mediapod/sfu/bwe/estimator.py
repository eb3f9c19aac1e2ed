"""One subscriber connection's bandwidth estimate, from every kind of feedback it sends.

Combination (draft-ietf-rmcat-gcc-02, section 7): the estimate is the lower
of the delay-based rate and the loss-based ceiling, clamped to [min, max].
REMB is a fallback for peers without TWCC: while TWCC feedback is fresh it is
ignored (the peer's own receive-side GCC sees less than our send-side one);
otherwise each REMB replaces the delay-based rate, so the estimate follows it
and TWCC, should it start, continues from there. Loss bounds either source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mediapod.sfu.bwe.delay import DelayBasedEstimator
from mediapod.sfu.bwe.feedback import PacketResult
from mediapod.sfu.bwe.loss import LossBasedController
from mediapod.sfu.bwe.trendline import BandwidthSignal

# Browsers send TWCC feedback every 50-100 ms; a second of silence means none is coming.
TWCC_TIMEOUT = 1.0
# A probe is believed only if the detector saw no over-use this recently:
# over-use during the probe means the link did not really carry its rate.
PROBE_OVERUSE_GUARD = 1.0


class BandwidthEstimator:
    """What one subscriber's downlink carries, in bits per second; pure, time passed in.

    Defaults: start at 1 Mbps (a middle simulcast layer plus audio; probing
    finds more), never below 30 kbps (one Opus stream), never above 30 Mbps
    (libwebrtc's default maximum).
    """

    __slots__ = ("_delay", "_last_twcc", "_loss", "_max", "_min")

    def __init__(
        self,
        initial_bps: float = 1_000_000,
        min_bps: float = 30_000,
        max_bps: float = 30_000_000,
    ) -> None:
        if not 0 < min_bps <= initial_bps <= max_bps:
            raise ValueError(f"need 0 < min_bps <= initial_bps <= max_bps, got {min_bps}, {initial_bps}, {max_bps}")
        self._min = min_bps
        self._max = max_bps
        self._delay = DelayBasedEstimator(initial_bps, min_bps, max_bps)
        self._loss = LossBasedController(min_bps)
        self._last_twcc: float | None = None

    @property
    def estimate_bps(self) -> float:
        """The lower of the delay-based rate and the loss ceiling, within [min, max]."""
        estimate = self._delay.rate_bps
        if self._loss.ceiling_bps is not None:
            estimate = min(estimate, self._loss.ceiling_bps)
        return min(max(estimate, self._min), self._max)

    @property
    def signal(self) -> BandwidthSignal:
        """The delay detector's latest hypothesis, for metrics and tests."""
        return self._delay.signal

    def on_packet_results(self, results: Sequence[PacketResult], now: float) -> None:
        """One TWCC feedback, matched to what we sent. Odd entries are dropped, never raised on."""
        if not results or not math.isfinite(now):
            return
        by_sequence: dict[int, PacketResult] = {}
        for result in results:
            known = by_sequence.get(result.sequence)
            if known is None or known.arrival is None:  # a duplicate: keep the received copy
                by_sequence[result.sequence] = result
        received = sorted(
            (r for r in by_sequence.values() if _usable(r)), key=lambda r: r.arrival or 0.0
        )
        lost = sum(1 for r in by_sequence.values() if r.arrival is None)
        if not received and not lost:
            return
        self._last_twcc = now
        if received:
            self._delay.on_received(received, now)
        self._loss.on_packet_counts(lost, len(received), now, self._delay.rate_bps)

    def on_receiver_loss(self, fraction_lost: float, now: float) -> None:
        """The fraction lost (0..1) of a receiver report block for a stream we send."""
        if math.isfinite(now):
            self._loss.on_fraction_lost(fraction_lost, now, self._delay.rate_bps)

    def on_remb(self, bitrate_bps: float, now: float) -> None:
        """A REMB; it sets the delay-based rate only while TWCC feedback is absent."""
        if not (math.isfinite(bitrate_bps) and math.isfinite(now)) or bitrate_bps <= 0:
            return
        if self._last_twcc is not None and abs(now - self._last_twcc) <= TWCC_TIMEOUT:
            return
        self._delay.set_estimate(bitrate_bps, now)

    def on_probe_result(self, bitrate_bps: float, now: float) -> None:
        """The rate at which a padding probe was acknowledged; may lift the estimate to it.

        Accepted only above the current delay-based rate and if no over-use
        was detected within PROBE_OVERUSE_GUARD seconds (libwebrtc's
        ProbeBitrateEstimator then sets the estimate the same way).
        """
        if not (math.isfinite(bitrate_bps) and math.isfinite(now)):
            return
        last_overuse = self._delay.last_overuse
        if last_overuse is not None and abs(now - last_overuse) < PROBE_OVERUSE_GUARD:
            return
        if bitrate_bps > self._delay.rate_bps:
            self._delay.set_estimate(bitrate_bps, now)
        self._loss.on_probe(bitrate_bps, self._delay.rate_bps)


def _usable(result: PacketResult) -> bool:
    """Received, with finite times: a NaN would poison every sum downstream."""
    return (
        result.arrival is not None
        and math.isfinite(result.arrival)
        and math.isfinite(result.send_time)
    )
