"""Observing real aiortc peers: frames they decode and RTP headers they receive."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field

from aiortc import RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from mediapod.client import RemoteTrack


@dataclass
class RtpProbe:
    """Records (ssrc, sequence number) of every RTP packet an aiortc receiver gets.

    It wraps the receiver's packet handler, so what it sees is exactly what
    the subscriber's WebRTC stack received after SRTP, before jitter buffering.
    """

    sequence_numbers: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))

    def attach(self, receiver: RTCRtpReceiver) -> None:
        original = receiver._handle_rtp_packet

        async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
            self.sequence_numbers[packet.ssrc].append(packet.sequence_number)
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = handle  # type: ignore[method-assign]

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
