"""The rate the receiver actually got, from TWCC arrivals (draft-ietf-rmcat-gcc-02, 5.5: R_hat).

Measured on the receiver's clock, over a sliding window of arrival times: it
is what the path delivered, which is what a decrease must fall below.
"""

from __future__ import annotations

from collections import deque

# Draft 5.5: R_hat over a window of 0.5 to 1 s; the short end reacts faster.
WINDOW = 0.5
# An arrival this far behind the newest one means the receiver's clock restarted.
CLOCK_JUMP = 3.0


class AckedBitrate:
    """Bytes received in the last WINDOW seconds of receiver time, as bits per second."""

    __slots__ = ("_bytes", "_first", "_latest", "_packets")

    def __init__(self) -> None:
        self._packets: deque[tuple[float, int]] = deque()
        self._bytes = 0
        self._first: float | None = None
        self._latest: float | None = None

    def on_packet(self, arrival: float, size: int) -> None:
        """Counts one received packet (any order; late ones outside the window are ignored)."""
        size = max(size, 0)
        if self._latest is None or arrival < self._latest - CLOCK_JUMP:
            self._packets.clear()
            self._bytes = 0
            self._first = self._latest = arrival
        self._latest = max(self._latest, arrival)
        horizon = self._latest - WINDOW
        if arrival <= horizon:
            return
        self._packets.append((arrival, size))
        self._bytes += size
        while self._packets and self._packets[0][0] <= horizon:
            self._bytes -= self._packets.popleft()[1]

    @property
    def rate_bps(self) -> float | None:
        """None until a whole window has been seen: a partial one would read low."""
        if self._first is None or self._latest is None or self._latest - self._first < WINDOW:
            return None
        return self._bytes * 8 / WINDOW
