"""A bystander room: one aiortc publisher and one subscriber, watched per second.

Hardening tests abuse a media pod from one participant and check that an
unrelated room on the same pod keeps its video: the subscriber decodes every
frame (the decoder is the oracle) and an RtpProbe records sequence numbers.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from types import TracebackType

from aiortc.mediastreams import VideoStreamTrack

from mediapod import client
from tests.support.mediapod_process import MediaPodProcess
from tests.support.peers import FrameLog, RtpProbe


class Bystander:
    """A 30 fps video room on ``pod`` whose subscriber logs every decoded frame."""

    def __init__(self, pod: MediaPodProcess) -> None:
        self.room = f"bystander-{secrets.token_hex(3)}"
        self._pod = pod
        self.publisher: client.Session | None = None
        self.subscriber: client.Session | None = None
        self.probe = RtpProbe()
        self.frames: FrameLog | None = None

    async def __aenter__(self) -> Bystander:
        pod = self._pod
        self.publisher = await client.connect(pod.grpc_target, pod.token(self.room, "bystander-pub"))
        await self.publisher.publish(VideoStreamTrack(), name="cam")
        self.subscriber = await client.connect(pod.grpc_target, pod.token(self.room, "bystander-sub"))
        [remote] = await self.subscriber.wait_for_tracks(1, kind="video", timeout=10)
        self.probe.attach(remote.receiver)
        self.frames = FrameLog(remote).start()
        await self.wait_for_frames(30, timeout=10)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.frames is not None:
            self.frames.stop()
        for session in (self.subscriber, self.publisher):
            if session is not None:
                await session.close()

    async def wait_for_frames(self, count: int, timeout: float) -> None:
        assert self.frames is not None
        deadline = time.monotonic() + timeout
        while len(self.frames.frames) < count:
            assert time.monotonic() < deadline, f"bystander decoded only {len(self.frames.frames)} frames"
            await asyncio.sleep(0.05)

    def frames_per_second(self, start: float, end: float) -> list[int]:
        """Decoded frames in each whole second of [start, end) (monotonic clock)."""
        assert self.frames is not None
        seconds = int(end - start)
        counts = [0] * seconds
        for at, _, _ in self.frames.between(start, start + seconds):
            counts[int(at - start)] += 1
        return counts

    def gaps(self) -> int:
        """Sequence numbers missing from what the subscriber received (wrap-aware)."""
        return self.probe.gaps()
