"""What the forwarding core knows about one received RTP packet, worked out once.

A published packet reaches every subscriber's DownTrack. Whether it starts a
keyframe, which temporal layer it belongs to and where the VP8 picture id
sits are facts of the packet, not of the subscriber, so the TrackReceiver
reads them once into an :class:`ExtPacket` (LiveKit's name) and every
DownTrack reads the answers instead of parsing the payload again.

Malformed payloads never raise here: their facts default to the safe side
(not a keyframe, temporal layer 0, no VP8 fields to rewrite), so a broken
packet is forwarded or dropped like any other, never mistaken for a switch
point.
"""

from __future__ import annotations

from collections.abc import Callable

from mediapod.rtp.codecs import KEYFRAME_DETECTORS, vp8_facts
from mediapod.rtp.packet import RtpHeader


class ExtPacket:
    """One received RTP packet with the facts every DownTrack needs.

    ``picture_id_at`` and ``tl0picidx_at`` are byte offsets from the start
    of the RTP payload (``header.header_size``), -1 when the field is absent;
    ``picture_id_len`` is 1 (7-bit id) or 2 (15-bit id), 0 when absent.
    ``temporal`` is the VP8 TID, 0 when the packet does not say.
    """

    __slots__ = (
        "arrival",
        "extended_sequence_number",
        "header",
        "keyframe",
        "layer",
        "packet",
        "picture_id_at",
        "picture_id_len",
        "temporal",
        "tl0picidx_at",
    )

    def __init__(
        self,
        packet: bytes,
        header: RtpHeader,
        arrival: float,
        layer: int,
        extended_sequence_number: int,
        keyframe: bool = False,
        temporal: int = 0,
        picture_id_at: int = -1,
        picture_id_len: int = 0,
        tl0picidx_at: int = -1,
    ) -> None:
        self.packet = packet
        self.header = header
        self.arrival = arrival
        self.layer = layer
        self.extended_sequence_number = extended_sequence_number
        self.keyframe = keyframe
        self.temporal = temporal
        self.picture_id_at = picture_id_at
        self.picture_id_len = picture_id_len
        self.tl0picidx_at = tl0picidx_at


Describe = Callable[[bytes, RtpHeader, float, int, int], ExtPacket]
"""Builds the ExtPacket of (packet, header, arrival, spatial layer, extended sequence number)."""


def describe_vp8(packet: bytes, header: RtpHeader, arrival: float, layer: int, extended: int) -> ExtPacket:
    """An ExtPacket with the VP8 payload descriptor's facts (RFC 7741 4.2)."""
    keyframe, temporal, pid_at, pid_len, tl0_at = vp8_facts(packet, header.header_size, header.payload_end)
    return ExtPacket(packet, header, arrival, layer, extended, keyframe, temporal, pid_at, pid_len, tl0_at)


def _describe_with(is_keyframe: Callable[[bytes], bool]) -> Describe:
    def describe(packet: bytes, header: RtpHeader, arrival: float, layer: int, extended: int) -> ExtPacket:
        return ExtPacket(packet, header, arrival, layer, extended, is_keyframe(packet[header.header_size : header.payload_end]))

    return describe


def _describe_plain(packet: bytes, header: RtpHeader, arrival: float, layer: int, extended: int) -> ExtPacket:
    return ExtPacket(packet, header, arrival, layer, extended)


def describer_for(mime_type: str) -> Describe:
    """How packets of this codec are described: VP8 in full, other video by its keyframe detector, the rest plainly."""
    mime = mime_type.lower()
    if mime == "video/vp8":
        return describe_vp8
    is_keyframe = KEYFRAME_DETECTORS.get(mime)
    return _describe_plain if is_keyframe is None else _describe_with(is_keyframe)
