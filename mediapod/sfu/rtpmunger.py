"""Sequence number and timestamp translation for one outgoing stream.

The subscriber sees a stream of our own: a sequence number and timestamp
space that starts at random and has no gaps we made. Within one source
(a simulcast layer between two switches) output = input + fixed offsets, so
gaps the publisher's network made stay gaps the subscriber may NACK. Every
(re)start on a new source continues our numbering one past the last sent and
our clock by the time that passed, so a switch, a pause or a mute never looks
like loss or a jump in time. Packets the Forwarder drops inside the stream
(temporal layers above the limit) move later packets down one; padding we
insert moves them up one. A late packet filling a hole gets the offset that
was in effect when the hole appeared (LiveKit's missing-sequence cache).

For VP8 the picture id and TL0PICIDX get the same treatment through the
:class:`~mediapod.sfu.vp8munger.Vp8Munger` this munger owns.
"""

from __future__ import annotations

import secrets

from mediapod.sfu.extpacket import ExtPacket
from mediapod.sfu.vp8munger import Vp8Munger

# Holes remembered for late packets. A packet later than this many holes is
# too old to matter to the subscriber's jitter buffer and is not forwarded.
MAX_MISSING = 256


class RtpMunger:
    """Input-to-output sequence number and timestamp offsets, and what was sent last.

    Sequence numbers are kept extended (past 16 bits) so the arithmetic
    needs no wrap handling; only the 16-bit output is masked.
    """

    __slots__ = (
        "_highest_in",
        "_last_marker",
        "_missing",
        "_sent",
        "_seq_offset",
        "_ts_offset",
        "clock_rate",
        "last_sent_at",
        "last_sequence_number",
        "last_timestamp",
        "vp8",
    )

    def __init__(self, clock_rate: int, vp8: bool = False) -> None:
        self.clock_rate = clock_rate
        self.vp8 = Vp8Munger() if vp8 else None
        self._seq_offset = 0
        self._ts_offset = 0
        self._highest_in = -1  # highest extended input sequence number of the current source
        self._missing: dict[int, int] = {}  # extended input seq of a hole -> seq offset then
        # Room below 2^16 at the start avoids an early wrap; extended from then on.
        self.last_sequence_number = secrets.randbits(15)
        self.last_timestamp = secrets.randbits(32)
        self.last_sent_at = 0.0
        self._last_marker = True
        self._sent = False

    def switch(self, ext: ExtPacket, now: float) -> None:
        """Start a new source at ``ext`` (a keyframe, or any packet for audio)."""
        ticks = max(1, int((now - self.last_sent_at) * self.clock_rate)) if self._sent else 1
        extended = ext.extended_sequence_number
        self._seq_offset = self.last_sequence_number + 1 - extended
        self._ts_offset = (self.last_timestamp + ticks - ext.header.timestamp) & 0xFFFFFFFF
        self._highest_in = extended - 1
        self._missing.clear()
        vp8 = self.vp8
        if vp8 is not None:
            start = ext.header.header_size
            vp8.switch(
                ext.packet,
                start + ext.picture_id_at if ext.picture_id_at >= 0 else -1,
                ext.picture_id_len,
                start + ext.tl0picidx_at if ext.tl0picidx_at >= 0 else -1,
            )

    def translate(self, ext: ExtPacket) -> tuple[int, int] | None:
        """(sequence number, timestamp) to send ``ext`` with; None if it has no place in our stream.

        A late packet has one only if it fills a hole seen since the current
        source started (and among the last MAX_MISSING).
        """
        extended = ext.extended_sequence_number
        highest = self._highest_in
        if extended > highest:
            if extended > highest + 1:
                self._remember_holes(highest + 1, extended)
            self._highest_in = extended
            seq = extended + self._seq_offset
            ts = (ext.header.timestamp + self._ts_offset) & 0xFFFFFFFF
            self.last_sequence_number = seq
            self.last_timestamp = ts
            self.last_sent_at = ext.arrival
            self._last_marker = ext.header.marker
            self._sent = True
            return seq & 0xFFFF, ts
        offset = self._missing.pop(extended, None)
        if offset is None:
            return None
        return (extended + offset) & 0xFFFF, (ext.header.timestamp + self._ts_offset) & 0xFFFFFFFF

    def _remember_holes(self, first: int, end: int) -> None:
        missing = self._missing
        offset = self._seq_offset
        for hole in range(max(first, end - MAX_MISSING), end):
            missing[hole] = offset
        excess = len(missing) - MAX_MISSING
        if excess > 0:
            # Holes go in ascending order, so the oldest come first.
            for hole in list(missing)[:excess]:
                del missing[hole]

    def skip(self, ext: ExtPacket) -> None:
        """``ext`` of the current source is not sent: later packets move down one, so it does not look lost.

        A late packet skipped leaves its hole: the numbers after it were
        already sent.
        """
        extended = ext.extended_sequence_number
        if extended > self._highest_in:
            if extended > self._highest_in + 1:
                self._remember_holes(self._highest_in + 1, extended)
            self._highest_in = extended
            self._seq_offset -= 1
        else:
            self._missing.pop(extended, None)

    def next_padding(self) -> tuple[int, int] | None:
        """(sequence number, timestamp) for a padding-only packet after the last frame sent; None mid-frame.

        Padding takes the next number and the last frame's timestamp, and
        media after it moves up one, so the stream stays contiguous. Only at
        a frame end (marker set), where a receiver cannot mistake padding for
        part of a frame.
        """
        if not self._sent or not self._last_marker:
            return None
        self.last_sequence_number += 1
        self._seq_offset += 1
        return self.last_sequence_number & 0xFFFF, self.last_timestamp

    def next_frame(self, now: float, frame_ticks: int) -> tuple[int, int]:
        """(sequence number, timestamp) for a one-packet frame of our own (a blank frame on mute).

        It follows the last packet by a frame interval, or by the time that
        passed if that is longer.
        """
        ticks = frame_ticks
        if self._sent:
            ticks = max(ticks, int((now - self.last_sent_at) * self.clock_rate))
        self.last_sequence_number += 1
        self._seq_offset += 1
        self.last_timestamp = (self.last_timestamp + ticks) & 0xFFFFFFFF
        self.last_sent_at = now
        self._last_marker = True
        self._sent = True
        return self.last_sequence_number & 0xFFFF, self.last_timestamp

    def rewrite_payload(self, out: bytearray, payload_start: int, ext: ExtPacket, retransmission: bool = False) -> None:
        """Rewrite the codec's numbers (VP8 picture id, TL0PICIDX) in ``out``, whose payload starts at payload_start.

        Call it after translate(ext). Only the newest packet's numbers become
        the last sent: not a late one's, not a retransmission's.
        """
        vp8 = self.vp8
        if vp8 is None:
            return
        pid_at, tl0_at = ext.picture_id_at, ext.tl0picidx_at
        vp8.munge(
            out,
            payload_start + pid_at if pid_at >= 0 else -1,
            ext.picture_id_len,
            payload_start + tl0_at if tl0_at >= 0 else -1,
            not retransmission and ext.extended_sequence_number == self._highest_in,
        )

    def rtp_time(self, now: float) -> int:
        """Our RTP clock at ``now``, extrapolated from the last packet sent (for sender reports)."""
        return (self.last_timestamp + int((now - self.last_sent_at) * self.clock_rate)) & 0xFFFFFFFF
