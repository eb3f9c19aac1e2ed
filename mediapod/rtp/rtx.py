"""RTP retransmission payload format (RFC 4588): wrap and unwrap.

An RTX packet carries the original packet's payload behind a two-byte
original sequence number (OSN), on its own SSRC and payload type, with its
own sequence numbers, so retransmissions never disturb the primary stream's
loss statistics.
"""

from __future__ import annotations

import struct

from mediapod.rtp.errors import MalformedPacket
from mediapod.rtp.packet import RtpHeader

_FIXED = struct.Struct("!BBHII")
_OSN = struct.Struct("!H")


def wrap_rtx(packet: bytes, header: RtpHeader, rtx_payload_type: int, rtx_sequence_number: int, rtx_ssrc: int) -> bytes:
    """The RTX packet retransmitting ``packet`` (padding is not carried over)."""
    out = bytearray(packet[: header.header_size])
    out += _OSN.pack(header.sequence_number)
    out += memoryview(packet)[header.header_size : header.payload_end]
    _FIXED.pack_into(
        out, 0, packet[0] & ~0x20, (packet[1] & 0x80) | rtx_payload_type, rtx_sequence_number, header.timestamp, rtx_ssrc
    )
    return bytes(out)


def unwrap_rtx(packet: bytes, header: RtpHeader, payload_type: int, ssrc: int) -> bytes:
    """The original packet inside an RTX packet, on the primary SSRC and payload type."""
    if header.payload_end - header.header_size < 2:
        raise MalformedPacket("RTX packet has no original sequence number")
    (original_sequence_number,) = _OSN.unpack_from(packet, header.header_size)
    out = bytearray(packet[: header.header_size])
    out += memoryview(packet)[header.header_size + 2 : header.payload_end]
    _FIXED.pack_into(
        out, 0, packet[0] & ~0x20, (packet[1] & 0x80) | payload_type, original_sequence_number, header.timestamp, ssrc
    )
    return bytes(out)
