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


@dataclass(frozen=True, slots=True)
class LayerAnnouncement:
    """A simulcast encoding as the publisher described it."""

    rid: str
    width: int = 0
    height: int = 0


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
    layers: tuple[LayerAnnouncement, ...] = ()


@dataclass(slots=True)
class PublishedTrack:
    """A track live in a room: its announcement, its codec and one receiver per layer.

    ``layers`` holds one TrackReceiver for a plain track and one per simulcast
    encoding (RFC 8853 rid) for a simulcast one, lowest quality first.
    """

    sid: str
    announcement: TrackAnnouncement
    publisher_sid: str
    publisher_identity: str
    mid: str
    codec: Codec
    layers: tuple[TrackReceiver, ...]
    rids: tuple[str, ...] = ()
    muted: bool = False

    @property
    def receiver(self) -> TrackReceiver:
        """The receiver of a single-layer track (audio is never simulcast)."""
        return self.layers[0]

    @property
    def simulcast(self) -> bool:
        return len(self.layers) > 1

    def set_muted(self, muted: bool) -> None:
        self.muted = muted
        for layer in self.layers:
            layer.set_muted(muted)

    @property
    def layer_sizes(self) -> tuple[tuple[int, int], ...]:
        """The announced (width, height) of each layer, lowest first; () unless every layer was announced."""
        sizes = {layer.rid: layer for layer in self.announcement.layers}
        if not self.rids or not all(rid in sizes for rid in self.rids):
            return ()
        return tuple((sizes[rid].width, sizes[rid].height) for rid in self.rids)

    def request_keyframe(self, layer: int) -> bool:
        return self.layers[layer].request_keyframe()

    def close(self) -> None:
        for layer in self.layers:
            layer.close()

    @property
    def kind(self) -> str:
        return self.announcement.kind

    @property
    def name(self) -> str:
        return self.announcement.name

    @property
    def mime_type(self) -> str:
        return self.codec.mime_type(self.kind)
