"""RTCP packets (RFC 3550) and the feedback messages WebRTC uses (RFC 4585, RFC 5104).

Parsing is strict about framing (version, lengths, padding, truncated bodies),
because a packet whose framing is wrong cannot be trusted to tell us where the
next packet of the compound starts, and lenient about content the SFU does
not act on: unknown packet types and feedback formats come back as
:class:`UnknownRtcp` so they can be counted, not raised.

Every class serializes itself; ``parse_rtcp(serialize_compound(ps)) == ps``
holds for every packet these classes can represent.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from typing import Union

from mediapod.rtp.errors import MalformedPacket

SR = 200
RR = 201
SDES = 202
BYE = 203
RTPFB = 205  # transport-layer feedback (RFC 4585 6.2)
PSFB = 206  # payload-specific feedback (RFC 4585 6.3)

RTPFB_NACK = 1
RTPFB_TRANSPORT_CC = 15  # draft-holmer-rmcat-transport-wide-cc-extensions-01
PSFB_PLI = 1
PSFB_FIR = 4
PSFB_AFB = 15  # application layer feedback; REMB lives here

SDES_CNAME = 1

RTCP_HEADER_SIZE = 4
_MAX_COUNT = 31  # five-bit count / FMT field

_HEADER = struct.Struct("!BBH")
_U32 = struct.Struct("!I")
_TWO_U32 = struct.Struct("!II")
_REPORT_BLOCK = struct.Struct("!IIIIII")
_SENDER_INFO = struct.Struct("!IQIII")  # sender SSRC + sender info
_NACK_PAIR = struct.Struct("!HH")
_FIR_ENTRY = struct.Struct("!IB3x")
_REMB_HEAD = struct.Struct("!4sBBH")

_NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01
_PACKETS_LOST_MIN = -(1 << 23)
_PACKETS_LOST_MAX = (1 << 23) - 1
_REMB_MAX_EXPONENT = 63
_REMB_MANTISSA_LIMIT = 1 << 18


def ntp_now() -> int:
    """The wall clock as a 64-bit NTP timestamp (32.32 fixed point since 1900), for SRs."""
    now = time.time()
    seconds = int(now)
    fraction = int((now - seconds) * (1 << 32))
    return (((seconds + _NTP_EPOCH_OFFSET) & 0xFFFFFFFF) << 32) | (fraction & 0xFFFFFFFF)


def ntp_middle32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: what a report block's LSR field carries."""
    return (ntp >> 16) & 0xFFFFFFFF


