"""Forwarder: which packets of which layer one subscriber gets, from wish, allocation, keyframes and mute.

The packets here are ExtPackets with their facts stated outright (keyframe,
temporal layer): what the receiver would have found is not the Forwarder's
concern, and no payload is parsed.
"""

from __future__ import annotations

import time

import pytest

from mediapod.rtp.packet import RtpHeader
from mediapod.sfu.extpacket import ExtPacket
from mediapod.sfu.forwarder import (
    DOWN,
    DROP,
    FORWARD,
    KEYFRAME_RETRY_INTERVAL,
    MAX_TEMPORAL_LAYER,
    REASON_BANDWIDTH,
    REASON_SUBSCRIBER,
    SKIP,
    SWITCH,
    UP,
    Forwarder,
    spatial_for,
)

_HEADER = RtpHeader(payload_type=96, marker=False, sequence_number=0, timestamp=0, ssrc=1, header_size=12, payload_end=20)


def packet(layer: int = 0, *, key: bool = False, temporal: int = 0, at: float = 0.0) -> ExtPacket:
    return ExtPacket(bytes(20), _HEADER, at, layer, 0, keyframe=key, temporal=temporal)


class Publisher:
    """The keyframe requests a Forwarder made, by spatial layer, and the layer switches it reported."""

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.switches: list[tuple[str, str]] = []

    def request_keyframe(self, layer: int) -> bool:
        self.asked.append(layer)
        return True

    def on_switch(self, direction: str, reason: str) -> None:
        self.switches.append((direction, reason))


def video(layers: int = 3) -> tuple[Forwarder, Publisher]:
    publisher = Publisher()
    forwarder = Forwarder(layers, publisher.request_keyframe, publisher.on_switch)
    return forwarder, publisher


def forwarding(layers: int = 3, layer: int | None = None) -> tuple[Forwarder, Publisher]:
    """A started video Forwarder already sending ``layer`` (default: the best)."""
    forwarder, publisher = video(layers)
    forwarder.start()
    if layer is not None:
        forwarder.set_wish(layer)
    assert forwarder.decide(packet(forwarder.target_spatial, key=True)) == SWITCH
    publisher.asked.clear()
    return forwarder, publisher


def test_nothing_is_forwarded_or_asked_for_before_start() -> None:
    forwarder, publisher = video()
    assert forwarder.decide(packet(2, key=True)) == DROP
    assert publisher.asked == [] and forwarder.target_spatial == -1


def test_start_targets_the_best_layer_and_asks_for_its_keyframe() -> None:
    forwarder, publisher = video()
    forwarder.start()
    assert (forwarder.target_spatial, forwarder.current_spatial) == (2, -1)
    assert publisher.asked == [2]


def test_video_starts_only_on_a_keyframe_of_the_target() -> None:
    forwarder, _ = video()
    forwarder.start()
    assert forwarder.decide(packet(2)) == DROP, "a delta frame cannot start a decoder"
    assert forwarder.decide(packet(0, key=True)) == DROP, "not the target layer"
    assert forwarder.decide(packet(2, key=True)) == SWITCH
    assert forwarder.decide(packet(2)) == FORWARD
    assert forwarder.current_spatial == 2


def test_a_layer_switch_waits_for_a_keyframe_of_the_new_layer_and_keeps_the_old_until_then() -> None:
    forwarder, publisher = forwarding(layer=0)
    forwarder.set_wish(2)
    assert publisher.asked == [2], "a keyframe of the new target is requested"
    assert forwarder.decide(packet(2)) == DROP
    assert forwarder.decide(packet(0)) == FORWARD, "the old layer plays on while we wait"
    assert forwarder.decide(packet(2, key=True)) == SWITCH
    assert forwarder.decide(packet(0)) == DROP
    assert forwarder.decide(packet(2)) == FORWARD
    assert publisher.switches == [(UP, REASON_SUBSCRIBER)]


def test_while_waiting_the_keyframe_request_is_repeated_at_the_retry_interval() -> None:
    forwarder, publisher = forwarding(layer=0)
    forwarder.set_wish(1)
    asked_at = time.monotonic() + 10  # arrivals share time.monotonic()'s clock, which the first ask used
    forwarder.decide(packet(1, at=asked_at))
    assert publisher.asked == [1, 1], "asked when the target changed, and again once the interval passed"
    publisher.asked.clear()
    forwarder.decide(packet(1, at=asked_at + KEYFRAME_RETRY_INTERVAL / 2))
    assert publisher.asked == []
    forwarder.decide(packet(1, at=asked_at + KEYFRAME_RETRY_INTERVAL * 1.5))
    assert publisher.asked == [1]


def test_frames_above_the_temporal_limit_are_skipped() -> None:
    forwarder, _ = forwarding(layer=0)
    forwarder.set_wish(0, max_temporal=0)
    assert [forwarder.decide(packet(0, temporal=t)) for t in (0, 2, 1, 0)] == [FORWARD, SKIP, SKIP, FORWARD]
    forwarder.set_wish(0, max_temporal=1)
    assert [forwarder.decide(packet(0, temporal=t)) for t in (1, 2)] == [FORWARD, SKIP]


