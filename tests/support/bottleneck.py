"""A sender, a bottleneck link with a drop-tail queue, and TWCC feedback: synthetic traces.

The oracle is the queue model, not the estimator: a packet leaves the queue
when the link has finished the ones ahead of it (FIFO at `capacity_bps`), so
sending faster than capacity makes queueing delay grow, exactly as on a
real bottleneck. Arrival times are reported on a receiver clock with an
arbitrary offset, as TWCC does.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from mediapod.sfu.bwe.estimator import BandwidthEstimator
from mediapod.sfu.bwe.feedback import PacketResult

PACKET_BYTES = 1200
FEEDBACK_INTERVAL = 0.1  # browsers send TWCC feedback about every 100 ms
RECEIVER_CLOCK_OFFSET = 5000.0  # the receiver's clock has nothing to do with ours


@dataclass
class Bottleneck:
    """One link: FIFO queue served at capacity_bps, then a propagation delay; random loss after."""

    capacity_bps: float
    propagation: float = 0.02
    max_queue_delay: float = 0.3  # drop-tail: a packet facing a longer queue is dropped
    random_loss: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    _free_at: float = 0.0

    def carry(self, send_time: float, size: int) -> float | None:
        """The arrival time on our clock, or None if the packet is dropped."""
        start = max(send_time, self._free_at)
        if start - send_time > self.max_queue_delay:
            return None
        self._free_at = start + size * 8 / self.capacity_bps
        if self.rng.random() < self.random_loss:
            return None
        return self._free_at + self.propagation


@dataclass
class Trace:
    """Drives an estimator with feedback for packets sent at `rate(now)` over a Bottleneck."""

    estimator: BandwidthEstimator
    link: Bottleneck
    now: float = 0.0
    history: list[tuple[float, float]] = field(default_factory=list)  # (now, estimate)
    _sequence: int = 0
    _in_flight: list[tuple[PacketResult, float | None]] = field(default_factory=list)

    def run(self, seconds: float, rate: Callable[[float], float] | None = None) -> None:
        """Sends for `seconds`; `rate` defaults to following the estimate, as a pacer does."""
        end = self.now + seconds
        while self.now < end - 1e-9:
            bps = self.estimator.estimate_bps if rate is None else rate(self.now)
            self._send(bps, self.now, self.now + FEEDBACK_INTERVAL)
            self.now += FEEDBACK_INTERVAL
            self._feedback()
            self.history.append((self.now, self.estimator.estimate_bps))

    def mean_estimate(self, since: float) -> float:
        values = [estimate for at, estimate in self.history if at >= since]
        return sum(values) / len(values)

    def _send(self, bps: float, start: float, end: float) -> None:
        gap = PACKET_BYTES * 8 / bps
        at = start
        while at < end:
            arrival = self.link.carry(at, PACKET_BYTES)
            self._in_flight.append((PacketResult(self._sequence, at, PACKET_BYTES, None), arrival))
            self._sequence += 1
            at += gap

    def _feedback(self) -> None:
        """Reports every packet that arrived (or would have) by now, then feeds the estimator."""
        # A lost packet is reported once later ones show it missing: about when it would have arrived.
        reported_at = [(a if a is not None else p.send_time + self.link.propagation) for p, a in self._in_flight]
        due = [sent for sent, at in zip(self._in_flight, reported_at, strict=True) if at <= self.now]
        self._in_flight = [sent for sent, at in zip(self._in_flight, reported_at, strict=True) if at > self.now]
        for packet, arrival in due:
            packet.arrival = None if arrival is None else arrival + RECEIVER_CLOCK_OFFSET
        if due:
            # Feedback travels back over the reverse path before we see it.
            self.estimator.on_packet_results([p for p, _ in due], self.now + self.link.propagation)