def _pack_rtcp(packet_type: int, count: int, body: bytes) -> bytes:
    """Frame a body with the common header, adding RTCP padding if it is not word aligned.

    Padding (rather than silently extending the body) keeps the body length
    exact, so a body that came in padded goes out the same way.
    """
    if not 0 <= count <= _MAX_COUNT:
        raise ValueError(f"RTCP count/FMT {count} is outside 0..31")
    padding = -len(body) % 4
    if padding:
        body = body + b"\x00" * (padding - 1) + bytes((padding,))
    if len(body) // 4 > 0xFFFF:
        raise ValueError(f"RTCP body of {len(body)} bytes is too long for the length field")
    first = 0x80 | (0x20 if padding else 0) | count
    return _HEADER.pack(first, packet_type, len(body) // 4) + body


@dataclass(slots=True)
class ReceptionReport:
    """One report block of an SR or RR (RFC 3550 6.4.1): how well we receive ``ssrc``.

    ``packets_lost`` is the signed 24-bit cumulative count; duplicates can
    make it negative. ``lsr``/``dlsr`` feed the sender's RTT estimate.
    """

    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int
    lsr: int
    dlsr: int

    SIZE = 24

    @classmethod
    def parse_from(cls, buf: bytes | memoryview, offset: int) -> ReceptionReport:
        """Read a block at ``offset``; the caller has checked 24 bytes are there."""
        ssrc, loss_word, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(buf, offset)
        lost = loss_word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 1 << 24
        return cls(ssrc, loss_word >> 24, lost, highest, jitter, lsr, dlsr)

    def serialize(self) -> bytes:
        """Pack the block; packets_lost saturates at the 24-bit limits as RFC 3550 A.3 asks."""
        lost = min(max(self.packets_lost, _PACKETS_LOST_MIN), _PACKETS_LOST_MAX) & 0xFFFFFF
        return _REPORT_BLOCK.pack(
            self.ssrc,
            ((self.fraction_lost & 0xFF) << 24) | lost,
            self.highest_sequence,
            self.jitter,
            self.lsr,
            self.dlsr,
        )


def _parse_report_blocks(body: memoryview, offset: int, count: int, what: str) -> list[ReceptionReport]:
    if offset + ReceptionReport.SIZE * count > len(body):
        raise MalformedPacket(f"RTCP {what} announces {count} report blocks but is truncated")
    return [ReceptionReport.parse_from(body, offset + ReceptionReport.SIZE * i) for i in range(count)]


@dataclass(slots=True)
class SenderReport:
    """RTCP SR (PT 200): a sender's NTP/RTP clock pairing plus report blocks.

    Profile-specific extensions after the report blocks are accepted and
    dropped; nobody in WebRTC sends them.
    """

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[ReceptionReport] = field(default_factory=list)

    @classmethod
    def parse_body(cls, body: memoryview, count: int) -> SenderReport:
        if len(body) < _SENDER_INFO.size:
            raise MalformedPacket("RTCP SR is shorter than its sender info")
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body, 0)
        reports = _parse_report_blocks(body, _SENDER_INFO.size, count, "SR")
        return cls(ssrc, ntp, rtp_ts, packets, octets, reports)

    def serialize(self) -> bytes:
        body = _SENDER_INFO.pack(
            self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count, self.octet_count
        ) + b"".join(r.serialize() for r in self.reports)
        return _pack_rtcp(SR, len(self.reports), body)


@dataclass(slots=True)
class ReceiverReport:
    """RTCP RR (PT 201): report blocks from a participant that is not sending."""

    ssrc: int
    reports: list[ReceptionReport] = field(default_factory=list)

    @classmethod
    def parse_body(cls, body: memoryview, count: int) -> ReceiverReport:
        if len(body) < 4:
            raise MalformedPacket("RTCP RR is shorter than its sender SSRC")
        ssrc = _U32.unpack_from(body, 0)[0]
        return cls(ssrc, _parse_report_blocks(body, 4, count, "RR"))

    def serialize(self) -> bytes:
        body = _U32.pack(self.ssrc) + b"".join(r.serialize() for r in self.reports)
        return _pack_rtcp(RR, len(self.reports), body)


@dataclass(slots=True)
class SdesChunk:
    """The SDES items of one source: (item type, value) pairs, CNAME being type 1."""

    ssrc: int
    items: list[tuple[int, bytes]] = field(default_factory=list)

    def serialize(self) -> bytes:
        """Pack the chunk with its END item, null-padded to a word as RFC 3550 6.5 asks."""
        out = bytearray(_U32.pack(self.ssrc))
        for item_type, value in self.items:
            if not 1 <= item_type <= 255:
                raise ValueError(f"SDES item type {item_type} is outside 1..255")
            if len(value) > 255:
                raise ValueError(f"SDES item of {len(value)} bytes, limit 255")
            out.append(item_type)
            out.append(len(value))
            out += value
        # At least one null octet ends the item list, then pad to the word.
        out += b"\x00" * (4 - len(out) % 4)
        return bytes(out)


@dataclass(slots=True)
class SourceDescription:
    """RTCP SDES (PT 202): CNAMEs that tie a participant's SSRCs together."""

    chunks: list[SdesChunk] = field(default_factory=list)

    @classmethod
    def parse_body(cls, body: memoryview, count: int) -> SourceDescription:
        chunks = []
        pos = 0
        end = len(body)
        for _ in range(count):
            if pos + 4 > end:
                raise MalformedPacket("RTCP SDES chunk is truncated")
            chunk = SdesChunk(_U32.unpack_from(body, pos)[0])
            pos += 4
            while True:
                if pos >= end:
                    raise MalformedPacket("RTCP SDES chunk has no END item")
                item_type = body[pos]
                if item_type == 0:
                    # END, then null octets up to the next word boundary.
                    pos += 1 + (-(pos + 1) % 4)
                    break
                if pos + 2 > end or pos + 2 + body[pos + 1] > end:
                    raise MalformedPacket("RTCP SDES item is truncated")
                value_end = pos + 2 + body[pos + 1]
                chunk.items.append((item_type, bytes(body[pos + 2 : value_end])))
                pos = value_end
            chunks.append(chunk)
        return cls(chunks)

    def serialize(self) -> bytes:
        return _pack_rtcp(SDES, len(self.chunks), b"".join(c.serialize() for c in self.chunks))


