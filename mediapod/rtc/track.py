"""A track a participant publishes into a room."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mediapod.rtc.sdp import Codec
from mediapod.sfu.receiver import TrackReceiver


class TrackSource(enum.Enum):
    UNKNOWN = "unknown"
    CAMERA = "camera"
    MICROPHONE = "microphone"
    SCREEN_SHARE = "screen_share"
    SCREEN_SHARE_AUDIO = "screen_share_audio"


@dataclass(slots=True)
class TrackAnnouncement:
    """What a publisher said about a track before the offer that carries it."""

    cid: str
    name: str
    kind: str  # "audio" | "video"
    source: TrackSource = TrackSource.UNKNOWN
    muted: bool = False
    width: int = 0
    height: int = 0


@dataclass(slots=True)
class PublishedTrack:
    """A track live in a room: its announcement, its codec and its receiver."""

    sid: str
    announcement: TrackAnnouncement
    publisher_sid: str
    publisher_identity: str
    mid: str
    codec: Codec
    receiver: TrackReceiver
    muted: bool = False

    @property
    def kind(self) -> str:
        return self.announcement.kind

    @property
    def name(self) -> str:
        return self.announcement.name

    @property
    def mime_type(self) -> str:
        return self.codec.mime_type(self.kind)
