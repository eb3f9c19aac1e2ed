"""Transport-wide congestion control feedback to a publisher (draft-holmer-rmcat-transport-wide-cc-extensions-01).

A publisher's browser estimates its uplink from when we received each of its
packets. TwccRecorder notes the arrival of every packet that carries the
transport-wide sequence number extension, and on a timer turns everything
since the last call into RTCP TransportCC packets for the browser's
send-side estimator. One recorder per publisher PeerConnection: the sequence
number is transport-wide, shared by all SSRCs of the connection.

Decisions, with what libwebrtc's RemoteEstimatorProxy does for comparison:

- Cadence: feedback() is meant to be called every 50 ms (libwebrtc sends
  every 50-250 ms depending on bitrate). The recorder works at any cadence;
  it keeps up to WINDOW unreported packets, 40 000 packets/s at 50 ms.
- Each feedback covers every sequence number from the first one not yet
  reported up to the highest received; the gaps are "not received".
- Reordering: a packet that arrives after a feedback already reported its
  sequence number as not received is dropped, not reported again. libwebrtc
  re-sends an overlapping window in that case; we keep no history of
  reported packets instead, and the sender's loss estimate counts the
  rare reorder across a 50 ms boundary as a loss.
- A packet older than the first one this recorder saw is dropped too.
- Bounded whatever the sender does: a forward jump keeps only the last
  WINDOW sequence numbers (the skipped ones are never reported); a jump of
  2^15 or more unwraps as a packet from the past and is dropped, unless
  RESYNC_AFTER such packets come in a row, which means the sender really
  restarted its numbering, and the recorder starts over from there.
- Reference time: each feedback packet's first received arrival, rounded
  down to 64 ms, on a clock that starts at this recorder's first packet; it
  wraps in 24 bits after 12 days, which senders unwrap (§3.1).
- A feedback packet holds at most MAX_RECEIVED_PER_FEEDBACK received packets
  and at most MAX_FEEDBACK_BYTES; a packet starts anew where a receive delta
  does not fit 16 bits (more than 8.19 s between two arrivals).
"""

from __future__ import annotations

from array import array

from mediapod.rtp.rtcp import TransportCC
from mediapod.rtp.twcc import DELTA_TICK_US, LARGE_DELTA_MAX, LARGE_DELTA_MIN, REFERENCE_TICK_US, TwccFeedback

WINDOW = 2048
"""Unreported packets kept: a ring of this many slots (a power of two), 32 KB a publisher."""

MAX_RECEIVED_PER_FEEDBACK = 512
"""Received packets per feedback packet; with small deltas that is about 600 bytes."""

MAX_FEEDBACK_BYTES = 1200
"""A whole RTCP TransportCC packet, before SRTCP: comfortably inside one datagram."""

RESYNC_AFTER = 64
"""Consecutive packets from before the window that mean the sender restarted its numbering."""

_TICKS_PER_SECOND = 1_000_000 // DELTA_TICK_US
_TICKS_PER_REFERENCE = REFERENCE_TICK_US // DELTA_TICK_US
_UNSEEN = -1
_NO_PACKET = -1