def test_an_allocation_below_the_wish_sets_the_target_and_marks_the_track_deficient() -> None:
    forwarder, publisher = forwarding()
    forwarder.allocate(1)
    assert (forwarder.wanted_spatial, forwarder.target_spatial) == (2, 1)
    assert forwarder.is_deficient
    assert publisher.asked == [1]
    assert forwarder.decide(packet(1, key=True)) == SWITCH
    assert publisher.switches == [(DOWN, REASON_BANDWIDTH)]


def test_a_wish_below_the_allocation_wins_and_is_not_deficient() -> None:
    forwarder, publisher = forwarding()
    forwarder.allocate(2)
    forwarder.set_wish(0)
    assert (forwarder.wanted_spatial, forwarder.target_spatial) == (0, 0)
    assert not forwarder.is_deficient
    assert forwarder.decide(packet(0, key=True)) == SWITCH
    assert publisher.switches == [(DOWN, REASON_SUBSCRIBER)]


def test_the_allocator_can_cap_temporal_layers_too() -> None:
    forwarder, _ = forwarding(layer=0)
    forwarder.allocate(0, temporal=1)
    assert forwarder.target_temporal == 1 and forwarder.is_deficient
    assert forwarder.decide(packet(0, temporal=2)) == SKIP


def test_pause_stops_at_once_and_resume_waits_for_a_keyframe() -> None:
    forwarder, publisher = forwarding(layer=1)
    forwarder.pause()
    assert forwarder.paused and forwarder.is_deficient
    assert (forwarder.target_spatial, forwarder.current_spatial) == (-1, -1)
    assert forwarder.decide(packet(1)) == DROP
    assert forwarder.decide(packet(1, key=True)) == DROP
    assert publisher.asked == [], "a paused track asks for nothing"

    forwarder.allocate(1)
    assert not forwarder.paused and publisher.asked == [1]
    assert forwarder.decide(packet(1)) == DROP
    assert forwarder.decide(packet(1, key=True)) == SWITCH
    assert publisher.switches == [], "a resume is not a layer switch"


def test_mute_stops_and_unmute_resumes_on_a_keyframe() -> None:
    forwarder, publisher = forwarding(layer=0)
    forwarder.set_muted(True)
    assert forwarder.decide(packet(0)) == DROP
    forwarder.set_muted(False)
    assert publisher.asked == [0]
    assert forwarder.decide(packet(0)) == DROP
    assert forwarder.decide(packet(0, key=True)) == SWITCH


def test_audio_starts_on_any_packet_and_never_asks_for_keyframes() -> None:
    forwarder = Forwarder(1, request_keyframe=None)
    forwarder.start()
    assert forwarder.decide(packet(0)) == SWITCH
    assert forwarder.decide(packet(0)) == FORWARD
    forwarder.request_keyframe()


def test_wish_and_allocation_are_clamped_to_the_layers_that_exist() -> None:
    forwarder, _ = video(layers=2)
    forwarder.set_wish(9, max_temporal=7)
    assert (forwarder.wanted_spatial, forwarder.wanted_temporal) == (1, MAX_TEMPORAL_LAYER)
    forwarder.allocate(-4)
    forwarder.start()
    assert forwarder.target_spatial == 0


def test_a_subscriber_picture_loss_asks_for_the_layer_it_needs() -> None:
    forwarder, publisher = forwarding(layer=0)
    forwarder.set_wish(2)
    publisher.asked.clear()
    forwarder.request_keyframe()
    assert publisher.asked == [0], "still forwarding layer 0: that is what the decoder lost"
    forwarder.pause()
    forwarder.request_keyframe()
    assert publisher.asked == [0], "nothing forwarded, nothing to repair"


def test_stop_forwards_nothing_more() -> None:
    forwarder, _ = forwarding()
    forwarder.stop()
    assert forwarder.decide(packet(2)) == DROP
    assert forwarder.decide(packet(2, key=True)) == DROP


SIZES = ((320, 180), (640, 360), (1280, 720))


@pytest.mark.parametrize(
    ("width", "height", "layer"),
    [(320, 180, 0), (321, 100, 1), (640, 360, 1), (1000, 0, 2), (0, 700, 2), (4000, 3000, 2)],
)
def test_a_size_wish_is_the_smallest_layer_at_least_that_large(width: int, height: int, layer: int) -> None:
    assert spatial_for(0, width, height, SIZES, 3) == layer


@pytest.mark.parametrize(("quality", "layer"), [(-3, 0), (0, 0), (1, 1), (2, 2), (9, 2)])
def test_a_quality_wish_counts_from_the_lowest_layer_and_is_clamped(quality: int, layer: int) -> None:
    assert spatial_for(quality, 0, 0, SIZES, 3) == layer


def test_a_size_without_announced_layer_sizes_falls_back_to_quality() -> None:
    assert spatial_for(1, 1280, 720, (), 3) == 1


def test_a_single_layer_track_always_gets_layer_0() -> None:
    assert spatial_for(2, 1920, 1080, (), 1) == 0
