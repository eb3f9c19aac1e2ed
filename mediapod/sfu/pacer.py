"""Paced sending toward one subscriber, and the transport-wide sequence number each packet leaves with.

An SFU forwards a publisher's bursts as they come: a keyframe of 30 packets
arrives in a millisecond and would leave in one, overflowing the small queue
of a subscriber's home router long before the average rate would. The Pacer
spends a byte budget that refills at ``rate_bps`` (set from the subscriber's
allocation) and holds no more than ``MAX_BURST_SECONDS`` of it, so what
leaves is smooth at the scale a router queue sees. Audio goes out at once
(it is small and late audio is worse than late video) but spends the budget
too. Packets that must wait are sent from a timer, in order.

A packet waits at most ``MAX_QUEUE_DELAY``: past that the queue is flushed,
because a frame that arrives very late is worth less than one that arrives
in a burst (and the estimator then sees the congestion it caused).

Transport-wide sequence numbers (draft-holmer-rmcat-transport-wide-cc-
extensions-01) are written when a packet leaves, so they follow the order on
the wire, which is what the subscriber's feedback reports on.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import time
from collections.abc import Callable

from mediapod.sfu.downtrack import TWCC_SEQUENCE_OFFSET
from mediapod.sfu.send_history import SendHistory

_monotonic = time.monotonic

MAX_BURST_SECONDS = 0.02  # budget saved up while idle: 20 ms at the pacing rate
MAX_QUEUE_DELAY = 0.25
MIN_RATE_BPS = 64_000.0
_TIMER_SLACK = 0.002  # send what the budget will cover within this, rather than waking up for each packet


class Pacer:
    """Sends one subscriber PeerConnection's RTP paced to a rate, stamping transport-wide sequence numbers.

    ``send`` protects and transmits a finished packet. ``history`` remembers
    what was sent under each transport-wide sequence number, for the
    subscriber's feedback; without it (no transport-cc negotiated) nothing
    is stamped. A packet with a header extension block carries ours (the
    DownTrack never forwards a publisher's), whose sequence number sits at
    TWCC_SEQUENCE_OFFSET after the CSRCs.
    """

    __slots__ = (
        "_budget",
        "_bytes_per_second",
        "_max_budget",
        "_queue",
        "_refilled_at",
        "_send",
        "_sample_at",
        "_sample_bytes",
        "_sequence",
        "_timer",
        "bytes_sent",
        "history",
        "queued_bytes",
    )

    def __init__(self, send: Callable[[bytes], None], history: SendHistory | None, rate_bps: float) -> None:
        self._send = send
        self.history = history
        self._bytes_per_second = 0.0
        self._max_budget = 0.0
        self.set_rate(rate_bps)
        self._budget = self._max_budget
        self._refilled_at = time.monotonic()
        self._queue: collections.deque[tuple[bytes | bytearray, int, float]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._sequence = 0
        self.queued_bytes = 0
        self.bytes_sent = 0
        self._sample_at = self._refilled_at
        self._sample_bytes = 0

    @property
    def rate_bps(self) -> float:
        return self._bytes_per_second * 8

    def set_rate(self, rate_bps: float) -> None:
        """Pace at rate_bps from now on (never below MIN_RATE_BPS, so audio and probes always get through)."""
        self._bytes_per_second = max(rate_bps, MIN_RATE_BPS) / 8
        self._max_budget = self._bytes_per_second * MAX_BURST_SECONDS

    def sender(self, immediate: bool) -> Callable[[bytes | bytearray], None]:
        """A send function for one DownTrack: immediate for audio (see the module docstring), paced for video.

        A partial rather than send_now: it is called for every packet, and spares a Python frame.
        """
        return functools.partial(self.send, immediate=True) if immediate else self.send

    def send_now(self, packet: bytes | bytearray) -> None:
        """Send at once whatever the budget (audio, probe padding), spending it all the same."""
        self.send(packet, immediate=True)

    def send(self, packet: bytes | bytearray, immediate: bool = False) -> None:
        """Send packet now if the budget allows, else queue it behind the others.

        Per packet to every subscriber: the leaving path is written out here
        rather than shared with the timer's, which is worth a method call.
        """
        now = _monotonic()
        budget = self._budget + (now - self._refilled_at) * self._bytes_per_second
        if budget > self._max_budget:
            budget = self._max_budget
        self._refilled_at = now
        twcc_at = -1
        history = self.history
        if history is not None and packet[0] & 0x10:
            twcc_at = TWCC_SEQUENCE_OFFSET + 4 * (packet[0] & 0x0F)
            if type(packet) is not bytearray:
                packet = bytearray(packet)
        size = len(packet)
        if immediate or (budget > 0 and not self._queue):
            self._budget = budget - size
            if twcc_at >= 0:
                sequence = self._sequence
                self._sequence = (sequence + 1) & 0xFFFF
                packet[twcc_at] = sequence >> 8  # type: ignore[index]  # a bytearray whenever twcc_at >= 0
                packet[twcc_at + 1] = sequence & 0xFF  # type: ignore[index]
                history.record(sequence, now, size)  # type: ignore[union-attr]
            self.bytes_sent += size
            self._send(packet if type(packet) is bytes else bytes(packet))
            return
        self._budget = budget
        self._queue.append((packet, twcc_at, now))
        self.queued_bytes += size
        if self._timer is None:
            self._schedule(now)

    def _emit(self, packet: bytes | bytearray, twcc_at: int, now: float) -> None:
        history = self.history
        if history is not None and twcc_at >= 0:
            sequence = self._sequence
            self._sequence = (sequence + 1) & 0xFFFF
            packet[twcc_at] = sequence >> 8  # type: ignore[index]  # a bytearray whenever twcc_at >= 0
            packet[twcc_at + 1] = sequence & 0xFF  # type: ignore[index]
            history.record(sequence, now, len(packet))
        self.bytes_sent += len(packet)
        self._send(packet if type(packet) is bytes else bytes(packet))

    def sent_bps(self, now: float, window: float) -> float:
        """The rate sent since the last sample, which is taken again once it is ``window`` old."""
        elapsed = now - self._sample_at
        if elapsed <= 0:
            return 0.0
        rate = 8 * (self.bytes_sent - self._sample_bytes) / elapsed
        if elapsed >= window:
            self._sample_at, self._sample_bytes = now, self.bytes_sent
        return rate

    def _schedule(self, now: float) -> None:
        wait = -self._budget / self._bytes_per_second if self._budget < 0 else 0.0
        self._timer = asyncio.get_running_loop().call_later(max(wait - _TIMER_SLACK, 0.0), self._drain)

    def _drain(self) -> None:
        self._timer = None
        now = time.monotonic()
        budget = self._budget + (now - self._refilled_at) * self._bytes_per_second
        self._budget = min(self._max_budget, budget)
        self._refilled_at = now
        queue = self._queue
        flush = bool(queue) and now - queue[0][2] > MAX_QUEUE_DELAY
        slack = _TIMER_SLACK * self._bytes_per_second
        while queue and (flush or self._budget + slack > 0):
            packet, twcc_at, _ = queue.popleft()
            self.queued_bytes -= len(packet)
            self._budget -= len(packet)
            self._emit(packet, twcc_at, now)
        if queue:
            self._schedule(now)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
        self.queued_bytes = 0
