"""Codec-correct blank frames, sent when a track is muted so decoders end clean.

A subscriber whose stream just stops keeps showing a frozen, possibly
half-decoded picture (or a cut-off sound). A small black keyframe (video) or
a few Opus silence frames (audio) end it on a clean frame instead.

The video frames were produced once with PyAV (libvpx, and libx264 baseline
profile) from a 16x16 black YUV frame; tests/unit/sfu/test_blank.py decodes
them to prove they are valid.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# 16x16 black VP8 key frame.
VP8_KEYFRAME_16X16 = bytes.fromhex("1002009d012a100010000047088585888584880202000619680000")
# 16x16 black H.264 constrained-baseline IDR access unit: SPS, PPS, IDR slice.
H264_SPS = bytes.fromhex("6742c00ad91e84000003000400000300f23c489920")
H264_PPS = bytes.fromhex("68cb83cb20")
H264_IDR_16X16 = bytes.fromhex("65888404bc98a00038a380")
# A 20 ms Opus frame of silence (TOC 0xf8: CELT fullband 20 ms, mono), as WebRTC uses for DTX.
OPUS_SILENCE = bytes([0xF8, 0xFF, 0xFE])


def _stap_a(*nal_units: bytes) -> bytes:
    """RFC 6184 STAP-A aggregating nal_units in one RTP payload."""
    nri = max(nal[0] & 0x60 for nal in nal_units)
    return bytes([nri | 24]) + b"".join(struct.pack("!H", len(nal)) + nal for nal in nal_units)


@dataclass(frozen=True, slots=True)
class BlankFrames:
    """RTP payloads to send on mute, one packet per frame, and the clock ticks between frames."""

    payloads: tuple[bytes, ...]
    frame_ticks: int


# Several video frames, because a receiver's jitter buffer often releases a
# frame only when the next one starts: the last blank stays buffered, the
# ones before it reach the decoder.
_VIDEO_BLANKS = 3

_BLANK_FRAMES: dict[str, BlankFrames] = {
    # VP8 payload descriptor: S=1, partition 0, then the key frame.
    "video/vp8": BlankFrames((bytes([0x10]) + VP8_KEYFRAME_16X16,) * _VIDEO_BLANKS, 3000),
    "video/h264": BlankFrames((_stap_a(H264_SPS, H264_PPS, H264_IDR_16X16),) * _VIDEO_BLANKS, 3000),
    # 60 ms of silence: enough for a jitter buffer to play out to quiet.
    "audio/opus": BlankFrames((OPUS_SILENCE,) * 3, 960),
}


def blank_frames_for(mime_type: str) -> BlankFrames | None:
    return _BLANK_FRAMES.get(mime_type.lower())
