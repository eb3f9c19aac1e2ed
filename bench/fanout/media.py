"""Pre-built VP8 + Opus payloads, encoded once, so the publisher spends nothing per packet on codecs.

One second of VP8 (30 frames of a moving grainy gradient, which holds
about 500 kbit/s in 2-3 packets a frame, a key frame first) and one second
of Opus (a tone) are looped. Every packet carries, at the end of its
payload, a magic word and the wall-clock nanosecond it was sent: SFUs
forward payloads untouched past the VP8 descriptor, so the sampled
subscribers read it back and know the added latency.
"""

from __future__ import annotations

import fractions
import math
import random
import struct
from dataclasses import dataclass

import av
import numpy as np
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder

FPS = 30
AUDIO_PTIME = 0.02
STAMP_MAGIC = b"SBts"
STAMP = struct.Struct("!4sQ")


@dataclass(frozen=True)
class VideoFrame:
    """One frame's RTP payloads and where its VP8 picture id sits (rewritten per loop so it keeps counting)."""

    payloads: tuple[bytes, ...]
    picture_id_offset: int | None


@dataclass(frozen=True)
class MediaLoop:
    """What one publisher sends per room, every second."""

    video: tuple[VideoFrame, ...]
    audio: tuple[bytes, ...]

    @property
    def packets_per_second(self) -> float:
        return sum(len(f.payloads) for f in self.video) * FPS / len(self.video) + 1 / AUDIO_PTIME


def _picture_id_offset(payload: bytes) -> int | None:
    """Offset of a 15-bit picture id in a VP8 payload descriptor (RFC 7741 4.2), if it has one."""
    if not payload[0] & 0x80 or not payload[1] & 0x80:
        return None
    return 2 if payload[2] & 0x80 else None


def _gradient(width: int, height: int, index: int, rng: random.Random) -> av.VideoFrame:
    """A diagonal gradient moving 4 pixels a frame with light grain: compressible, but never free."""
    ramp = np.add.outer(np.arange(height), np.arange(width)) * 3 + index * 4
    grain = np.frombuffer(rng.randbytes(width * height), dtype=np.uint8).reshape(height, width).astype(np.int16) % 21 - 10
    luma = (ramp % 256 + grain).clip(0, 255).astype(np.uint8)
    chroma = np.full((height // 2, width), 128, np.uint8)
    return av.VideoFrame.from_ndarray(np.concatenate([luma, chroma]), format="yuv420p")


def build(width: int = 320, height: int = 240, video_bitrate: int = 500_000) -> MediaLoop:
    rng = random.Random(14)
    encoder = Vp8Encoder()
    encoder.target_bitrate = video_bitrate
    frames = []
    for index in range(FPS):
        frame = _gradient(width, height, index, rng)
        frame.pts, frame.time_base = index * 3000, fractions.Fraction(1, 90_000)
        payloads, _ = encoder.encode(frame, force_keyframe=index == 0)
        frames.append(VideoFrame(tuple(payloads), _picture_id_offset(payloads[0])))
    opus = OpusEncoder()
    opus.codec.bit_rate = 32_000  # what browsers send for speech
    samples = int(48_000 * AUDIO_PTIME)
    audio = []
    for index in range(int(1 / AUDIO_PTIME)):
        t = (np.arange(samples) + index * samples) / 48_000
        tone = (8000 * np.sin(2 * math.pi * 440 * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = 48_000, index * samples, fractions.Fraction(1, 48_000)
        payloads, _ = opus.encode(frame)
        audio.extend(payloads)
    return MediaLoop(tuple(frames), tuple(audio))


def read_stamp(payload_tail: bytes) -> int | None:
    """The send time (ns, CLOCK_REALTIME) a publisher appended, or None if the packet has none (padding, probes)."""
    if len(payload_tail) < STAMP.size:
        return None
    magic, sent = STAMP.unpack_from(payload_tail, len(payload_tail) - STAMP.size)
    return sent if magic == STAMP_MAGIC else None
