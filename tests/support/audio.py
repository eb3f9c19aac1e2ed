"""Audio test sources whose loudness a test controls while they play."""

from __future__ import annotations

import array
import math

from aiortc.mediastreams import AudioStreamTrack
from av import AudioFrame

TONE_HZ = 400


class ToneTrack(AudioStreamTrack):
    """A sine tone at ``amplitude`` (share of full scale, 0 is silence), changeable at any time.

    aiortc computes the RFC 6465 level of every frame it encodes and sends it
    in the ssrc-audio-level extension, so the amplitude is what the SFU reads:
    0.5 is about -9 dBov, 0.003 about -54 dBov.
    """

    def __init__(self, amplitude: float) -> None:
        super().__init__()
        self.amplitude = amplitude

    async def recv(self) -> AudioFrame:
        frame = await super().recv()  # paced 20 ms of silence, mono s16
        if self.amplitude:
            rate, peak = frame.sample_rate, self.amplitude * 32767
            tone = array.array(
                "h", (round(peak * math.sin(2 * math.pi * TONE_HZ * i / rate)) for i in range(frame.samples))
            )
            plane = frame.planes[0]
            plane.update(tone.tobytes().ljust(plane.buffer_size, b"\0"))
        return frame
