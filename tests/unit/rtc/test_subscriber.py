"""The subscriber PeerConnection: our offers, the client's answers, and forwarding.

The subscriber connection is driven alone with tracks whose receivers are
real; the client answers with sdp-transform and connects over an in-memory
DTLS-SRTP association.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sdp_transform

from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.sdp import Codec, parse
from mediapod.rtc.subscriber import SubscriberConnection
from mediapod.rtc.track import PublishedTrack, TrackAnnouncement
from mediapod.rtp.packet import RtpHeader
from mediapod.sfu.receiver import KEYFRAME_REQUEST_INTERVAL, TrackReceiver
from mediapod.transport.peer import TransportState
from tests.support.fake_client import VP8_DELTA, VP8_KEYFRAME, ClientPeer, Pod, payload_of, rtp, rtp_fields
from tests.support.sdp_fixtures import minimal_offer

OPUS = Codec(111, "opus", 48000, 2, "minptime=10;useinbandfec=1")
VP8 = Codec(96, "VP8", 90000, None, "", [("nack", ""), ("nack", "pli"), ("ccm", "fir")])


class Subscriber:
    """A SubscriberConnection and everything it tells its owner."""

    def __init__(self, pod: Pod) -> None:
        self.offers: list[str] = []
        self.states: list[TransportState] = []
        self.unknown_ssrcs: list[int] = []
        self.connection = SubscriberConnection(
            pod.context, "PA_viewer", self.offers.append, self.states.append, lambda ssrc, now: self.unknown_ssrcs.append(ssrc)
        )
        self.client = ClientPeer(pod)

    def offered(self, index: int = -1) -> list[dict[str, Any]]:
        """The m-lines of an offer, as sdp-transform reads them."""
        return sdp_transform.parse(self.offers[index])["media"]

    def answer(self, reject: frozenset[str] = frozenset()) -> None:
        self.connection.apply_answer(parse("answer", self.client.answer(self.offers[-1], reject)))

    def connect(self) -> None:
        self.answer()
        self.client.connect(self.offers[-1])


@pytest.fixture
async def viewer(pod: Pod) -> AsyncIterator[Subscriber]:
    subscriber = Subscriber(pod)
    yield subscriber
    subscriber.connection.close()


class Source:
    """A published track and the keyframe requests (PLIs) its publisher got."""

    def __init__(self, sid: str, kind: str = "audio") -> None:
        codec = OPUS if kind == "audio" else VP8
        self.plis: list[int] = []
        self.ssrc = 0x1000 + len(sid)
        self.receiver = TrackReceiver(sid, kind, codec.mime_type(kind), codec.clock_rate, self.ssrc, self.plis.append)
        self.track = PublishedTrack(
            sid=sid,
            announcement=TrackAnnouncement(cid=sid, name=sid, kind=kind),
            publisher_sid="PA_publisher",
            publisher_identity="publisher",
            mid="0",
            codec=codec,
            layers=(self.receiver,),
        )

    def send(self, seq: int, payload: bytes = b"frame", timestamp: int = 0) -> None:
        """What the publisher connection does with an authenticated packet of this track."""
        packet = rtp(self.ssrc, seq, payload_type=self.track.codec.payload_type, payload=payload, timestamp=timestamp)
        self.receiver.on_rtp(packet, RtpHeader.parse(packet), 0.0)


def active(media: list[dict[str, Any]]) -> dict[str, str]:
    """mid -> msid track id of each sendonly m-line."""
    return {str(m["mid"]): m["msid"].split()[1] for m in media if m["direction"] == "sendonly"}


def ssrc_of(media: dict[str, Any]) -> int:
    return int(media["ssrcs"][0]["id"])


async def test_subscribing_sends_one_offer_with_a_sendonly_m_line(viewer: Subscriber) -> None:
    viewer.connection.subscribe(Source("TR_a").track)

    assert len(viewer.offers) == 1
    (media,) = viewer.offered()
    assert (media["type"], media["direction"], media["msid"]) == ("audio", "sendonly", "PA_publisher|TR_a TR_a")
    assert [(r["codec"], r["payload"]) for r in media["rtp"]] == [("opus", 111)]


async def test_changes_while_an_offer_is_pending_go_out_together_after_the_answer(viewer: Subscriber) -> None:
    a, b, c = Source("TR_a"), Source("TR_b", "video"), Source("TR_c")
    viewer.connection.subscribe(a.track)
    viewer.connection.subscribe(b.track)
    viewer.connection.subscribe(c.track)
    viewer.connection.unsubscribe("TR_a")
    assert len(viewer.offers) == 1, "an offer went out while another waited for its answer"

    viewer.answer()

    assert len(viewer.offers) == 2
    assert active(viewer.offered()) == {"1": "TR_b", "2": "TR_c"}
    assert viewer.offered()[0]["direction"] == "inactive"


async def test_an_answer_binds_downtracks_and_media_flows_with_our_ssrc(viewer: Subscriber) -> None:
    source = Source("TR_a")
    viewer.connection.subscribe(source.track)
    ssrc = ssrc_of(viewer.offered()[0])
    viewer.connect()

    source.send(7, b"opus frame", timestamp=960)

    rtp_in, _ = viewer.client.receive()
    assert len(rtp_in) == 1
    payload_type, _, _, sent_ssrc = rtp_fields(rtp_in[0])
    assert (payload_type, sent_ssrc) == (111, ssrc)
    assert payload_of(rtp_in[0]) == b"opus frame"


async def test_video_starts_on_a_keyframe_it_asks_for_when_bound(viewer: Subscriber) -> None:
    source = Source("TR_v", "video")
    viewer.connection.subscribe(source.track)
    viewer.connect()
    assert source.plis == [source.ssrc], "binding a video downtrack must ask the publisher for a keyframe"

    source.send(1, VP8_DELTA)
    assert viewer.client.receive()[0] == []
    source.send(2, VP8_KEYFRAME)
    source.send(3, VP8_DELTA)

    assert [payload_of(p) for p in viewer.client.receive()[0]] == [VP8_KEYFRAME, VP8_DELTA]


async def test_a_rejected_slot_is_not_forwarded(viewer: Subscriber) -> None:
    source = Source("TR_a")
    other = Source("TR_b")
    viewer.connection.subscribe(source.track)
    viewer.connection.subscribe(other.track)
    viewer.answer()  # the first offer carried TR_a only; the second carries both
    viewer.connection.apply_answer(parse("answer", viewer.client.answer(viewer.offers[-1], reject=frozenset({"0"}))))
    viewer.client.connect(viewer.offers[-1])

    source.send(1)
    other.send(1)

    assert [rtp_fields(p)[3] for p in viewer.client.receive()[0]] == [ssrc_of(viewer.offered()[1])]


async def test_an_unsubscribed_slot_is_reused_by_the_next_track_of_its_kind_and_codec(viewer: Subscriber) -> None:
    viewer.connection.subscribe(Source("TR_a").track)
    viewer.answer()
    viewer.connection.unsubscribe("TR_a")
    viewer.answer()

    viewer.connection.subscribe(Source("TR_b").track)
    viewer.connection.subscribe(Source("TR_v", "video").track)
    viewer.answer()

    assert active(viewer.offered()) == {"0": "TR_b", "1": "TR_v"}


async def test_unsubscribe_stops_forwarding(viewer: Subscriber) -> None:
    source = Source("TR_a")
    viewer.connection.subscribe(source.track)
    viewer.connect()
    source.send(1)
    assert len(viewer.client.receive()[0]) == 1

    viewer.connection.unsubscribe("TR_a")
    source.send(2)

    assert viewer.client.receive()[0] == []
    assert viewer.connection.downtrack_count == 0
    assert viewer.connection.subscribed_track_sids() == []


async def test_a_pli_from_the_subscriber_asks_the_publisher_for_a_keyframe(pod: Pod, viewer: Subscriber) -> None:
    source = Source("TR_v", "video")
    viewer.connection.subscribe(source.track)
    ssrc = ssrc_of(viewer.offered()[0])
    viewer.connect()
    await asyncio.sleep(KEYFRAME_REQUEST_INTERVAL)  # past the throttle of the request the bind made

    viewer.client.send_rtcp(struct.pack("!BBHII", 0x81, 206, 2, 0x5EED, ssrc))  # PSFB FMT 1 = PLI

    assert source.plis == [source.ssrc, source.ssrc]
    assert pod.counters.plis_received == 1


async def test_rtp_from_the_subscriber_is_dropped_and_reported(viewer: Subscriber) -> None:
    viewer.connection.subscribe(Source("TR_a").track)
    viewer.connect()

    viewer.client.send_rtp(rtp(0xABCD, 1))

    assert viewer.unknown_ssrcs == [0xABCD]


async def test_an_answer_without_a_pending_offer_is_refused(viewer: Subscriber) -> None:
    with pytest.raises(RequestError) as refused:
        viewer.connection.apply_answer(parse("answer", minimal_offer()))
    assert refused.value.code == ErrorCode.FAILED_PRECONDITION


async def test_an_answer_rejecting_every_m_line_is_refused(viewer: Subscriber) -> None:
    viewer.connection.subscribe(Source("TR_a").track)

    with pytest.raises(RequestError) as refused:
        viewer.connection.apply_answer(parse("answer", viewer.client.answer(viewer.offers[-1], reject=frozenset({"0"}))))

    assert refused.value.code == ErrorCode.INVALID_ARGUMENT
    assert "rejects every m-line" in refused.value.message
