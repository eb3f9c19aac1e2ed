"""Uplink loss recovery: which missing packets to NACK to the publisher, and when.

When a sequence gap appears, each missing number is NACKed after a short
reorder grace, then again every RTT until it arrives, up to a retry limit
(RFC 4585 generic NACK). Packets that never arrive are reported as lost.
A NackGenerator keeps one stream's missing numbers; the NackScheduler of a
publisher connection runs one timer for all its streams that have any.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

# A packet a few milliseconds late is usually reordered, not lost.
REORDER_GRACE = 0.01
# Re-NACK no sooner than one round trip later (LiveKit assumes 100 ms before it has an RTT).
RETRY_INTERVAL = 0.1
MAX_ATTEMPTS = 5
# Gaps larger than this are a stream restart or a wrap, not loss worth recovering.
MAX_GAP = 200
# Outstanding missing packets are capped so a burst cannot grow memory.
MAX_MISSING = 300


class NackGenerator:
    """Tracks missing sequence numbers of one stream and says when to NACK them."""

    __slots__ = ("_highest", "_missing", "lost")

    def __init__(self) -> None:
        self._highest: int | None = None
        # missing sequence number -> [next NACK time, attempts made]
        self._missing: dict[int, list[float]] = {}
        self.lost = 0   # missing packets given up on

    def on_packet(self, sequence_number: int, now: float) -> bool:
        """Record an arrival; True if a new gap opened (a NACK flush is due)."""
        highest = self._highest
        if highest is None:
            self._highest = sequence_number
            return False
        delta = (sequence_number - highest) & 0xFFFF
        if delta == 0:
            return False
        if delta >= 0x8000:
            # Older than the highest: a late or retransmitted packet.
            self._missing.pop(sequence_number, None)
            return False
        self._highest = sequence_number
        if delta == 1:
            return False
        if delta > MAX_GAP:
            self._missing.clear()
            return False
        due = now + REORDER_GRACE
        for offset in range(1, delta):
            if len(self._missing) >= MAX_MISSING:
                break
            self._missing[(highest + offset) & 0xFFFF] = [due, 0]
        return True

    def due(self, now: float) -> list[int]:
        """Sequence numbers to NACK now; each is rescheduled one retry interval later."""
        due: list[int] = []
        expired: list[int] = []
        for sequence_number, state in self._missing.items():
            if state[0] > now:
                continue
            if state[1] >= MAX_ATTEMPTS:
                expired.append(sequence_number)
                continue
            state[0] = now + RETRY_INTERVAL
            state[1] += 1
            due.append(sequence_number)
        for sequence_number in expired:
            del self._missing[sequence_number]
        self.lost += len(expired)
        return due

    def next_due(self) -> float | None:
        return min((state[0] for state in self._missing.values()), default=None)


class NackSource(Protocol):
    """A received stream with a NackGenerator, as the scheduler sees it."""

    @property
    def ssrc(self) -> int: ...

    def due_nacks(self, now: float) -> tuple[list[int], int]:
        """Sequence numbers to NACK now, and how many were just given up on."""
        ...

    def next_nack_due(self) -> float | None: ...


class NackScheduler:
    """Flushes the NACKs of one publisher connection's streams on a single timer.

    A stream that sees a gap wakes the scheduler, which waits out the reorder
    grace, then asks every stream with missing packets what is due, hands the
    result to ``send_nack(media_ssrc, sequence_numbers)``, reports packets
    given up on to ``on_lost``, and sleeps until the earliest retry.
    """

    def __init__(self, send_nack: Callable[[int, list[int]], None], on_lost: Callable[[int], None]) -> None:
        self._send_nack = send_nack
        self._on_lost = on_lost
        self._sources: set[NackSource] = set()
        self._timer: asyncio.TimerHandle | None = None

    def wake(self, source: NackSource) -> None:
        """source saw a new gap: NACK it once the reorder grace has passed."""
        self._sources.add(source)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(REORDER_GRACE, self._flush)

    def forget(self, source: NackSource) -> None:
        self._sources.discard(source)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._sources.clear()

    def _flush(self) -> None:
        self._timer = None
        now = time.monotonic()
        next_due: float | None = None
        for source in list(self._sources):
            due, given_up = source.due_nacks(now)
            if given_up:
                self._on_lost(given_up)
            if due:
                self._send_nack(source.ssrc, due)
            pending = source.next_nack_due()
            if pending is None:
                self._sources.discard(source)
            elif next_due is None or pending < next_due:
                next_due = pending
        if next_due is not None:
            self._timer = asyncio.get_running_loop().call_later(max(next_due - now, 0.005), self._flush)
