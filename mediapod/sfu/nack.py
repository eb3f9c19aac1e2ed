"""Uplink loss recovery: which missing packets to NACK to the publisher, and when.

When a sequence gap appears, each missing number is NACKed after a short
reorder grace, then again every RTT until it arrives, up to a retry limit
(RFC 4585 generic NACK). Packets that never arrive are reported as lost.
"""

from __future__ import annotations

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

    __slots__ = ("_highest", "_missing", "lost", "gaps")

    def __init__(self) -> None:
        self._highest: int | None = None
        # missing sequence number -> [next NACK time, attempts made]
        self._missing: dict[int, list[float]] = {}
        self.lost = 0   # missing packets given up on
        self.gaps = 0   # missing packets detected

    @property
    def pending(self) -> bool:
        return bool(self._missing)

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
            self.gaps += 1
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
