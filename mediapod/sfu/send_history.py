"""What left toward one subscriber under each transport-wide sequence number, to read its TWCC feedback.

The subscriber's feedback says when each sequence number arrived (or that it
did not); the estimator needs that next to when we sent it and how big it
was. A fixed ring of parallel arrays (no objects per packet) holds the last
``SIZE`` packets: feedback comes every 50-100 ms, so a packet still unreported
after thousands more were sent is of no use to anyone. There is one per
subscriber with congestion control on: sizes are kept in 16 bits (a UDP
datagram holds at most 65,507 bytes), 18 bytes a slot, 36 KiB in all.
"""

from __future__ import annotations

from array import array

from mediapod.rtp.twcc import TwccFeedback
from mediapod.sfu.bwe.feedback import PacketResult

SIZE = 2048
_REFERENCE_TIME_UNIT_US = 64_000  # TWCC reference time counts 64 ms units (draft section 3.1)


class SendHistory:
    """Send time and size of the last SIZE packets, by transport-wide sequence number."""

    __slots__ = ("_last", "_sent_at", "_sequence", "_size")

    def __init__(self) -> None:
        # Extended sequence numbers (counting wraps of the 16-bit ones), so
        # a slot tells which of the numbers sharing it it holds, and the
        # estimator sees a sequence that only grows.
        self._sequence = array("q", [-1]) * SIZE
        self._sent_at = array("d", [0.0]) * SIZE
        self._size = array("H", bytes(2 * SIZE))
        self._last = -1  # extended number of the newest packet recorded

    def record(self, sequence: int, sent_at: float, size: int) -> None:
        """A packet left with the 16-bit sequence number that follows (mod 2^16) the one before."""
        last = self._last
        extended = sequence if last < 0 else last + ((sequence - last) & 0xFFFF)
        self._last = extended
        slot = extended % SIZE
        self._sequence[slot] = extended
        self._sent_at[slot] = sent_at
        self._size[slot] = size

    def results(self, feedback: TwccFeedback) -> list[PacketResult]:
        """The packets feedback reports on that we still remember, with their arrival (None: lost) in seconds.

        Arrival times are on the subscriber's clock (the reference time plus
        each packet's offset); only their differences mean anything.
        """
        results = []
        last = self._last
        if last < 0:
            return results
        reference_us = feedback.reference_time * _REFERENCE_TIME_UNIT_US
        base = feedback.base_sequence
        for index, arrival_us in enumerate(feedback.arrivals):
            # The most recent packet that had this 16-bit number.
            extended = last - ((last - base - index) & 0xFFFF)
            slot = extended % SIZE
            if extended < 0 or self._sequence[slot] != extended:
                continue  # never sent, or forgotten
            arrival = None if arrival_us is None else (reference_us + arrival_us) / 1e6
            results.append(PacketResult(extended, self._sent_at[slot], self._size[slot], arrival))
        return results
