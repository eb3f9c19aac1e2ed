"""RTP packets (RFC 3550) with RFC 8285 header extensions.

Two ways in, for two kinds of caller:

* :class:`RtpHeader` and :func:`get_header_extension` are for the forwarding
  hot path. They read the few fields a forwarder needs straight out of the
  receive buffer with ``struct.unpack_from`` and never copy the payload.
* :class:`RtpPacket` is the full object model, for code that builds or
  rewrites packets (tests, padding probes, RTX) and can afford a copy.

Both raise :class:`~mediapod.rtp.errors.MalformedPacket` on bad input and
nothing else.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from mediapod.rtp.errors import MalformedPacket

RTP_HEADER_SIZE = 12
"""Size of the fixed RTP header, before CSRCs and the extension block."""

ONE_BYTE_PROFILE = 0xBEDE
"""RFC 8285 section 4.2 "defined by profile" value for one-byte elements."""

TWO_BYTE_PROFILE = 0x1000
"""RFC 8285 section 4.3 value for two-byte elements; the low 4 bits are appbits."""

_TWO_BYTE_PROFILE_MASK = 0xFFF0
_ONE_BYTE_STOP_ID = 15  # RFC 8285 4.2: id 15 is reserved; stop and ignore the rest

_FIXED = struct.Struct("!BBHII")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_EXT_HEADER = struct.Struct("!HH")


def _is_rfc8285_profile(profile: int) -> bool:
    return profile == ONE_BYTE_PROFILE or (profile & _TWO_BYTE_PROFILE_MASK) == TWO_BYTE_PROFILE


def is_rtcp(buf: bytes | memoryview) -> bool:
    """Tell RTCP from RTP on an rtcp-mux'ed port (RFC 5761 section 4).

    RTCP packet types 192..223 occupy the second byte where RTP keeps
    marker+payload type; RFC 5761 forbids RTP payload types 64..95 precisely so
    that this single byte comparison separates the two.
    """
    return len(buf) >= 2 and 192 <= buf[1] <= 223


@dataclass(slots=True)
class RtpHeader:
    """The fields the forwarding hot path reads, without copying the payload.

    ``header_size`` is where the payload starts (fixed header + CSRCs +
    extension block) and ``payload_end`` where it stops (before padding), so
    the payload is ``buf[header_size:payload_end]``, sliced by whoever needs
    it. Only lengths are validated: extension elements are not walked (use
    :func:`get_header_extension` for the one you need).
    """

    payload_type: int
    marker: bool
    sequence_number: int
    timestamp: int
    ssrc: int
    header_size: int
    payload_end: int

    @classmethod
    def parse(cls, buf: bytes | memoryview) -> RtpHeader:
        """Read the fixed header and the lengths of everything after it.

        Raises MalformedPacket when the buffer is too short for the header,
        the version is not 2, CSRCs or the extension block run past the end,
        or the padding count is zero or eats into the header.
        """
        n = len(buf)
        if n < RTP_HEADER_SIZE:
            raise MalformedPacket(f"RTP packet of {n} bytes is shorter than the 12 byte header")
        b0, b1, sequence_number, timestamp, ssrc = _FIXED.unpack_from(buf, 0)
        if b0 >> 6 != 2:
            raise MalformedPacket(f"RTP version {b0 >> 6}, expected 2")
        offset = RTP_HEADER_SIZE + 4 * (b0 & 0x0F)
        if b0 & 0x10:
            if offset + 4 > n:
                raise MalformedPacket("RTP extension header runs past the end of the packet")
            offset += 4 + 4 * _U16.unpack_from(buf, offset + 2)[0]
        if offset > n:
            raise MalformedPacket("RTP CSRC list or extension block runs past the end of the packet")
        payload_end = n
        if b0 & 0x20:
            padding = buf[n - 1]
            if padding == 0 or padding > n - offset:
                raise MalformedPacket(f"RTP padding size {padding} is invalid")
            payload_end = n - padding
        return cls(b1 & 0x7F, bool(b1 & 0x80), sequence_number, timestamp, ssrc, offset, payload_end)


def _locate_extension_block(buf: bytes | memoryview) -> tuple[int, int, int] | None:
    """Return (profile, start, end) of the extension block, or None if X is unset."""
    n = len(buf)
    if n < RTP_HEADER_SIZE:
        raise MalformedPacket(f"RTP packet of {n} bytes is shorter than the 12 byte header")
    b0 = buf[0]
    if b0 >> 6 != 2:
        raise MalformedPacket(f"RTP version {b0 >> 6}, expected 2")
    if not b0 & 0x10:
        return None
    offset = RTP_HEADER_SIZE + 4 * (b0 & 0x0F)
    if offset + 4 > n:
        raise MalformedPacket("RTP extension header runs past the end of the packet")
    profile, words = _EXT_HEADER.unpack_from(buf, offset)
    start = offset + 4
    end = start + 4 * words
    if end > n:
        raise MalformedPacket("RTP extension block runs past the end of the packet")
    return profile, start, end


def _walk_elements(
    buf: bytes | memoryview, profile: int, pos: int, end: int
) -> Iterator[tuple[int, int, int]]:
    """Yield ``(id, value_start, value_end)`` for each RFC 8285 element of a block.

    The one walk every reader of header extensions goes through, so the
    look-up on the hot path and the full parse cannot disagree on a packet.
    Stops where RFC 8285 section 4.2, libwebrtc (``RtpPacket::ParseBuffer``)
    and pion agree that the rest of a one-byte block must be ignored: at id 15
    (reserved), and at id 0 with a non-zero length, because id 0 is padding
    only as a single 0x00 byte. Elements before the stop are kept, and so is
    the packet. In the two-byte form a 0x00 byte is padding and nothing
    stops the walk. An element that runs past the block raises
    MalformedPacket, as in pion (libwebrtc drops the rest of the block
    silently): a length that lies about the block is a broken sender.
    Nothing is yielded for a profile that is not RFC 8285.
    """
    if profile == ONE_BYTE_PROFILE:
        while pos < end:
            b = buf[pos]
            if b == 0:
                pos += 1
                continue
            element_id = b >> 4
            if element_id == 0 or element_id == _ONE_BYTE_STOP_ID:
                return
            value_start = pos + 1
            pos = value_start + (b & 0x0F) + 1
            if pos > end:
                raise MalformedPacket("RTP one-byte extension element runs past the extension block")
            yield element_id, value_start, pos
    elif (profile & _TWO_BYTE_PROFILE_MASK) == TWO_BYTE_PROFILE:
        while pos < end:
            element_id = buf[pos]
            if element_id == 0:
                pos += 1
                continue
            if pos + 2 > end:
                raise MalformedPacket("RTP two-byte extension element header is truncated")
            value_start = pos + 2
            pos = value_start + buf[pos + 1]
            if pos > end:
                raise MalformedPacket("RTP two-byte extension element runs past the extension block")
            yield element_id, value_start, pos


def get_header_extension(buf: bytes | memoryview, header_ext_id: int) -> bytes | None:
    """Find one RFC 8285 element by id without building the whole dict.

    The receive path looks up mid, rid and audio level on every packet; walking
    the block once and stopping at the match is cheaper than RtpPacket.parse.
    Returns None when the packet has no extension block, uses a non-RFC 8285
    profile, or has no element with that id before the walk stops. The block
    is validated only as far as the walk goes, so a truncated element after
    the match goes unnoticed; a truncated element before it raises
    MalformedPacket.
    """
    located = _locate_extension_block(buf)
    if located is None:
        return None
    profile, start, end = located
    for element_id, value_start, value_end in _walk_elements(buf, profile, start, end):
        if element_id == header_ext_id:
            return bytes(buf[value_start:value_end])
    return None


def _parse_elements(buf: bytes | memoryview, profile: int, start: int, end: int) -> dict[int, bytes]:
    """Every element of an RFC 8285 block by id; the first occurrence wins, as in get_header_extension."""
    extensions: dict[int, bytes] = {}
    for element_id, value_start, value_end in _walk_elements(buf, profile, start, end):
        if element_id not in extensions:
            extensions[element_id] = bytes(buf[value_start:value_end])
    return extensions


def _pad_to_word(data: bytearray) -> None:
    data.extend(b"\x00" * (-len(data) % 4))


def _serialize_rfc8285(extensions: dict[int, bytes], two_byte_appbits: int) -> tuple[int, bytearray]:
    """Pick the one-byte form when every element fits it, else the two-byte form.

    The one-byte form is the one every WebRTC endpoint understands; the
    two-byte form is only needed (and only legal without extmap-allow-mixed
    negotiation on the receiver's side) for ids above 14, empty values or
    values longer than 16 bytes.
    """
    one_byte = all(1 <= i <= 14 and 1 <= len(v) <= 16 for i, v in extensions.items())
    block = bytearray()
    if one_byte:
        for element_id, value in extensions.items():
            block.append((element_id << 4) | (len(value) - 1))
            block += value
        profile = ONE_BYTE_PROFILE
    else:
        for element_id, value in extensions.items():
            if not 1 <= element_id <= 255:
                raise ValueError(f"RTP header extension id {element_id} is outside 1..255")
            if len(value) > 255:
                raise ValueError(f"RTP header extension {element_id} value is {len(value)} bytes, limit 255")
            block.append(element_id)
            block.append(len(value))
            block += value
        profile = TWO_BYTE_PROFILE | (two_byte_appbits & 0x0F)
    _pad_to_word(block)
    return profile, block


@dataclass(slots=True)
class RtpPacket:
    """A whole RTP packet as an editable object; parse() copies the payload.

    ``extensions`` holds RFC 8285 elements by id for the one-byte (0xBEDE)
    and two-byte (0x100X) profiles; a packet with any other profile keeps its
    extension block verbatim in ``extension_raw``. ``padding_size`` counts all
    padding bytes including the final count byte, 0 meaning no padding.
    """

    version: int = 2
    padding_size: int = 0
    marker: bool = False
    payload_type: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    csrcs: list[int] = field(default_factory=list)
    extension_profile: int | None = None
    extensions: dict[int, bytes] = field(default_factory=dict)
    extension_raw: bytes = b""
    payload: bytes = b""

    @classmethod
    def parse(cls, buf: bytes | memoryview) -> RtpPacket:
        """Parse and validate every part of the packet, extension elements included.

        One-byte elements: 0x00 bytes are padding and skipped; id 15, or id 0
        with a non-zero length, stops the walk and the elements before it are
        kept. Two-byte elements: 0x00 bytes are padding, a zero length is
        legal. When an id repeats, the first element wins.
        """
        header = RtpHeader.parse(buf)
        b0 = buf[0]
        cc = b0 & 0x0F
        csrcs = list(struct.unpack_from(f"!{cc}I", buf, RTP_HEADER_SIZE)) if cc else []
        extension_profile: int | None = None
        extensions: dict[int, bytes] = {}
        extension_raw = b""
        if b0 & 0x10:
            offset = RTP_HEADER_SIZE + 4 * cc
            extension_profile = _U16.unpack_from(buf, offset)[0]
            start, end = offset + 4, header.header_size
            if _is_rfc8285_profile(extension_profile):
                extensions = _parse_elements(buf, extension_profile, start, end)
            else:
                extension_raw = bytes(buf[start:end])
        return cls(
            version=2,
            padding_size=len(buf) - header.payload_end,
            marker=header.marker,
            payload_type=header.payload_type,
            sequence_number=header.sequence_number,
            timestamp=header.timestamp,
            ssrc=header.ssrc,
            csrcs=csrcs,
            extension_profile=extension_profile,
            extensions=extensions,
            extension_raw=extension_raw,
            payload=bytes(buf[header.header_size : header.payload_end]),
        )

    def serialize(self) -> bytes:
        """Write the packet to bytes.

        An extension block is written when ``extensions`` is non-empty (in
        one-byte form if every id is 1..14 and every value 1..16 bytes, else
        two-byte form), or when ``extension_profile`` is a non-RFC 8285
        profile (``extension_raw`` verbatim, zero-padded to a word). Padding is
        zero bytes ending in the count byte, so it is deterministic.
        """
        if len(self.csrcs) > 15:
            raise ValueError(f"RTP packet has {len(self.csrcs)} CSRCs, limit 15")
        if not 0 <= self.padding_size <= 255:
            raise ValueError(f"RTP padding size {self.padding_size} is outside 0..255")

        ext_header = b""
        ext_block: bytes | bytearray = b""
        profile = self.extension_profile
        if self.extensions:
            appbits = profile & 0x0F if profile is not None and _is_rfc8285_profile(profile) else 0
            profile, ext_block = _serialize_rfc8285(self.extensions, appbits)
            ext_header = _EXT_HEADER.pack(profile, len(ext_block) // 4)
        elif profile is not None and not _is_rfc8285_profile(profile):
            ext_block = bytearray(self.extension_raw)
            _pad_to_word(ext_block)
            ext_header = _EXT_HEADER.pack(profile, len(ext_block) // 4)

        b0 = (
            (self.version << 6)
            | (0x20 if self.padding_size else 0)
            | (0x10 if ext_header else 0)
            | len(self.csrcs)
        )
        b1 = (0x80 if self.marker else 0) | self.payload_type
        parts = [_FIXED.pack(b0, b1, self.sequence_number, self.timestamp, self.ssrc)]
        parts.extend(_U32.pack(csrc) for csrc in self.csrcs)
        parts.append(ext_header)
        parts.append(bytes(ext_block))
        parts.append(self.payload)
        if self.padding_size:
            parts.append(b"\x00" * (self.padding_size - 1) + bytes((self.padding_size,)))
        return b"".join(parts)


def extend_sequence_number(highest: int, sequence_number: int) -> int:
    """The extended (past 16 bits) value of sequence_number nearest to ``highest``.

    Rings indexed by extended numbers keep advancing across the 65535 -> 0
    wrap; late packets just before a wrap map below ``highest``.
    """
    extended = (highest & ~0xFFFF) | sequence_number
    if extended > highest + 0x8000:
        extended -= 0x10000
    elif extended < highest - 0x8000:
        extended += 0x10000
    return extended
