"""The transport-wide congestion control feedback FCI (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1).

``rtcp.TransportCC`` frames the RTCP packet (PT 205, FMT 15) and keeps its
FCI raw; this module reads and writes that FCI: the base sequence number,
the packet status chunks (§3.1.2-3.1.4) and the receive deltas (§3.1.5).

Where the draft is ambiguous or out of date we follow libwebrtc
(``rtcp_packet/transport_feedback.cc``), the implementation every browser
sends and expects:

- status symbol 3 is "[Reserved]" in -01 (it meant "received without delta"
  in -00, and the draft's run-length example 2 and two-bit vector example 2
  still use it). libwebrtc rejects a feedback that reports it, so parse()
  raises MalformedPacket; symbols in the unused tail of the last vector chunk
  are not statuses and are ignored, as libwebrtc does.
- one-bit vectors: 0 is "not received", 1 "received, small delta", as in the
  draft's example 1 and libwebrtc (the prose of §3.1.4 has them swapped).
- libwebrtc accepts a feedback whose delta bytes are missing as feedback
  "without timestamps" (a later draft's feedback request); we never ask for
  those, so missing delta bytes are malformed here.
- a status count of 0 is malformed (libwebrtc: "Empty feedback messages not
  allowed").

Stricter than libwebrtc, because a sender that does these is not one we can
trust about the rest: a run-length chunk that runs past the status count,
and more than three bytes (one word's padding) after the last delta.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from mediapod.rtp.errors import MalformedPacket

HEADER_SIZE = 8
"""Base sequence, status count, reference time, feedback count (§3.1)."""

DELTA_TICK_US = 250
"""Receive deltas count quarter milliseconds (§3.1.5)."""

REFERENCE_TICK_US = 64_000
"""The reference time counts 64 ms (§3.1)."""

SMALL_DELTA_MAX = 0xFF
LARGE_DELTA_MIN = -0x8000
LARGE_DELTA_MAX = 0x7FFF
REFERENCE_TIME_MIN = -(1 << 23)
REFERENCE_TIME_MAX = (1 << 23) - 1
MAX_STATUS_COUNT = 0xFFFF

# Status symbols (§3.1.1). Conveniently, a received symbol is also its delta's size in bytes.
NOT_RECEIVED = 0
SMALL_DELTA = 1
LARGE_DELTA = 2
_RESERVED = 3

_RUN_LENGTH_MAX = 0x1FFF  # 13-bit run length (§3.1.3)
_ONE_BIT_CAPACITY = 14  # §3.1.4
_TWO_BIT_CAPACITY = 7
_MAX_PADDING = 3

_HEADER = struct.Struct("!HHI")
_I16 = struct.Struct("!h")


def _decode_chunks(raw: memoryview | bytes, count: int) -> tuple[list[tuple[int, int]], int]:
    """Read chunks until ``count`` statuses are described.

    Returns the received packets as (index, symbol) pairs, in order, and the
    offset where the receive deltas start. Runs of "not received" cost no
    work, so a 16-byte packet claiming 65535 lost packets is cheap to read.
    """
    received: list[tuple[int, int]] = []
    end = len(raw)
    pos = HEADER_SIZE
    index = 0
    while index < count:
        if pos + 2 > end:
            raise MalformedPacket(f"TWCC chunks end after {index} of {count} statuses")
        chunk = (raw[pos] << 8) | raw[pos + 1]
        pos += 2
        remaining = count - index
        if not chunk & 0x8000:  # run length chunk (§3.1.3)
            symbol = (chunk >> 13) & 0x3
            run = chunk & _RUN_LENGTH_MAX
            if run > remaining:
                raise MalformedPacket(f"TWCC run of {run} overruns the {remaining} statuses left")
            if symbol == _RESERVED and run:
                raise MalformedPacket("TWCC run-length chunk uses the reserved status symbol 3")
            if symbol != NOT_RECEIVED:
                # Each received status needs a delta byte, so a long run of them is bounded by the input.
                if len(received) + run > end:
                    raise MalformedPacket(f"TWCC run of {run} received packets has no room for its deltas")
                received.extend((i, symbol) for i in range(index, index + run))
            index += run
        elif not chunk & 0x4000:  # one-bit status vector (§3.1.4)
            take = min(_ONE_BIT_CAPACITY, remaining)
            for i in range(take):
                if (chunk >> (_ONE_BIT_CAPACITY - 1 - i)) & 0x1:
                    received.append((index + i, SMALL_DELTA))
            index += take
        else:  # two-bit status vector (§3.1.4)
            take = min(_TWO_BIT_CAPACITY, remaining)
            for i in range(take):
                symbol = (chunk >> (2 * (_TWO_BIT_CAPACITY - 1 - i))) & 0x3
                if symbol == _RESERVED:
                    raise MalformedPacket("TWCC status vector uses the reserved status symbol 3")
                if symbol != NOT_RECEIVED:
                    received.append((index + i, symbol))
            index += take
    return received, pos


def _encode_chunks(symbols: list[int]) -> bytearray:
    """Pack status symbols into as few chunks as a greedy choice finds.

    At each position take whichever chunk covers the most statuses: a run
    (up to 8191 of one symbol), a one-bit vector (14, only if none of them
    needs a large delta) or a two-bit vector (7). A vector may stop short
    only at the very end, where the receiver stops reading at the status
    count. Ties go to the run, which is the easiest for a reader.
    """
    out = bytearray()
    n = len(symbols)
    i = 0
    while i < n:
        first = symbols[i]
        run = 1
        while i + run < n and run < _RUN_LENGTH_MAX and symbols[i + run] == first:
            run += 1
        one_bit = min(_ONE_BIT_CAPACITY, n - i)
        if LARGE_DELTA in symbols[i : i + one_bit]:
            one_bit = 0
        two_bit = min(_TWO_BIT_CAPACITY, n - i)
        if run >= one_bit and run >= two_bit:
            chunk = (first << 13) | run
            i += run
        elif one_bit >= two_bit:
            chunk = 0x8000
            for k in range(one_bit):
                chunk |= symbols[i + k] << (_ONE_BIT_CAPACITY - 1 - k)
            i += one_bit
        else:
            chunk = 0xC000
            for k in range(two_bit):
                chunk |= symbols[i + k] << (2 * (_TWO_BIT_CAPACITY - 1 - k))
            i += two_bit
        out += chunk.to_bytes(2, "big")
    return out


@dataclass(slots=True)
class TwccFeedback:
    """One transport-wide feedback: when each packet from ``base_sequence`` on arrived.

    ``arrivals[i]`` is about sequence ``(base_sequence + i) & 0xFFFF``: its
    arrival in microseconds after ``reference_time * 64 ms``, or None if it
    was not received (yet). Arrivals need not increase: reordered packets get
    negative deltas. ``reference_time`` is the signed 24-bit field; its time
    base is the feedback sender's own.
    """

    base_sequence: int
    reference_time: int
    feedback_count: int
    arrivals: list[int | None] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: bytes | memoryview) -> TwccFeedback:
        """Decode an FCI (RTCP padding already removed); MalformedPacket on any bad input."""
        end = len(raw)
        if end < HEADER_SIZE + 2:
            raise MalformedPacket(f"TWCC FCI of {end} bytes is shorter than its header and one chunk")
        base, count, word = _HEADER.unpack_from(raw, 0)
        if count == 0:
            raise MalformedPacket("TWCC feedback reports no packets")
        reference = word >> 8
        if reference & 0x800000:
            reference -= 1 << 24
        received, pos = _decode_chunks(raw, count)
        needed = sum(symbol for _, symbol in received)
        if pos + needed > end:
            raise MalformedPacket(f"TWCC needs {needed} delta bytes, {end - pos} are there")
        if end - pos - needed > _MAX_PADDING:
            raise MalformedPacket(f"TWCC has {end - pos - needed} bytes after its deltas, more than padding")
        arrivals: list[int | None] = [None] * count
        ticks = 0
        for index, symbol in received:
            if symbol == SMALL_DELTA:
                ticks += raw[pos]
                pos += 1
            else:
                ticks += _I16.unpack_from(raw, pos)[0]
                pos += 2
            arrivals[index] = ticks * DELTA_TICK_US
        return cls(base, reference, word & 0xFF, arrivals)

    def serialize(self) -> bytes:
        """Encode the FCI, arrivals rounded to 250 µs; ValueError if a field or delta cannot be encoded.

        Arrivals are rounded before differencing, so rounding errors do not
        accumulate along the feedback. A delta beyond ±8.19 s needs a new
        feedback with its own reference time (§3.1.5): splitting is the
        builder's job, so it is refused here.
        """
        count = len(self.arrivals)
        if not 1 <= count <= MAX_STATUS_COUNT:
            raise ValueError(f"TWCC feedback reports {count} packets, need 1..{MAX_STATUS_COUNT}")
        if not 0 <= self.base_sequence <= 0xFFFF:
            raise ValueError(f"TWCC base sequence {self.base_sequence} is not 16-bit")
        if not REFERENCE_TIME_MIN <= self.reference_time <= REFERENCE_TIME_MAX:
            raise ValueError(f"TWCC reference time {self.reference_time} is not signed 24-bit")
        if not 0 <= self.feedback_count <= 0xFF:
            raise ValueError(f"TWCC feedback count {self.feedback_count} is not 8-bit")
        symbols = [NOT_RECEIVED] * count
        deltas = bytearray()
        previous = 0
        for index, arrival in enumerate(self.arrivals):
            if arrival is None:
                continue
            ticks = int((arrival + DELTA_TICK_US // 2) // DELTA_TICK_US)
            delta = ticks - previous
            previous = ticks
            if 0 <= delta <= SMALL_DELTA_MAX:
                symbols[index] = SMALL_DELTA
                deltas.append(delta)
            elif LARGE_DELTA_MIN <= delta <= LARGE_DELTA_MAX:
                symbols[index] = LARGE_DELTA
                deltas += _I16.pack(delta)
            else:
                sequence = (self.base_sequence + index) & 0xFFFF
                micros = delta * DELTA_TICK_US
                raise ValueError(f"TWCC delta of {micros} µs for sequence {sequence} needs a new feedback")
        word = ((self.reference_time & 0xFFFFFF) << 8) | self.feedback_count
        return _HEADER.pack(self.base_sequence, count, word) + bytes(_encode_chunks(symbols)) + bytes(deltas)
