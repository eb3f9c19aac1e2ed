"""Caps on what a participant may send on SSRCs it never announced.

Packets on unknown SSRCs are dropped before decryption, which makes each one
cheap; this guard decides when they stop being a client's mistake (a stream
we rejected, a few stray retransmissions) and become a flood: too many
distinct unknown SSRCs, or too many unknown packets within one window. Then
the participant is disconnected once, whatever it sends afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UnknownSsrcLimits:
    """How much unannounced RTP a participant may send before it is disconnected."""

    max_ssrcs: int = 32          # distinct unknown SSRCs over the whole session
    max_packets: int = 1000      # unknown-SSRC packets within one window
    window: float = 10.0         # seconds


class UnknownSsrcGuard:
    """Counts one participant's unknown-SSRC packets and trips once past a limit."""

    __slots__ = ("_limits", "_on_trip", "_ssrcs", "_window_start", "_packets", "tripped")

    def __init__(self, limits: UnknownSsrcLimits, on_trip: Callable[[str], None]) -> None:
        self._limits = limits
        self._on_trip = on_trip
        self._ssrcs: set[int] = set()
        self._window_start = float("-inf")
        self._packets = 0
        self.tripped = False

    def observe(self, ssrc: int, now: float) -> None:
        """One packet arrived on ssrc, which no track of the participant owns."""
        if self.tripped:
            return
        limits = self._limits
        if now - self._window_start >= limits.window:
            self._window_start, self._packets = now, 0
        self._packets += 1
        self._ssrcs.add(ssrc)
        if len(self._ssrcs) > limits.max_ssrcs:
            self._trip(f"sent RTP on more than {limits.max_ssrcs} unannounced SSRCs")
        elif self._packets > limits.max_packets:
            self._trip(f"sent more than {limits.max_packets} RTP packets on unannounced SSRCs within {limits.window:g} s")

    def _trip(self, why: str) -> None:
        self.tripped = True
        self._ssrcs.clear()
        self._on_trip(why)
