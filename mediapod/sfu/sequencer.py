"""Per-DownTrack memory of what was sent, so a subscriber's NACK can be answered.

The subscriber NACKs sequence numbers in *its* space (after munging). The
Sequencer maps each back to the source packet's sequence number and the
timestamp it was sent with, in a fixed ring of parallel typed arrays: one
slot write per column per forwarded packet, no objects kept per packet.

There is one Sequencer per subscribed track, so its size is paid per
subscribed track: each column is an ``array`` of the smallest C type that
holds its values, 15 bytes a slot, 7.5 KB a ring. (Lists of Python ints
cost 8 bytes a slot for the pointer plus 32 for each large int they keep
alive: about 56 KB a full ring with the retransmission columns.)

Retransmission is rate-limited per packet: at most once per RTT window and at
most a few times in all, so duplicate NACKs (a subscriber repeating itself,
or several NACK packets for the same hole) cost nothing. That bookkeeping
lives in a dict keyed by extended sequence number, filled only by NACKs, so
recording a packet writes nothing for it.
"""

from __future__ import annotations

from array import array

from mediapod.rtp.packet import extend_sequence_number

DEFAULT_SIZE = 500
# Audio sends about 50 packets a second: 128 slots remember 2.5 s, far more
# than any round trip a NACK could come back in, at a quarter of the bytes.
AUDIO_SIZE = 128
# LiveKit's defaults: one retransmission per 100 ms window, three in all.
RETRANSMIT_WINDOW = 0.1
MAX_RETRANSMITS = 3


class Sequencer:
    """Ring of (munged seq -> source seq, munged timestamp, layer), and the retransmissions of NACKed ones."""

    __slots__ = ("_highest", "_layer", "_out_seq", "_retransmits", "_src_seq", "_timestamp", "size")

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        # Sequence numbers are kept extended past 16 bits, so the ring index
        # keeps advancing across the 65535 -> 0 wrap instead of jumping back.
        self._highest: int | None = None
        self._out_seq = array("q", [-1]) * size  # extended munged number (signed: late packets before the first)
        self._src_seq = array("H", bytes(2 * size))  # the source packet's 16-bit number
        self._timestamp = array("I", bytes(4 * size))  # 32-bit munged RTP timestamp
        self._layer = array("b", bytes(size))  # simulcast layer
        # Extended munged number -> (when last retransmitted, how many times).
        self._retransmits: dict[int, tuple[float, int]] = {}

    def _extend(self, seq: int) -> int:
        return seq if self._highest is None else extend_sequence_number(self._highest, seq)

    def push(self, out_seq: int, src_seq: int, timestamp: int, layer: int) -> None:
        """Remember a packet sent to the subscriber as out_seq (16-bit)."""
        highest = self._highest
        if highest is None:
            extended = self._highest = out_seq
        else:
            extended = extend_sequence_number(highest, out_seq)
            if extended > highest:
                self._highest = extended
        index = extended % self.size
        self._out_seq[index] = extended
        self._src_seq[index] = src_seq
        self._timestamp[index] = timestamp
        self._layer[index] = layer

    def lookup_for_retransmit(self, out_seq: int, now: float) -> tuple[int, int, int] | None:
        """(source seq, munged timestamp, simulcast layer) if out_seq may be resent now, else None."""
        extended = self._extend(out_seq)
        index = extended % self.size
        if self._out_seq[index] != extended:
            return None  # never sent, or too old
        last_sent, count = self._retransmits.get(extended, (0.0, 0))
        if count >= MAX_RETRANSMITS or now - last_sent < RETRANSMIT_WINDOW:
            return None
        if len(self._retransmits) >= 2 * self.size:
            self._forget_retransmits_older_than(self._highest - self.size)  # type: ignore[operator]
        self._retransmits[extended] = (now, count + 1)
        return self._src_seq[index], self._timestamp[index], self._layer[index]

    def _forget_retransmits_older_than(self, oldest: int) -> None:
        """Drop the bookkeeping of packets the ring no longer holds.

        Called when the dict reaches twice the ring's size; at most ``size``
        entries survive, so the sweep runs once per ``size`` NACKed packets
        at most and the dict never outgrows twice the ring.
        """
        self._retransmits = {seq: entry for seq, entry in self._retransmits.items() if seq > oldest}
