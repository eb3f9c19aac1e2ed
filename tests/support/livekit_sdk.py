"""LiveKit's own Python SDK (`livekit`, tokens from `livekit-api`) as a test peer: it publishes a tone and a pattern, and judges what it receives.

The oracle is the SDK's decoded frames: rtc.AudioStream yields silent
frames when nothing arrives, so audio counts only frames that carry the
tone's energy; video counts frames the SDK decoded.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from livekit import api, rtc

from mediapod.config import DEV_API_KEY, DEV_API_SECRET

SAMPLE_RATE = 48000
FRAME_SAMPLES = 480  # 10 ms
TONE_HZ = 440
TONE_PEAK = 8000     # int16 amplitude: RMS about 5700
# An RMS above this is the tone, not silence or comfort noise.
TONE_RMS_THRESHOLD = 1000.0
VIDEO_SIZE = (320, 240)


def sdk_token(room: str, identity: str, **grants: object) -> str:
    """A token from livekit-api (LiveKit's own signer), for the pod's dev key."""
    video = api.VideoGrants(room_join=True, room=room, **grants)  # type: ignore[arg-type]
    return api.AccessToken(DEV_API_KEY, DEV_API_SECRET).with_identity(identity).with_grants(video).to_jwt()


def ws_url(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http")


@dataclass
class Reception:
    """What one client decoded from the others, by kind."""

    audio_frames: int = 0
    tone_frames: int = 0  # audio frames that carry the tone
    video_frames: int = 0
    tone_times: list[float] = field(default_factory=list)  # monotonic time of each tone frame
    video_sizes: list[tuple[float, int, int]] = field(default_factory=list)  # (monotonic time, width, height) per frame
    # The same, by the identity of the participant who published the track.
    video_sizes_from: dict[str, list[tuple[float, int, int]]] = field(default_factory=dict)
    subscribed: list[tuple[str, str]] = field(default_factory=list)  # (participant identity, kind)
    connected: list[str] = field(default_factory=list)  # identities seen in participant_connected


class SdkClient:
    """One rtc.Room that records what it sees and decodes."""

    def __init__(self) -> None:
        self.room = rtc.Room()
        self.reception = Reception()
        self._tasks: list[asyncio.Task[None]] = []
        self.room.on("participant_connected", lambda p: self.reception.connected.append(p.identity))
        self.room.on("track_subscribed", self._on_track)

    async def connect(self, http_url: str, token: str) -> None:
        await asyncio.wait_for(self.room.connect(ws_url(http_url), token), 20)

    def _on_track(self, track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        kind = "audio" if track.kind == rtc.TrackKind.KIND_AUDIO else "video"
        self.reception.subscribed.append((participant.identity, kind))
        reader = self._read_audio(track) if kind == "audio" else self._read_video(track, participant.identity)
        self._tasks.append(asyncio.get_running_loop().create_task(reader))

    async def _read_audio(self, track: rtc.Track) -> None:
        async for event in rtc.AudioStream(track):
            self.reception.audio_frames += 1
            samples = np.frombuffer(event.frame.data, dtype=np.int16).astype(np.float64)
            if samples.size and math.sqrt(float(np.mean(samples**2))) > TONE_RMS_THRESHOLD:
                self.reception.tone_frames += 1
                self.reception.tone_times.append(time.monotonic())

    async def _read_video(self, track: rtc.Track, publisher: str) -> None:
        sizes = self.reception.video_sizes_from.setdefault(publisher, [])
        async for event in rtc.VideoStream(track):
            self.reception.video_frames += 1
            seen = (time.monotonic(), event.frame.width, event.frame.height)
            self.reception.video_sizes.append(seen)
            sizes.append(seen)

    async def publish(self, *, video: bool) -> None:
        """Publish a sine (and a moving test pattern) and keep feeding them until close."""
        audio = rtc.AudioSource(SAMPLE_RATE, 1)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(rtc.LocalAudioTrack.create_audio_track("tone", audio), options)
        source = None
        if video:
            source = rtc.VideoSource(*VIDEO_SIZE)
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)
            await self.room.local_participant.publish_track(rtc.LocalVideoTrack.create_video_track("pattern", source), options)
        self._tasks.append(asyncio.get_running_loop().create_task(_feed(audio, source)))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.room.disconnect()


async def _feed(audio: rtc.AudioSource, video: rtc.VideoSource | None) -> None:
    """10 ms of tone at a time, and a frame of a moving gradient every 40 ms (25 fps), each in its own task.

    The audio source paces its feeder (capture_frame waits while its queue
    is full); video must not ride on that loop: fed from the same loop, the
    subscriber decoded the publisher's audio as silence.
    """
    feeders = [_feed_tone(audio)] + ([_feed_pattern(video)] if video is not None else [])
    await asyncio.gather(*feeders)


async def _feed_tone(audio: rtc.AudioSource) -> None:
    n = 0
    while True:
        t = (np.arange(FRAME_SAMPLES) + n * FRAME_SAMPLES) / SAMPLE_RATE
        tone = (TONE_PEAK * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)
        await audio.capture_frame(rtc.AudioFrame(tone.tobytes(), SAMPLE_RATE, 1, FRAME_SAMPLES))
        n += 1


async def _feed_pattern(video: rtc.VideoSource) -> None:
    width, height = VIDEO_SIZE
    ramp = np.add.outer(np.arange(height), np.arange(width))
    n = 0
    while True:
        shade = (ramp + n) % 256
        rgba = np.dstack([shade, 255 - shade, np.full_like(shade, n % 256), np.full_like(shade, 255)])
        video.capture_frame(rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, rgba.astype(np.uint8).tobytes()))
        n += 1
        await asyncio.sleep(0.04)


@dataclass(frozen=True)
class ReceivedData:
    """One data packet as the SDK's data_received reports it."""

    payload: bytes
    topic: str
    sender: str  # the sending participant's identity; "" from the server API
    reliable: bool


class DataInbox:
    """Every data packet one rtc.Room receives, in order."""

    def __init__(self, room: rtc.Room) -> None:
        self.packets: list[ReceivedData] = []
        room.on("data_received", self._on_data)

    def _on_data(self, packet: rtc.DataPacket) -> None:
        sender = packet.participant.identity if packet.participant is not None else ""
        reliable = packet.kind == rtc.DataPacketKind.KIND_RELIABLE
        self.packets.append(ReceivedData(packet.data, packet.topic or "", sender, reliable))

    async def wait_for(self, count: int, within: float) -> list[ReceivedData]:
        """The packets received once there are count of them, or when within seconds have passed."""
        deadline = asyncio.get_running_loop().time() + within
        while len(self.packets) < count and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        return list(self.packets)


class RoomEvents:
    """The named events one rtc.Room emits, in order, each as (name, its arguments)."""

    def __init__(self, room: rtc.Room, *names: str) -> None:
        self.seen: list[tuple[str, tuple[object, ...]]] = []
        for name in names:
            room.on(name, lambda *args, name=name: self.seen.append((name, args)))

    async def wait_for(self, name: str, matches: Callable[..., bool] = lambda *_: True, within: float = 5.0) -> tuple[object, ...]:
        """The arguments of the first name event they match, waiting up to within seconds.

        Raises:
            TimeoutError: no such event came.
        """
        deadline = asyncio.get_running_loop().time() + within
        while True:
            for seen, args in self.seen:
                if seen == name and matches(*args):
                    return args
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no matching {name!r} event within {within} s; saw {[n for n, _ in self.seen]}")
            await asyncio.sleep(0.05)
