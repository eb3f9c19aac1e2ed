"""The delay-based estimate (draft-ietf-rmcat-gcc-02, section 5): groups, trendline, AIMD.

One pipeline per subscriber connection: received packets become group
deltas, deltas a detector signal, and the signal moves the AIMD rate once per
feedback, measured against the bitrate the receiver acknowledged.
"""

from __future__ import annotations

from collections.abc import Iterable

from mediapod.sfu.bwe.acked_bitrate import AckedBitrate
from mediapod.sfu.bwe.aimd import AimdRateControl
from mediapod.sfu.bwe.arrival_groups import InterGroupDelay
from mediapod.sfu.bwe.feedback import PacketResult
from mediapod.sfu.bwe.trendline import BandwidthSignal, TrendlineDetector


class DelayBasedEstimator:
    """Estimates what the path carries before its queue grows, from received packets."""

    __slots__ = ("_acked", "_detector", "_groups", "_rate", "last_overuse")

    def __init__(self, initial_bps: float, min_bps: float, max_bps: float) -> None:
        self._groups = InterGroupDelay()
        self._detector = TrendlineDetector()
        self._acked = AckedBitrate()
        self._rate = AimdRateControl(initial_bps, min_bps, max_bps)
        self.last_overuse: float | None = None  # `now` of the last feedback that showed over-use

    @property
    def rate_bps(self) -> float:
        return self._rate.rate_bps

    @property
    def signal(self) -> BandwidthSignal:
        return self._detector.signal

    def on_received(self, received: Iterable[PacketResult], now: float) -> None:
        """Takes one feedback's received packets, in arrival order; lost ones are skipped."""
        overused = False
        for packet in received:
            if packet.arrival is None:
                continue
            self._acked.on_packet(packet.arrival, packet.size)
            delta = self._groups.add(packet.send_time, packet.arrival)
            if delta is not None:
                overused |= self._detector.update(delta) is BandwidthSignal.OVERUSING
        if overused:
            self.last_overuse = now
        self._rate.update(self._detector.signal, self._acked.rate_bps, now)

    def set_estimate(self, bps: float, now: float) -> None:
        """Replaces the rate: a REMB while TWCC is absent, or an accepted probe."""
        self._rate.set_estimate(bps, now)
