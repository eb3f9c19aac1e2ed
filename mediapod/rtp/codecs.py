"""Codec payload descriptors: just enough of each payload to forward it well.

An SFU never decodes media, but it must know where frames and keyframes
start (to switch layers and answer PLI cleanly) and which temporal layer a
packet belongs to. Everything here reads a few bytes at the front of the RTP
payload. The ``*_is_keyframe`` functions run on every packet, so they return
False on malformed input instead of raising; the richer parsers raise
:class:`~mediapod.rtp.errors.MalformedPacket`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from mediapod.rtp.errors import MalformedPacket

# VP8 payload descriptor (RFC 7741 4.2), first byte |X|R|N|S|R| PID |
_VP8_X = 0x80
_VP8_S = 0x10
_VP8_PID = 0x07
# extension byte |I|L|T|K| RSV |
_VP8_I = 0x80
_VP8_L = 0x40
_VP8_T = 0x20
_VP8_K = 0x10
_VP8_M = 0x80  # 15-bit picture id
# VP8 payload header (RFC 7741 4.3): P, the inverse key frame flag, is bit 0.
_VP8_INTERFRAME = 0x01

# H.264 NAL unit types (RFC 6184 5.2 and H.264 table 7-1)
H264_NAL_IDR = 5
H264_NAL_SPS = 7
H264_NAL_STAP_A = 24
H264_NAL_FU_A = 28
_H264_KEYFRAME_TYPES = frozenset((H264_NAL_IDR, H264_NAL_SPS))
_H264_FU_START = 0x80


@dataclass(slots=True)
class Vp8Descriptor:
    """The VP8 payload descriptor (RFC 7741 4.2) of one RTP packet.

    ``header_size`` is where the VP8 data starts in the payload, for
    forwarders that rewrite picture id or TL0PICIDX in place.
    ``picture_id_len`` is the size of the picture id field in bytes: 0 when
    absent, 1 for a 7-bit id, 2 for a 15-bit id. ``is_keyframe`` is only
    meaningful on the first packet of a frame (S=1, partition 0), which is the
    only packet carrying the VP8 payload header.
    """

    header_size: int
    start_of_partition: bool
    partition_id: int
    picture_id: int | None
    picture_id_len: int
    tl0_pic_idx: int | None
    tid: int | None
    layer_sync: bool
    key_idx: int | None
    is_keyframe: bool


def parse_vp8(payload: bytes | memoryview) -> Vp8Descriptor:
    """Parse the VP8 payload descriptor; MalformedPacket if it is truncated.

    A descriptor with no VP8 data after it is also malformed: every VP8 RTP
    packet carries at least one byte of the frame.
    """
    n = len(payload)
    if n < 1:
        raise MalformedPacket("VP8 payload is empty")
    b0 = payload[0]
    pos = 1
    picture_id: int | None = None
    picture_id_len = 0
    tl0_pic_idx: int | None = None
    tid: int | None = None
    layer_sync = False
    key_idx: int | None = None
    if b0 & _VP8_X:
        if n < 2:
            raise MalformedPacket("VP8 descriptor extension byte is missing")
        x = payload[1]
        pos = 2
        if x & _VP8_I:
            if pos >= n:
                raise MalformedPacket("VP8 picture id is truncated")
            if payload[pos] & _VP8_M:
                if pos + 2 > n:
                    raise MalformedPacket("VP8 15-bit picture id is truncated")
                picture_id = ((payload[pos] & 0x7F) << 8) | payload[pos + 1]
                picture_id_len = 2
            else:
                picture_id = payload[pos]
                picture_id_len = 1
            pos += picture_id_len
        if x & _VP8_L:
            if pos >= n:
                raise MalformedPacket("VP8 TL0PICIDX is truncated")
            tl0_pic_idx = payload[pos]
            pos += 1
        if x & (_VP8_T | _VP8_K):
            if pos >= n:
                raise MalformedPacket("VP8 TID/KEYIDX byte is truncated")
            b = payload[pos]
            if x & _VP8_T:
                tid = b >> 6
                layer_sync = bool(b & 0x20)
            if x & _VP8_K:
                key_idx = b & 0x1F
            pos += 1
    if pos >= n:
        raise MalformedPacket("VP8 packet has a descriptor but no VP8 data")
    start = bool(b0 & _VP8_S)
    partition_id = b0 & _VP8_PID
    is_keyframe = start and partition_id == 0 and not payload[pos] & _VP8_INTERFRAME
    return Vp8Descriptor(
        header_size=pos,
        start_of_partition=start,
        partition_id=partition_id,
        picture_id=picture_id,
        picture_id_len=picture_id_len,
        tl0_pic_idx=tl0_pic_idx,
        tid=tid,
        layer_sync=layer_sync,
        key_idx=key_idx,
        is_keyframe=is_keyframe,
    )


def vp8_is_keyframe(payload: bytes | memoryview) -> bool:
    """True if this packet starts a VP8 key frame; False on anything malformed.

    The per-packet twin of parse_vp8(...).is_keyframe: it only skips over the
    optional descriptor fields instead of decoding them.
    """
    n = len(payload)
    if n < 2:  # at least the descriptor byte and one byte of VP8 data
        return False
    b0 = payload[0]
    if (b0 & (_VP8_S | _VP8_PID)) != _VP8_S:
        return False
    pos = 1
    if b0 & _VP8_X:
        x = payload[1]
        pos = 2
        if x & _VP8_I:
            if pos >= n:
                return False
            pos += 2 if payload[pos] & _VP8_M else 1
        if x & _VP8_L:
            pos += 1
        if x & (_VP8_T | _VP8_K):
            pos += 1
    return pos < n and not payload[pos] & _VP8_INTERFRAME


_NO_VP8_FACTS = (False, 0, -1, 0, -1)


def vp8_facts(buf: bytes, start: int, end: int) -> tuple[bool, int, int, int, int]:
    """What a forwarder needs of the VP8 payload ``buf[start:end]``, read in place.

    (keyframe, TID, picture id offset, picture id length, TL0PICIDX offset):
    offsets from ``start``, -1 (length 0) when the field is absent, TID 0
    when absent. The per-packet twin of parse_vp8 for the receiver's hot
    path: no slice, no object, and on anything parse_vp8 would reject, the
    safe answer (not a keyframe, TID 0, nothing to rewrite) instead of an
    exception.
    """
    n = end - start
    if n < 2:  # at least the descriptor byte and one byte of VP8 data
        return _NO_VP8_FACTS
    b0 = buf[start]
    starts_frame = (b0 & (_VP8_S | _VP8_PID)) == _VP8_S
    if not b0 & _VP8_X:
        return starts_frame and not buf[start + 1] & _VP8_INTERFRAME, 0, -1, 0, -1
    x = buf[start + 1]
    pos = 2
    pid_at, pid_len, tl0_at, tid = -1, 0, -1, 0
    if x & _VP8_I:
        if pos >= n:
            return _NO_VP8_FACTS
        pid_at, pid_len = pos, 2 if buf[start + pos] & _VP8_M else 1
        pos += pid_len
    if x & _VP8_L:
        if pos >= n:
            return _NO_VP8_FACTS
        tl0_at = pos
        pos += 1
    if x & (_VP8_T | _VP8_K):
        if pos >= n:
            return _NO_VP8_FACTS
        if x & _VP8_T:
            tid = buf[start + pos] >> 6
        pos += 1
    if pos >= n:
        return _NO_VP8_FACTS
    return starts_frame and not buf[start + pos] & _VP8_INTERFRAME, tid, pid_at, pid_len, tl0_at


def h264_is_keyframe(payload: bytes | memoryview) -> bool:
    """True if this packet starts an H.264 key frame (RFC 6184); False on anything malformed.

    A key frame is an IDR slice or an SPS (encoders send SPS+PPS right before
    the IDR, so the SPS is the first packet of the key frame). Seen as a
    single NAL unit, inside a STAP-A, or as the start fragment of an FU-A.
    Other packetizations (STAP-B, MTAP, FU-B) are not used by WebRTC's
    packetization-mode 0/1 and count as not-a-keyframe.
    """
    n = len(payload)
    if n < 1:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type == H264_NAL_FU_A:
        if n < 3:  # FU indicator, FU header, at least one byte of the fragment
            return False
        fu_header = payload[1]
        return bool(fu_header & _H264_FU_START) and (fu_header & 0x1F) in _H264_KEYFRAME_TYPES
    if nal_type == H264_NAL_STAP_A:
        # Walk the whole aggregate so a broken one is rejected, not half trusted.
        found = False
        pos = 1
        while pos < n:
            if pos + 2 > n:
                return False
            size = (payload[pos] << 8) | payload[pos + 1]
            pos += 2
            if size == 0 or pos + size > n:
                return False
            if (payload[pos] & 0x1F) in _H264_KEYFRAME_TYPES:
                found = True
            pos += size
        return found
    return nal_type in _H264_KEYFRAME_TYPES


def h264_nal_types(payload: bytes | memoryview) -> list[int]:
    """The NAL unit types a packet carries, for tests and debugging.

    A single NAL unit gives its type; a STAP-A the types of the units inside;
    an FU-A the type of the fragmented unit (on every fragment). Any other
    packetization type is returned as is. Raises MalformedPacket when the
    payload is empty or a STAP-A/FU-A is truncated.
    """
    n = len(payload)
    if n < 1:
        raise MalformedPacket("H.264 payload is empty")
    nal_type = payload[0] & 0x1F
    if nal_type == H264_NAL_FU_A:
        if n < 2:
            raise MalformedPacket("H.264 FU-A is missing its FU header")
        return [payload[1] & 0x1F]
    if nal_type == H264_NAL_STAP_A:
        types = []
        pos = 1
        while pos < n:
            if pos + 2 > n:
                raise MalformedPacket("H.264 STAP-A NALU size is truncated")
            size = (payload[pos] << 8) | payload[pos + 1]
            pos += 2
            if size == 0 or pos + size > n:
                raise MalformedPacket(f"H.264 STAP-A NALU of size {size} does not fit the packet")
            types.append(payload[pos] & 0x1F)
            pos += size
        if not types:
            raise MalformedPacket("H.264 STAP-A carries no NAL units")
        return types
    return [nal_type]


KEYFRAME_DETECTORS: dict[str, Callable[[bytes], bool]] = {
    "video/vp8": vp8_is_keyframe,
    "video/h264": h264_is_keyframe,
}
"""Per-packet keyframe detectors keyed by lowercase MIME type, as negotiated in SDP."""