@dataclass(slots=True)
class Goodbye:
    """RTCP BYE (PT 203): these sources are leaving, optionally saying why."""

    ssrcs: list[int] = field(default_factory=list)
    reason: bytes = b""

    @classmethod
    def parse_body(cls, body: memoryview, count: int) -> Goodbye:
        pos = 4 * count
        if pos > len(body):
            raise MalformedPacket(f"RTCP BYE announces {count} sources but is truncated")
        ssrcs = list(struct.unpack_from(f"!{count}I", body, 0))
        reason = b""
        if pos < len(body):
            reason_end = pos + 1 + body[pos]
            if reason_end > len(body):
                raise MalformedPacket("RTCP BYE reason runs past the end of the packet")
            reason = bytes(body[pos + 1 : reason_end])
        return cls(ssrcs, reason)

    def serialize(self) -> bytes:
        body = bytearray(struct.pack(f"!{len(self.ssrcs)}I", *self.ssrcs))
        if self.reason:
            if len(self.reason) > 255:
                raise ValueError(f"BYE reason of {len(self.reason)} bytes, limit 255")
            body.append(len(self.reason))
            body += self.reason
            body += b"\x00" * (-len(body) % 4)
        return _pack_rtcp(BYE, len(self.ssrcs), bytes(body))


def _nack_pairs(lost: list[int]) -> list[tuple[int, int]]:
    """Group sequence numbers into (PID, BLP) pairs, as few as possible.

    The numbers live on a circle of 65536, so they are sorted starting just
    after the widest gap between neighbours: that puts 65534, 65535, 0, 1 in
    one run. Greedy packing of a sorted run into 17-wide windows is optimal.
    """
    seqs = sorted({s & 0xFFFF for s in lost})
    if not seqs:
        return []
    widest, start = -1, 0
    for i, s in enumerate(seqs):
        gap = (s - seqs[i - 1]) & 0xFFFF  # i == 0 compares with the last: the wrap gap
        if gap > widest:
            widest, start = gap, i
    ordered = seqs[start:] + seqs[:start]
    pairs = []
    pid, blp = ordered[0], 0
    for s in ordered[1:]:
        distance = (s - pid) & 0xFFFF
        if distance <= 16:
            blp |= 1 << (distance - 1)
        else:
            pairs.append((pid, blp))
            pid, blp = s, 0
    pairs.append((pid, blp))
    return pairs


@dataclass(slots=True)
class Nack:
    """Generic NACK (RFC 4585 6.2.1, PT 205 FMT 1): these media packets are lost.

    ``lost`` is the expanded list of sequence numbers; the PID+BLP wire
    encoding, including its wrap at 65535, is handled here so nobody else
    has to.
    """

    sender_ssrc: int
    media_ssrc: int
    lost: list[int] = field(default_factory=list)

    @classmethod
    def parse_body(cls, body: memoryview) -> Nack:
        fci_size = len(body) - 8
        if fci_size <= 0 or fci_size % 4:
            raise MalformedPacket(f"RTCP NACK has {max(fci_size, 0)} bytes of FCI, need a positive multiple of 4")
        sender, media = _TWO_U32.unpack_from(body, 0)
        lost: dict[int, None] = {}  # ordered set: overlapping pairs must not duplicate
        for pid, blp in _NACK_PAIR.iter_unpack(body[8:]):
            lost[pid] = None
            bit = 0
            while blp:
                if blp & 1:
                    lost[(pid + bit + 1) & 0xFFFF] = None
                blp >>= 1
                bit += 1
        return cls(sender, media, list(lost))

    def serialize(self) -> bytes:
        if not self.lost:
            raise ValueError("a NACK must name at least one lost packet")
        fci = b"".join(_NACK_PAIR.pack(pid, blp) for pid, blp in _nack_pairs(self.lost))
        return _pack_rtcp(RTPFB, RTPFB_NACK, _TWO_U32.pack(self.sender_ssrc, self.media_ssrc) + fci)


