"""A rate-limited link with a small router queue, like Linux's tbf qdisc.

This kernel's tbf works only inside network namespaces and netem is missing,
so the test relay (tests/support/lossy_relay.py) shapes each peer's downlink
with this instead: a token bucket of ``rate_bps`` refilled continuously with
at most ``burst_bytes`` saved up, and a FIFO of at most ``queue_bytes``
waiting for tokens. A datagram that finds the queue full is dropped, as a
home router's would be. Setting ``rate_bps`` to None lifts the cap.

It also records what it was offered and what it let through, per second, so
a test can tell the sender's rate (offered) from the link's (delivered).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LinkStats:
    """Datagrams and bytes offered to, delivered by and dropped at the link, with arrival times of the offered."""

    offered_packets: int = 0
    delivered_packets: int = 0
    dropped_packets: int = 0
    offered: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, bytes) per offered datagram
    dropped: list[float] = field(default_factory=list)  # monotonic times of drops

    def offered_bps(self, start: float, end: float) -> float:
        """The sender's rate into the link between start and end (monotonic seconds)."""
        total = sum(size for at, size in self.offered if start <= at < end)
        return 8 * total / max(end - start, 1e-9)

    def loss(self, start: float, end: float) -> float:
        """The fraction of datagrams offered between start and end that the queue dropped."""
        offered = sum(1 for at, _ in self.offered if start <= at < end)
        dropped = sum(1 for at in self.dropped if start <= at < end)
        return dropped / offered if offered else 0.0


class LinkShaper:
    """One direction of one peer's link: token bucket rate, burst, and a drop-tail queue."""

    def __init__(
        self, deliver: Callable[[bytes], None], rate_bps: float | None, burst_bytes: int = 4000, queue_bytes: int = 8000
    ) -> None:
        self._deliver = deliver
        self.rate_bps = rate_bps
        self.burst_bytes = burst_bytes
        self.queue_bytes = queue_bytes
        self.stats = LinkStats()
        self._tokens = float(burst_bytes)
        self._refilled_at = time.monotonic()
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._timer: asyncio.TimerHandle | None = None

    def send(self, data: bytes) -> None:
        now = time.monotonic()
        stats = self.stats
        stats.offered_packets += 1
        stats.offered.append((now, len(data)))
        if self.rate_bps is None and not self._queue:
            self._pass(data)
            return
        if self._queued + len(data) > self.queue_bytes:
            stats.dropped_packets += 1
            stats.dropped.append(now)
            return
        self._queue.append(data)
        self._queued += len(data)
        if self._timer is None:
            self._drain()

    def _refill(self, now: float) -> None:
        if self.rate_bps is None:
            self._tokens = float(self.burst_bytes)
        else:
            self._tokens = min(float(self.burst_bytes), self._tokens + (now - self._refilled_at) * self.rate_bps / 8)
        self._refilled_at = now

    def set_rate(self, rate_bps: float | None) -> None:
        """Change the link's rate now (None lifts the cap); what is queued drains at the new rate."""
        self._refill(time.monotonic())
        self.rate_bps = rate_bps
        if self._timer is not None:
            self._timer.cancel()
        self._drain()

    def _drain(self) -> None:
        self._timer = None
        self._refill(time.monotonic())
        queue = self._queue
        while queue and (self.rate_bps is None or self._tokens >= len(queue[0])):
            data = queue.popleft()
            self._queued -= len(data)
            if self.rate_bps is not None:
                self._tokens -= len(data)
            self._pass(data)
        if queue and self._timer is None and self.rate_bps is not None:
            wait = (len(queue[0]) - self._tokens) * 8 / self.rate_bps
            self._timer = asyncio.get_running_loop().call_later(max(wait, 0.001), self._drain)

    def _pass(self, data: bytes) -> None:
        self.stats.delivered_packets += 1
        self._deliver(data)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
