"""Per-DownTrack memory of what was sent, so a subscriber's NACK can be answered.

The subscriber NACKs sequence numbers in *its* space (after munging). The
Sequencer maps each back to the source packet's sequence number and the
timestamp it was sent with, in a fixed ring of parallel integer lists: one
slot write per forwarded packet, no objects allocated per packet.

Retransmission is rate-limited per packet: at most once per RTT window and at
most a few times in all, so duplicate NACKs (a subscriber repeating itself,
or several NACK packets for the same hole) cost nothing.
"""

from __future__ import annotations

from mediapod.rtp.packet import extend_sequence_number

DEFAULT_SIZE = 500
# LiveKit's defaults: one retransmission per 100 ms window, three in all.
RETRANSMIT_WINDOW = 0.1
MAX_RETRANSMITS = 3


class Sequencer:
    """Ring of (munged seq -> source seq, munged timestamp, layer, retransmit bookkeeping)."""

    __slots__ = ("size", "_highest", "_out_seq", "_src_seq", "_timestamp", "_layer", "_last_sent", "_count")

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        # Sequence numbers are kept extended past 16 bits, so the ring index
        # keeps advancing across the 65535 -> 0 wrap instead of jumping back.
        self._highest: int | None = None
        self._out_seq = [-1] * size
        self._src_seq = [0] * size
        self._timestamp = [0] * size
        self._layer = [0] * size
        self._last_sent = [0.0] * size
        self._count = [0] * size

    def _extend(self, seq: int) -> int:
        return seq if self._highest is None else extend_sequence_number(self._highest, seq)

    def push(self, out_seq: int, src_seq: int, timestamp: int, layer: int) -> None:
        """Remember a packet sent to the subscriber as out_seq (16-bit)."""
        extended = self._extend(out_seq)
        if self._highest is None or extended > self._highest:
            self._highest = extended
        index = extended % self.size
        self._out_seq[index] = extended
        self._src_seq[index] = src_seq
        self._timestamp[index] = timestamp
        self._layer[index] = layer
        self._last_sent[index] = 0.0
        self._count[index] = 0

    def lookup_for_retransmit(self, out_seq: int, now: float) -> tuple[int, int, int] | None:
        """(source seq, munged timestamp, simulcast layer) if out_seq may be resent now, else None."""
        extended = self._extend(out_seq)
        index = extended % self.size
        if self._out_seq[index] != extended:
            return None  # never sent, or too old
        if self._count[index] >= MAX_RETRANSMITS or now - self._last_sent[index] < RETRANSMIT_WINDOW:
            return None
        self._last_sent[index] = now
        self._count[index] += 1
        return self._src_seq[index], self._timestamp[index], self._layer[index]