@dataclass(slots=True)
class TransportCC:
    """Transport-wide congestion control feedback (PT 205 FMT 15), FCI kept raw.

    Decoding the packet status chunks belongs to the bandwidth estimator; the
    parser only frames it. ``raw`` is the FCI without RTCP padding.
    """

    sender_ssrc: int
    media_ssrc: int
    raw: bytes = b""

    def serialize(self) -> bytes:
        body = _TWO_U32.pack(self.sender_ssrc, self.media_ssrc) + self.raw
        return _pack_rtcp(RTPFB, RTPFB_TRANSPORT_CC, body)


@dataclass(slots=True)
class PictureLossIndication:
    """PLI (RFC 4585 6.3.1, PT 206 FMT 1): the receiver needs a keyframe."""

    sender_ssrc: int
    media_ssrc: int

    def serialize(self) -> bytes:
        return _pack_rtcp(PSFB, PSFB_PLI, _TWO_U32.pack(self.sender_ssrc, self.media_ssrc))


@dataclass(slots=True)
class FullIntraRequest:
    """FIR (RFC 5104 4.3.1, PT 206 FMT 4): keyframe requests as (ssrc, seq_nr) entries.

    The sequence number lets the sender tell a new request from a repeat.
    """

    sender_ssrc: int
    media_ssrc: int
    entries: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def parse_body(cls, body: memoryview) -> FullIntraRequest:
        fci_size = len(body) - 8
        if fci_size <= 0 or fci_size % _FIR_ENTRY.size:
            raise MalformedPacket(f"RTCP FIR has {max(fci_size, 0)} bytes of FCI, need a positive multiple of 8")
        sender, media = _TWO_U32.unpack_from(body, 0)
        return cls(sender, media, list(_FIR_ENTRY.iter_unpack(body[8:])))

    def serialize(self) -> bytes:
        fci = b"".join(_FIR_ENTRY.pack(ssrc, seq & 0xFF) for ssrc, seq in self.entries)
        return _pack_rtcp(PSFB, PSFB_FIR, _TWO_U32.pack(self.sender_ssrc, self.media_ssrc) + fci)


@dataclass(slots=True)
class Remb:
    """REMB (draft-alvestrand-rmcat-remb, PT 206 FMT 15): the receiver's bitrate ceiling.

    ``bitrate`` is in bits per second. The wire form is an 18-bit mantissa
    with a 6-bit exponent, so serialize() rounds down to what fits.
    """

    sender_ssrc: int
    bitrate: int
    ssrcs: list[int] = field(default_factory=list)

    @classmethod
    def parse_body(cls, body: memoryview) -> Remb:
        if len(body) < 16:
            raise MalformedPacket("RTCP REMB is truncated")
        sender = _U32.unpack_from(body, 0)[0]
        _, count, exp_mantissa_hi, mantissa_lo = _REMB_HEAD.unpack_from(body, 8)
        if 16 + 4 * count > len(body):
            raise MalformedPacket(f"RTCP REMB announces {count} SSRCs but is truncated")
        mantissa = ((exp_mantissa_hi & 0x03) << 16) | mantissa_lo
        bitrate = mantissa << (exp_mantissa_hi >> 2)
        return cls(sender, bitrate, list(struct.unpack_from(f"!{count}I", body, 16)))

    def serialize(self) -> bytes:
        if self.bitrate < 0:
            raise ValueError(f"REMB bitrate {self.bitrate} is negative")
        if len(self.ssrcs) > 255:
            raise ValueError(f"REMB lists {len(self.ssrcs)} SSRCs, limit 255")
        mantissa, exponent = self.bitrate, 0
        while mantissa >= _REMB_MANTISSA_LIMIT:
            mantissa >>= 1
            exponent += 1
        if exponent > _REMB_MAX_EXPONENT:  # saturate rather than fail: it is a ceiling
            mantissa, exponent = _REMB_MANTISSA_LIMIT - 1, _REMB_MAX_EXPONENT
        body = (
            _TWO_U32.pack(self.sender_ssrc, 0)  # media SSRC is always 0 for REMB
            + _REMB_HEAD.pack(b"REMB", len(self.ssrcs), (exponent << 2) | (mantissa >> 16), mantissa & 0xFFFF)
            + struct.pack(f"!{len(self.ssrcs)}I", *self.ssrcs)
        )
        return _pack_rtcp(PSFB, PSFB_AFB, body)