class TwccRecorder:
    """Arrival times of one publisher connection's packets, reported as TWCC feedback.

    Sequence numbers are unwrapped to extended ones; each lives in ring slot
    ``extended % WINDOW`` next to its arrival time, so recording a packet
    stores two numbers in preallocated arrays and grows nothing.
    """

    __slots__ = ("_arrivals", "_extended", "_feedback_count", "_highest", "_next", "_origin", "_stale")

    def __init__(self) -> None:
        self._arrivals = array("d", bytes(8 * WINDOW))  # arrival time, seconds
        self._extended = array("q", [_UNSEEN]) * WINDOW  # which extended sequence the slot holds
        self._highest = _NO_PACKET  # highest extended sequence received
        self._next = 0  # first extended sequence the next feedback reports
        self._origin = 0.0  # arrival of the first packet: our time base
        self._stale = 0  # consecutive packets from before the window
        self._feedback_count = 0

    def on_packet(self, sequence: int, arrival: float) -> None:
        """Record that the packet with this transport-wide sequence number arrived at ``arrival`` (monotonic seconds).

        Duplicates, packets already reported and packets from before the
        window are ignored.
        """
        highest = self._highest
        if highest == _NO_PACKET:
            self._start(sequence, arrival)
            return
        diff = (sequence - highest) & 0xFFFF
        if diff >= 0x8000:
            diff -= 0x10000
        extended = highest + diff
        if extended < self._next:
            self._stale += 1
            if self._stale >= RESYNC_AFTER:
                self._start(sequence, arrival)
            return
        self._stale = 0
        slot = extended & (WINDOW - 1)
        if self._extended[slot] == extended:
            return  # duplicate: the first arrival counts
        if extended > highest:
            self._highest = extended
            if extended - self._next >= WINDOW:
                self._next = extended - WINDOW + 1
        self._extended[slot] = extended
        self._arrivals[slot] = arrival

    def _start(self, sequence: int, arrival: float) -> None:
        """Begin (again) at this packet; the time base and feedback count carry on."""
        if self._highest == _NO_PACKET:
            self._origin = arrival
            # Offset by 2^16 so that unwrapping a packet reordered before this one stays positive.
            extended = sequence + 0x10000
        else:
            # The next number above everything seen that is this sequence on the wire, so no slot matches by accident.
            above = self._highest + 1
            extended = above + ((sequence - above) & 0xFFFF)
        self._highest = extended
        self._next = extended
        self._stale = 0
        slot = extended & (WINDOW - 1)
        self._extended[slot] = extended
        self._arrivals[slot] = arrival

    def feedback(self, sender_ssrc: int, media_ssrc: int) -> list[bytes]:
        """Serialized RTCP TransportCC packets covering everything since the last call; [] if nothing arrived."""
        end = self._highest + 1
        packets: list[bytes] = []
        while self._next < end:
            packets.append(self._next_packet(end, sender_ssrc, media_ssrc))
        return packets

    def _next_packet(self, end: int, sender_ssrc: int, media_ssrc: int) -> bytes:
        """Build one packet from ``self._next`` on, halving its share of received packets until it fits."""
        limit = MAX_RECEIVED_PER_FEEDBACK
        while True:
            feedback, stop = self._collect(self._next, end, limit)
            packet = TransportCC(sender_ssrc, media_ssrc, feedback.serialize()).serialize()
            if len(packet) <= MAX_FEEDBACK_BYTES or limit == 1:
                break
            limit //= 2
        self._next = stop
        self._feedback_count = (self._feedback_count + 1) & 0xFF
        return packet

    def _collect(self, start: int, end: int, limit: int) -> tuple[TwccFeedback, int]:
        """The feedback for ``start`` up to (not including) the first sequence it cannot hold, and that sequence.

        It ends before ``end``, before the received packet past ``limit``, or
        before a receive delta that does not fit 16 bits (§3.1.5). The
        reference time is the first received packet's arrival rounded down to
        64 ms, so the first delta always fits one byte. There is always a
        received packet: feedback covers up to the highest received, and every
        packet after the first starts at a received one.
        """
        arrivals: list[int | None] = []
        reference = 0  # in 250 µs ticks since self._origin
        previous = 0
        received = 0
        sequence = start
        while sequence < end:
            slot = sequence & (WINDOW - 1)
            if self._extended[slot] != sequence:
                arrivals.append(None)
                sequence += 1
                continue
            ticks = round((self._arrivals[slot] - self._origin) * _TICKS_PER_SECOND)
            if received == 0:
                reference = ticks - ticks % _TICKS_PER_REFERENCE
            elif received == limit or not LARGE_DELTA_MIN <= ticks - previous <= LARGE_DELTA_MAX:
                break
            arrivals.append((ticks - reference) * DELTA_TICK_US)
            previous = ticks
            received += 1
            sequence += 1
        # The reference time is a signed 24-bit count of 64 ms that wraps after 12 days; the sender unwraps it.
        reference_time = ((reference // _TICKS_PER_REFERENCE + (1 << 23)) & 0xFFFFFF) - (1 << 23)
        return TwccFeedback(start & 0xFFFF, reference_time, self._feedback_count, arrivals), sequence
