"""A published track: its announced layer sizes, mute across layers, keyframe requests and close."""

from __future__ import annotations

import asyncio

from mediapod.metrics import MediaCounters
from mediapod.rtc.sdp import Codec
from mediapod.rtc.track import LayerAnnouncement, PublishedTrack, TrackAnnouncement
from mediapod.rtp.packet import RtpHeader
from mediapod.sfu.downtrack import DownTrack
from mediapod.sfu.forwarder import Forwarder
from mediapod.sfu.receiver import KEYFRAME_REQUEST_INTERVAL, TrackReceiver
from tests.support.fake_client import VP8_KEYFRAME, rtp

VP8 = Codec(96, "VP8", 90000, None, "", [("nack", "pli")])


def simulcast(
    sizes: dict[str, tuple[int, int]] | None = None, rids: tuple[str, ...] = ("q", "h", "f")
) -> tuple[PublishedTrack, list[int]]:
    """A three-layer VP8 track (layer i on SSRC 100 + i) and the SSRCs its publisher was sent PLIs for."""
    plis: list[int] = []
    layers = tuple(TrackReceiver("TR_cam", "video", "video/VP8", 90000, 100 + i, plis.append, layer=i) for i in range(len(rids)))
    announced = tuple(LayerAnnouncement(rid, *size) for rid, size in (sizes or {}).items())
    announcement = TrackAnnouncement(cid="cam", name="cam", kind="video", layers=announced)
    track = PublishedTrack("TR_cam", announcement, "PA_pub", "pub", "1", VP8, layers, rids)
    return track, plis


SIZES = {"q": (320, 180), "h": (640, 360), "f": (1280, 720)}


def test_layer_sizes_follow_the_layer_order_once_every_layer_was_announced() -> None:
    track, _ = simulcast({"f": (1280, 720), "q": (320, 180), "h": (640, 360)})
    assert track.layer_sizes == ((320, 180), (640, 360), (1280, 720))


def test_layer_sizes_are_unknown_when_a_layer_was_not_announced() -> None:
    assert simulcast()[0].layer_sizes == ()
    assert simulcast({"q": (320, 180), "h": (640, 360)})[0].layer_sizes == ()


def test_a_single_layer_track_has_no_layer_sizes() -> None:
    track, _ = simulcast(rids=("",))
    assert track.layer_sizes == () and not track.simulcast


async def test_mute_stops_every_layer_and_unmute_asks_each_for_a_keyframe() -> None:
    track, plis = simulcast(SIZES)
    sent: list[bytes] = []
    forwarder = Forwarder(len(track.layers), track.request_keyframe)
    downtrack = DownTrack(
        kind="video", payload_type=96, clock_rate=90000, send=sent.append,
        buffers=tuple(layer.buffer for layer in track.layers), counters=MediaCounters(),
        forwarder=forwarder, cname="viewer",
    )
    for layer in track.layers:
        layer.add_downtrack(downtrack)
    forwarder.set_wish(0)
    downtrack.bind()
    for seq in (1, 2):
        packet = rtp(100, seq, payload_type=96, payload=VP8_KEYFRAME)
        track.layers[0].on_rtp(packet, RtpHeader.parse(packet), 0.0)
        if seq == 1:
            assert len(sent) == 1, "the unmuted track did not forward its keyframe"
            track.set_muted(True)

    assert track.muted and all(layer.muted for layer in track.layers)
    assert len(sent) == 1, "a muted track forwarded media"
    assert 2 in track.layers[0].buffer, "a muted track still keeps packets for retransmission"

    await asyncio.sleep(KEYFRAME_REQUEST_INTERVAL)  # past the throttle of the bind's request
    plis.clear()
    track.set_muted(False)

    assert not any(layer.muted for layer in track.layers)
    assert sorted(plis) == [100, 101, 102]


def test_keyframe_requests_are_throttled_per_layer() -> None:
    track, plis = simulcast(SIZES)

    assert track.request_keyframe(2) is True
    assert track.request_keyframe(2) is False
    assert track.request_keyframe(0) is True

    assert plis == [102, 100]


def test_close_closes_the_downtracks_of_every_layer() -> None:
    track, _ = simulcast(SIZES)
    sent: list[bytes] = []
    downtrack = DownTrack(
        kind="video", payload_type=96, clock_rate=90000, send=sent.append,
        buffers=(track.layers[0].buffer,), counters=MediaCounters(),
        forwarder=Forwarder(1, request_keyframe=None), cname="viewer",
    )
    track.layers[0].add_downtrack(downtrack)
    downtrack.bind()

    track.close()
    packet = rtp(100, 1, payload_type=96)
    track.layers[0].on_rtp(packet, RtpHeader.parse(packet), 0.0)

    assert sent == []