@dataclass(slots=True)
class UnknownRtcp:
    """Any RTCP packet this module does not model (APP, XR, other feedback formats).

    Not an error: it is counted and passed over. ``fmt`` is the five-bit
    count/FMT field and ``raw`` the body after the 4-byte header, padding removed.
    """

    packet_type: int
    fmt: int
    raw: bytes = b""

    def serialize(self) -> bytes:
        return _pack_rtcp(self.packet_type, self.fmt, self.raw)


RtcpPacket = Union[
    SenderReport,
    ReceiverReport,
    SourceDescription,
    Goodbye,
    Nack,
    TransportCC,
    PictureLossIndication,
    FullIntraRequest,
    Remb,
    UnknownRtcp,
]
"""Anything parse_rtcp() can return."""


def _parse_one(packet_type: int, count: int, body: memoryview) -> RtcpPacket:
    if packet_type == SR:
        return SenderReport.parse_body(body, count)
    if packet_type == RR:
        return ReceiverReport.parse_body(body, count)
    if packet_type == SDES:
        return SourceDescription.parse_body(body, count)
    if packet_type == BYE:
        return Goodbye.parse_body(body, count)
    if packet_type == RTPFB or packet_type == PSFB:
        if len(body) < 8:
            raise MalformedPacket("RTCP feedback packet is shorter than its two SSRCs")
        if packet_type == RTPFB:
            if count == RTPFB_NACK:
                return Nack.parse_body(body)
            if count == RTPFB_TRANSPORT_CC:
                sender, media = _TWO_U32.unpack_from(body, 0)
                return TransportCC(sender, media, bytes(body[8:]))
        else:
            if count == PSFB_PLI:
                sender, media = _TWO_U32.unpack_from(body, 0)
                return PictureLossIndication(sender, media)
            if count == PSFB_FIR:
                return FullIntraRequest.parse_body(body)
            if count == PSFB_AFB and body[8:12] == b"REMB":
                return Remb.parse_body(body)
    return UnknownRtcp(packet_type, count, bytes(body))


def parse_rtcp(buf: bytes | memoryview) -> list[RtcpPacket]:
    """Parse a compound RTCP packet (or a single reduced-size one, RFC 5506).

    Raises MalformedPacket on an empty buffer, a version other than 2, a
    length field running past the buffer, invalid padding, or a body too
    short for what its header announces. One bad packet fails the whole
    compound: once framing is wrong, nothing after it can be located.
    """
    view = memoryview(buf)
    n = len(view)
    if n == 0:
        raise MalformedPacket("RTCP packet is empty")
    packets: list[RtcpPacket] = []
    pos = 0
    while pos < n:
        if pos + RTCP_HEADER_SIZE > n:
            raise MalformedPacket(f"RTCP header at offset {pos} is truncated")
        first, packet_type, words = _HEADER.unpack_from(view, pos)
        if first >> 6 != 2:
            raise MalformedPacket(f"RTCP version {first >> 6} at offset {pos}, expected 2")
        start = pos + RTCP_HEADER_SIZE
        end = start + 4 * words
        if end > n:
            raise MalformedPacket(f"RTCP length field at offset {pos} runs past the end of the buffer")
        body_end = end
        if first & 0x20:
            padding = view[end - 1] if end > start else 0
            if padding == 0 or padding > end - start:
                raise MalformedPacket(f"RTCP padding size {padding} at offset {pos} is invalid")
            body_end = end - padding
        packets.append(_parse_one(packet_type, first & 0x1F, view[start:body_end]))
        pos = end
    return packets


def serialize_compound(packets: list[RtcpPacket]) -> bytes:
    """Concatenate packets into one compound datagram (RFC 3550 6.1)."""
    return b"".join(p.serialize() for p in packets)
