"""Observing real aiortc peers: frames they decode and RTP headers they receive."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import av
from aiortc import RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError, VideoStreamTrack
from aiortc.rtp import RtpPacket

from mediapod.client import RemoteTrack
from mediapod.rtp.codecs import parse_vp8, vp8_is_keyframe


@dataclass
class RtpProbe:
    """Records (ssrc, sequence number) of every RTP packet an aiortc receiver gets.

    It wraps the receiver's packet handler, so what it sees is exactly what
    the subscriber's WebRTC stack received after SRTP, before jitter buffering.
    Packets with a payload type in ``rtx_payload_types`` are retransmissions
    (RFC 4588): their original sequence number goes to ``recovered``.
    """

    rtx_payload_types: set[int] = field(default_factory=set)
    sequence_numbers: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    recovered: list[int] = field(default_factory=list)
    # (monotonic arrival time, payload head) of every primary packet, for keyframe checks.
    arrivals: list[tuple[float, bytes]] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)

    def attach(self, receiver: RTCRtpReceiver) -> None:
        original = receiver._handle_rtp_packet

        async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
            if packet.payload_type in self.rtx_payload_types and len(packet.payload) >= 2:
                self.recovered.append(int.from_bytes(packet.payload[:2], "big"))
            else:
                self.sequence_numbers[packet.ssrc].append(packet.sequence_number)
                self.arrivals.append((time.monotonic(), packet.payload[:16]))
                self.timestamps.append(packet.timestamp)
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = handle  # type: ignore[method-assign]

    def received_fraction(self) -> float:
        """Share of the primary stream's sequence range received, retransmissions included."""
        [numbers] = self.sequence_numbers.values()
        first = numbers[0]
        offsets = {(n - first) & 0xFFFF for n in numbers} | {(n - first) & 0xFFFF for n in self.recovered}
        offsets = {o for o in offsets if o < 0x8000}
        return len(offsets) / (max(offsets) + 1)

    def gaps(self) -> int:
        """Missing sequence numbers summed over all SSRCs (wrap-aware)."""
        missing = 0
        for numbers in self.sequence_numbers.values():
            for previous, current in zip(numbers, numbers[1:]):
                missing += ((current - previous) & 0xFFFF) - 1
        return missing


async def count_frames(tracks: list[RemoteTrack], minimum: dict[str, int], timeout: float) -> dict[str, int]:
    """Decode frames from each remote track until every kind reaches its minimum or time runs out."""
    counts: dict[str, int] = defaultdict(int)
    deadline = time.monotonic() + timeout

    async def pull(remote: RemoteTrack) -> None:
        while counts[remote.kind] < minimum.get(remote.kind, 0):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                await asyncio.wait_for(remote.track.recv(), left)
            except (asyncio.TimeoutError, MediaStreamError):
                return
            counts[remote.kind] += 1

    await asyncio.gather(*(pull(t) for t in tracks))
    return dict(counts)


@dataclass
class FrameLog:
    """Decodes a remote video track in the background, logging (time, width, height) per frame."""

    remote: RemoteTrack
    frames: list[tuple[float, int, int]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> FrameLog:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def _run(self) -> None:
        try:
            while True:
                frame = await self.remote.track.recv()
                self.frames.append((time.monotonic(), frame.width, frame.height))
        except MediaStreamError:
            return

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def between(self, start: float, end: float) -> list[tuple[float, int, int]]:
        return [f for f in self.frames if start <= f[0] < end]


def rtx_payload_types(sdp: str) -> set[int]:
    """Payload types an SDP maps to rtx (RFC 4588)."""
    return {int(pt) for pt in re.findall(r"a=rtpmap:(\d+) rtx/", sdp)}


class NoisyVideoTrack(VideoStreamTrack):
    """Random pixels: every frame encodes to several RTP packets, like real camera video.

    aiortc's own VideoStreamTrack is a flat colour that fits one packet a
    frame, which would make loss tests too easy.
    """

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self._random = random.Random(5)
        self._size = (width, height)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(*self._size, "yuv420p")
        for plane in frame.planes:
            plane.update(self._random.randbytes(plane.buffer_size))
        frame.pts, frame.time_base = pts, time_base
        return frame


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> None:
    """Poll predicate until it holds; AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def vp8_keyframe_size(payload_head: bytes) -> tuple[int, int] | None:
    """(width, height) from the first packet of a VP8 key frame (RFC 6386 9.1), else None."""
    if not vp8_is_keyframe(payload_head):
        return None
    descriptor = parse_vp8(payload_head)
    frame = payload_head[descriptor.header_size :]
    if len(frame) < 10 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    return int.from_bytes(frame[6:8], "little") & 0x3FFF, int.from_bytes(frame[8:10], "little") & 0x3FFF
