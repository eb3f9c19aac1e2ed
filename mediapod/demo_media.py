"""Synthetic media for ``sbctl room join --publish-demo``: moving colour bars and a tone.

They let a new user see and hear a room without a camera, a microphone or a
browser. The bars scroll so a frozen stream is obvious at a glance, and the
tone is loud enough that a receiver can tell it from silence or comfort noise.
Both are built from precomputed rows and tables (no numpy: it is not a
runtime dependency), cheap enough to run beside a pod on a laptop.
"""

from __future__ import annotations

import array
import math

from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from av import AudioFrame, VideoFrame

# SMPTE-style bars in BT.601 limited-range YUV: white, yellow, cyan, green,
# magenta, red, blue, black.
_BARS_YUV = (
    (235, 128, 128), (210, 16, 146), (170, 166, 16), (145, 54, 34),
    (106, 202, 222), (81, 90, 240), (41, 240, 110), (16, 128, 128),
)
SCROLL_PIXELS = 4  # per frame: at 30 fps a 640-pixel-wide pattern loops every ~5 s


class MovingBarsTrack(VideoStreamTrack):
    """Colour bars scrolling sideways, yuv420p at aiortc's pace (30 fps)."""

    def __init__(self, width: int = 640, height: int = 480) -> None:
        super().__init__()
        if width % 2 or height % 2:
            raise ValueError(f"yuv420p needs even dimensions, got {width}x{height}")
        self.width, self.height = width, height
        # One row per plane (Y at full width, U and V at half); a frame is a
        # rotation of each row repeated down the plane.
        self._rows = [
            bytes(_BARS_YUV[x * len(_BARS_YUV) // plane_width][component] for x in range(plane_width))
            for component, plane_width in ((0, width), (1, width // 2), (2, width // 2))
        ]
        self._frames = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(self.width, self.height, "yuv420p")
        shift = self._frames * SCROLL_PIXELS
        for index, (plane, row) in enumerate(zip(frame.planes, self._rows)):
            offset = (shift if index == 0 else shift // 2) % len(row)
            line = (row[-offset:] + row[:-offset] if offset else row).ljust(plane.line_size, b"\0")
            plane.update(line * plane.height)
        frame.pts, frame.time_base = pts, time_base
        self._frames += 1
        return frame


class SineTrack(AudioStreamTrack):
    """A steady sine at ``frequency`` Hz and ``amplitude`` (share of full scale), in aiortc's 20 ms mono frames."""

    def __init__(self, frequency: int = 440, amplitude: float = 0.5) -> None:
        super().__init__()
        self.frequency = frequency
        self.amplitude = amplitude
        self._table: array.array[int] | None = None  # one second of samples, at the rate aiortc hands us
        self._position = 0

    async def recv(self) -> AudioFrame:
        frame = await super().recv()  # paced silence: s16 mono, rate and pts already set
        rate, count = frame.sample_rate, frame.samples
        if self._table is None or len(self._table) != rate:
            # A whole number of cycles per second, so looping the table keeps the phase.
            peak = self.amplitude * 32767
            self._table = array.array("h", (round(peak * math.sin(2 * math.pi * self.frequency * i / rate)) for i in range(rate)))
        start = self._position % rate
        samples = (self._table[start:] + self._table[:start])[:count] if start + count > rate else self._table[start : start + count]
        self._position += count
        plane = frame.planes[0]
        plane.update(samples.tobytes().ljust(plane.buffer_size, b"\0"))
        return frame
