"""Which packets of a published track one subscriber gets: the one home of layer choice.

Two parties limit what a DownTrack forwards. The subscriber states a wish
(UpdateTrackSettings: a quality or a size, and a temporal limit); the
StreamAllocator, which knows the subscriber's bandwidth, allows a spatial
layer or pauses the track. The target is the lower of the two. A video
stream may only start or change layer on a keyframe of the target layer, or
the subscriber's decoder would get frames it cannot decode; while it waits,
the Forwarder asks the publisher for one (through the receiver's per-track
throttle) and keeps forwarding the layer it has. Audio, and video whose
keyframes we cannot see, start on any packet.

Per packet the Forwarder only compares integers the receiver already worked
out (:class:`~mediapod.sfu.extpacket.ExtPacket`); numbering is the
RtpMunger's job and sending the DownTrack's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mediapod.sfu.extpacket import ExtPacket

# While waiting for a keyframe of the target layer, re-ask this often in case
# the first request or the keyframe itself was lost.
KEYFRAME_RETRY_INTERVAL = 1.0
# VP8 temporal layers are 0..2 in practice; this value forwards them all.
MAX_TEMPORAL_LAYER = 2

# decide() answers, cheapest to test first on the hot path.
FORWARD = 0
"""Send the packet: it belongs to the layer being forwarded."""
DROP = 1
"""Not for this subscriber (another layer, waiting for a keyframe, paused, muted)."""
SKIP = 2
"""Of the forwarded layer but above the temporal limit: not sent, and it must not look lost."""
SWITCH = 3
"""Start (or restart) the stream at this packet, then send it."""

# Why a layer switch happened, for switchboard_layer_switches{direction,reason}.
UP = "up"
DOWN = "down"
REASON_SUBSCRIBER = "subscriber"
REASON_BANDWIDTH = "bandwidth"


def spatial_for(quality: int, width: int, height: int, layer_sizes: tuple[tuple[int, int], ...], layers: int) -> int:
    """The highest spatial layer a subscriber's UpdateTrackSettings asks for.

    A size picks the smallest layer at least that large when the publisher
    announced every layer's (width, height), lowest first; otherwise quality
    counts from the lowest layer. Clamped to the ``layers`` that exist.
    """
    top = layers - 1
    if (width or height) and len(layer_sizes) == layers:
        for index, (layer_width, layer_height) in enumerate(layer_sizes):
            if layer_width >= width and layer_height >= height:
                return index
        return top
    return max(0, min(quality, top))


class Forwarder:
    """Layer choice for one DownTrack: wish, allocation, target, current layer, pause and mute.

    ``request_keyframe(layer)`` asks the publisher for a keyframe of a
    spatial layer; None for streams that start on any packet (audio, codecs
    whose keyframes we cannot detect). ``on_switch(direction, reason)`` hears
    every change of the forwarded layer while forwarding (not starts,
    resumes or pauses).
    """

    __slots__ = (
        "_allowed_spatial",
        "_allowed_temporal",
        "_current",
        "_last_keyframe_ask",
        "_muted",
        "_on_switch",
        "_paused",
        "_reason",
        "_request_keyframe",
        "_started",
        "_target",
        "_target_temporal",
        "_wish_spatial",
        "_wish_temporal",
        "layers",
    )

    def __init__(
        self,
        layers: int,
        request_keyframe: Callable[[int], object] | None,
        on_switch: Callable[[str, str], None] | None = None,
    ) -> None:
        self.layers = layers
        self._request_keyframe = request_keyframe
        self._on_switch = on_switch
        self._started = False
        self._muted = False
        self._paused = False
        self._wish_spatial = layers - 1  # best quality unless the subscriber asks less
        self._wish_temporal = MAX_TEMPORAL_LAYER
        self._allowed_spatial = layers - 1  # unconstrained until the allocator says otherwise
        self._allowed_temporal = MAX_TEMPORAL_LAYER
        self._target = -1  # -1: forward nothing (not started, paused or muted)
        self._target_temporal = MAX_TEMPORAL_LAYER
        self._current = -1  # -1 until (re)started on a packet that may start the stream
        self._reason = REASON_SUBSCRIBER
        self._last_keyframe_ask = 0.0

    # -- state ----------------------------------------------------------------

    @property
    def wanted_spatial(self) -> int:
        """The subscriber's wish, clamped to the layers that exist."""
        return self._wish_spatial

    @property
    def wanted_temporal(self) -> int:
        return self._wish_temporal

    @property
    def target_spatial(self) -> int:
        """The layer to forward: the lower of wish and allocation; -1 while paused, muted or not started."""
        return self._target

    @property
    def target_temporal(self) -> int:
        return self._target_temporal

    @property
    def current_spatial(self) -> int:
        """The layer being forwarded; -1 while waiting to (re)start."""
        return self._current

    @property
    def paused(self) -> bool:
        """The allocator paused this track: nothing is forwarded, the subscription stays."""
        return self._paused

    @property
    def is_deficient(self) -> bool:
        """The allocation (or a pause) holds the target below what the subscriber wants."""
        return self._paused or self._allowed_spatial < self._wish_spatial or self._allowed_temporal < self._wish_temporal

    @property
    def keyframe_layer(self) -> int:
        """The layer a keyframe is useful from now: the one forwarded, else the target; -1 for none."""
        return self._current if self._current >= 0 else self._target

    # -- control (signaling, allocator, mute) --------------------------------------

    def start(self) -> None:
        """The subscriber can receive: forward from the next packet that may start the stream."""
        if not self._started:
            self._started = True
            self._retarget(REASON_SUBSCRIBER)

    def stop(self) -> None:
        """Forward nothing any more (the DownTrack closed)."""
        self._started = False
        self._current = -1
        self._target = -1

    def set_wish(self, max_spatial: int, max_temporal: int = MAX_TEMPORAL_LAYER) -> None:
        """The subscriber's highest wanted layers (UpdateTrackSettings), clamped to what exists."""
        self._wish_spatial = max(0, min(max_spatial, self.layers - 1))
        self._wish_temporal = max(0, min(max_temporal, MAX_TEMPORAL_LAYER))
        self._retarget(REASON_SUBSCRIBER)

    def allocate(self, spatial: int, temporal: int = MAX_TEMPORAL_LAYER) -> None:
        """The allocator allows layers up to these (and resumes a paused track)."""
        self._paused = False
        self._allowed_spatial = max(0, min(spatial, self.layers - 1))
        self._allowed_temporal = max(0, min(temporal, MAX_TEMPORAL_LAYER))
        self._retarget(REASON_BANDWIDTH)

    def pause(self) -> None:
        """The allocator has no room for this track: stop forwarding; resuming waits for a keyframe."""
        self._paused = True
        self._current = -1
        self._retarget(REASON_BANDWIDTH)

    def set_muted(self, muted: bool) -> None:
        """The publisher muted: stop; on unmute wait for a keyframe again."""
        if muted == self._muted:
            return
        self._muted = muted
        self._current = -1
        self._retarget(REASON_SUBSCRIBER)

    def request_keyframe(self) -> None:
        """The subscriber lost pictures (PLI/FIR): ask for a keyframe of the layer it needs."""
        layer = self.keyframe_layer
        if layer >= 0 and self._request_keyframe is not None:
            self._request_keyframe(layer)

    def _retarget(self, reason: str) -> None:
        if not self._started or self._paused or self._muted:
            self._target = -1
            return
        target = min(self._wish_spatial, self._allowed_spatial)
        self._target_temporal = min(self._wish_temporal, self._allowed_temporal)
        if target == self._target:
            return
        self._target = target
        self._reason = reason
        if target != self._current:
            self._ask_keyframe(time.monotonic())

    def _ask_keyframe(self, now: float) -> None:
        if self._request_keyframe is not None:
            self._last_keyframe_ask = now
            self._request_keyframe(self._target)

    # -- per packet -----------------------------------------------------------------

    def decide(self, ext: ExtPacket) -> int:
        """FORWARD, DROP, SKIP or SWITCH for one packet of any layer of the track."""
        layer = ext.layer
        if layer == self._current:
            return SKIP if ext.temporal > self._target_temporal else FORWARD
        if layer != self._target:
            return DROP
        if not ext.keyframe and self._request_keyframe is not None:
            if ext.arrival - self._last_keyframe_ask > KEYFRAME_RETRY_INTERVAL:
                self._ask_keyframe(ext.arrival)
            return DROP
        current = self._current
        self._current = layer
        if current >= 0 and self._on_switch is not None:
            self._on_switch(UP if layer > current else DOWN, self._reason)
        return SWITCH
