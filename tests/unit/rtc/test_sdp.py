"""SDP for the SFU: peers' offers in, our answers and offers out, checked against aiortc."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import pytest
import sdp_transform
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from hypothesis import given
from hypothesis import strategies as st

from mediapod.rtc.sdp import (
    AUDIO_LEVEL_URI,
    MID_URI,
    REPAIRED_RID_URI,
    RID_URI,
    AnswerMedia,
    Codec,
    LocalParameters,
    OfferMedia,
    SdpError,
    SessionDescription,
    parse,
    parse_off_loop,
    select_codec,
    write_answer,
    write_offer,
)
from tests.support.sdp_fixtures import CHROME_FINGERPRINT, CHROME_OFFER, minimal_offer

TRANSPORT_CC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"

LOCAL = LocalParameters(
    ice_ufrag="sbUfrag1",
    ice_pwd="sbPasswordSbPasswordSb12",
    fingerprint="AB:" * 31 + "AB",
    candidate_ip="203.0.113.5",
    candidate_port=40000,
)
CANDIDATE_LINE = "a=candidate:1 1 udp 2130706431 203.0.113.5 40000 typ host"


def video_offer(payloads: str, *lines: str) -> SessionDescription:
    text = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        f"m=video 9 UDP/TLS/RTP/SAVPF {payloads}\r\n"
        "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijkl\r\n"
        f"a=fingerprint:sha-256 {CHROME_FINGERPRINT}\r\n"
        "a=setup:actpass\r\na=mid:0\r\na=rtcp-mux\r\n" + "".join(line + "\r\n" for line in lines)
    )
    return parse("offer", text)


async def _aiortc_offerer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(AudioStreamTrack())
    pc.addTrack(VideoStreamTrack())
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


@pytest.fixture
async def aiortc_offer() -> AsyncIterator[tuple[RTCPeerConnection, str]]:
    pc, text = await _aiortc_offerer()
    yield pc, text
    await pc.close()


# --- parsing a Chrome-style offer --------------------------------------------


def test_chrome_offer_has_kinds_and_mids_in_m_line_order() -> None:
    offer = parse("offer", CHROME_OFFER)

    assert offer.type == "offer"
    assert [m.kind for m in offer.media] == ["audio", "video", "video", "application", "audio"]
    assert [m.mid for m in offer.media] == ["0", "1", "2", "3", "4"]
    assert offer.bundle_mids == ["0", "1", "2", "3", "4"]
    assert offer.media_by_mid("2") is offer.media[2]
    assert offer.media_by_mid("9") is None


def test_chrome_offer_transport_attributes() -> None:
    offer = parse("offer", CHROME_OFFER)

    for media in offer.media:
        assert media.port == 9
        assert not media.rejected
        assert media.ice_ufrag == "Vx1U"
        assert media.ice_pwd == "H2d5Tt9Aq8l2Xo3Zw7yS6kLm"
        assert media.fingerprints == [("sha-256", CHROME_FINGERPRINT)]
        assert media.setup == "actpass"
    assert offer.media[0].protocol == "UDP/TLS/RTP/SAVPF"
    assert offer.media[3].protocol == "UDP/DTLS/SCTP"


def test_chrome_offer_codecs_keep_the_payload_list_order() -> None:
    audio, camera, screen, data, g711 = parse("offer", CHROME_OFFER).media

    assert [(c.payload_type, c.name) for c in audio.codecs] == [
        (111, "opus"), (63, "red"), (9, "G722"), (0, "PCMU"), (8, "PCMA"), (126, "telephone-event"),
    ]
    assert [(c.payload_type, c.name) for c in camera.codecs] == [(96, "VP8"), (97, "rtx"), (102, "H264"), (103, "rtx")]
    assert [c.payload_type for c in screen.codecs] == [104, 105, 106, 107]
    assert data.codecs == []
    assert [c.name for c in g711.codecs] == ["PCMU", "PCMA"]


def test_chrome_offer_codec_parameters() -> None:
    audio, camera, screen, _, _ = parse("offer", CHROME_OFFER).media
    opus = audio.codecs[0]

    assert (opus.clock_rate, opus.channels) == (48000, 2)
    assert opus.fmtp == "minptime=10;useinbandfec=1"
    assert opus.fmtp_params() == {"minptime": "10", "useinbandfec": "1"}
    assert opus.mime_type("audio") == "audio/opus"
    assert audio.codecs[2].channels is None
    assert camera.codecs[1].fmtp_params() == {"apt": "96"}
    assert screen.codecs[0].fmtp_params()["packetization-mode"] == "0"
    assert screen.codecs[2].fmtp_params()["profile-level-id"] == "42e01f"


def test_chrome_offer_rtcp_feedback_per_codec() -> None:
    audio, camera, _, _, _ = parse("offer", CHROME_OFFER).media

    assert audio.codecs[0].feedback == [("transport-cc", "")]
    assert camera.codecs[0].feedback == [
        ("goog-remb", ""), ("transport-cc", ""), ("ccm", "fir"), ("nack", ""), ("nack", "pli"),
    ]
    assert camera.codecs[1].feedback == []


def test_wildcard_rtcp_feedback_applies_to_every_codec() -> None:
    media = video_offer("96 98", "a=rtpmap:96 VP8/90000", "a=rtpmap:98 VP9/90000", "a=rtcp-fb:* nack").media[0]

    assert [c.feedback for c in media.codecs] == [[("nack", "")], [("nack", "")]]


def test_chrome_offer_header_extensions() -> None:
    audio, camera, screen, _, _ = parse("offer", CHROME_OFFER).media

    assert audio.extensions == {1: AUDIO_LEVEL_URI, 2: ABS_SEND_TIME_URI, 3: TRANSPORT_CC_URI, 4: MID_URI}
    assert camera.extension_id(MID_URI) == 4
    assert camera.extension_id(RID_URI) == 10
    assert camera.extension_id(REPAIRED_RID_URI) == 11
    assert camera.extension_id(AUDIO_LEVEL_URI) is None
    assert screen.extensions == {4: MID_URI}


def test_chrome_offer_simulcast_rids_and_msid() -> None:
    audio, camera, screen, _, _ = parse("offer", CHROME_OFFER).media

    assert camera.rids == ["h", "m"]
    assert audio.rids == [] and screen.rids == []
    assert audio.msid == ("stream", "microphone")
    assert camera.msid == ("stream", "camera")
    assert screen.msid == ("stream", "screen")
    assert [m.direction for m in (audio, camera, screen)] == ["sendonly"] * 3


def test_chrome_offer_primary_ssrcs_leave_out_rtx() -> None:
    audio, camera, screen, _, _ = parse("offer", CHROME_OFFER).media

    assert screen.ssrcs == [3000, 3001]
    assert screen.ssrc_groups == [("FID", [3000, 3001])]
    assert screen.primary_ssrcs() == [3000]
    assert audio.primary_ssrcs() == [1001]
    assert camera.ssrcs == [] and camera.primary_ssrcs() == []


def test_only_send_rids_are_kept() -> None:
    media = video_offer("96", "a=rtpmap:96 VP8/90000", "a=rid:q send", "a=rid:r recv").media[0]

    assert media.rids == ["q"]


def test_transport_attributes_may_be_at_session_level() -> None:
    # Firefox puts a=fingerprint at session level.
    text = (
        "v=0\r\no=mozilla...THIS_IS_SDPARTA-99.0 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        f"a=fingerprint:sha-256 {CHROME_FINGERPRINT}\r\n"
        "a=group:BUNDLE 0\r\na=ice-options:trickle\r\na=msid-semantic:WMS *\r\n"
        "a=setup:actpass\r\na=ice-ufrag:3f7c9a1b\r\na=ice-pwd:1f0e2d3c4b5a69788796a5b4c3d2e1f0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 109\r\nc=IN IP4 0.0.0.0\r\na=sendonly\r\na=mid:0\r\na=rtcp-mux\r\n"
        "a=rtpmap:109 opus/48000/2\r\na=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1\r\n"
        "a=ssrc:2655508255 cname:{735484ea-4f6c-f74a-bd66-7425f8476c2e}\r\n"
    )

    media = parse("offer", text).media[0]

    assert media.fingerprints == [("sha-256", CHROME_FINGERPRINT)]
    assert media.ice_ufrag == "3f7c9a1b"
    assert media.ice_pwd == "1f0e2d3c4b5a69788796a5b4c3d2e1f0"
    assert media.setup == "actpass"


@pytest.mark.parametrize(
    "ufrag",
    [
        "3f7c9a1b",  # Firefox: 8 hex digits
        "12e45678",  # also 8 hex digits, and a float literal to a naive parser
        "01234567",  # all decimal digits with a leading zero
        "1000",
        "+123",
    ],
)
def test_ice_credentials_are_kept_verbatim(ufrag: str) -> None:
    # ICE compares ufrags as strings (RFC 8445 section 7.2.2); "12e45678"
    # must not come back as "1.2e+46" or "inf", nor "01234567" as "1234567".
    pwd = "00112233445566778899aabbccddeeff"

    media = parse("offer", minimal_offer(ufrag=ufrag, pwd=pwd)).media[0]

    assert media.ice_ufrag == ufrag
    assert media.ice_pwd == pwd


def test_direction_defaults_to_sendrecv() -> None:
    assert parse("offer", minimal_offer()).media[0].direction == "sendrecv"


def test_rejected_m_line_needs_no_transport_attributes() -> None:
    text = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\n"

    media = parse("answer", text).media[0]

    assert media.rejected
    assert media.ice_ufrag == ""
    assert media.fingerprints == []


# --- parsing an aiortc offer -------------------------------------------------


async def test_aiortc_offer_kinds_mids_and_codecs(aiortc_offer: tuple[RTCPeerConnection, str]) -> None:
    pc, text = aiortc_offer

    offer = parse("offer", text)

    assert [m.kind for m in offer.media] == ["audio", "video"]
    assert [m.mid for m in offer.media] == [t.mid for t in pc.getTransceivers()]
    assert offer.bundle_mids == [m.mid for m in offer.media]
    audio, video = offer.media
    assert [c.name for c in audio.codecs] == ["opus", "G722", "PCMU", "PCMA"]
    assert [c.name for c in video.codecs] == ["VP8", "rtx", "H264", "rtx", "H264", "rtx"]
    assert video.codecs[0].feedback == [("nack", ""), ("nack", "pli"), ("goog-remb", "")]
    assert video.codecs[1].fmtp == f"apt={video.codecs[0].payload_type}"
    assert video.codecs[2].fmtp_params()["packetization-mode"] == "1"
    assert video.extension_id(MID_URI) is not None
    assert audio.extension_id(AUDIO_LEVEL_URI) is not None


async def test_aiortc_offer_ssrcs_msid_and_transport(aiortc_offer: tuple[RTCPeerConnection, str]) -> None:
    pc, text = aiortc_offer
    audio_transceiver, video_transceiver = pc.getTransceivers()
    ice = video_transceiver.sender.transport.transport.iceGatherer.getLocalParameters()

    audio, video = parse("offer", text).media

    assert len(audio.primary_ssrcs()) == 1
    assert len(video.ssrcs) == 2
    assert [sem for sem, _ in video.ssrc_groups] == ["FID"]
    assert video.primary_ssrcs() == [video.ssrc_groups[0][1][0]]
    assert audio.msid is not None and audio.msid[1] == audio_transceiver.sender.track.id
    assert video.msid is not None and video.msid[1] == video_transceiver.sender.track.id
    assert audio.msid[0] == video.msid[0]
    assert video.ice_ufrag == ice.usernameFragment
    assert video.ice_pwd == ice.password
    assert video.setup == "actpass"
    assert video.direction == "sendrecv"


async def test_aiortc_offer_keeps_every_fingerprint(aiortc_offer: tuple[RTCPeerConnection, str]) -> None:
    # aiortc signals sha-256, sha-384 and sha-512 fingerprints of one
    # certificate; RFC 8122 section 5 lets the receiver pick the hash it
    # prefers among them, so all of them must survive parsing.
    pc, text = aiortc_offer
    dtls = pc.getTransceivers()[0].sender.transport.getLocalParameters()
    expected = [(fp.algorithm, fp.value) for fp in dtls.fingerprints]
    assert len(expected) == 3

    offer = parse("offer", text)

    assert offer.media[0].fingerprints == expected


# --- codec selection ---------------------------------------------------------


def test_select_codec_takes_the_first_supported_codec_with_supported_feedback() -> None:
    audio, camera, _, _, _ = parse("offer", CHROME_OFFER).media

    vp8 = select_codec(camera)
    opus = select_codec(audio)

    assert vp8 is not None and (vp8.payload_type, vp8.name, vp8.clock_rate) == (96, "VP8", 90000)
    assert vp8.feedback == [("goog-remb", ""), ("transport-cc", ""), ("ccm", "fir"), ("nack", ""), ("nack", "pli")]
    assert opus is not None and (opus.payload_type, opus.channels, opus.fmtp) == (111, 2, "minptime=10;useinbandfec=1")
    assert opus.feedback == [("transport-cc", "")]


def test_select_codec_skips_h264_packetization_mode_0() -> None:
    screen = parse("offer", CHROME_OFFER).media[2]

    h264 = select_codec(screen)

    assert h264 is not None
    assert h264.payload_type == 106
    assert h264.fmtp_params()["packetization-mode"] == "1"
    assert h264.feedback == [("nack", ""), ("nack", "pli"), ("transport-cc", "")]


def test_select_codec_treats_h264_without_fmtp_as_mode_0() -> None:
    media = video_offer("100", "a=rtpmap:100 H264/90000").media[0]

    assert select_codec(media) is None


def test_select_codec_never_picks_rtx_even_when_listed_first() -> None:
    media = video_offer("97 96", "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96", "a=rtpmap:96 VP8/90000").media[0]

    codec = select_codec(media)

    assert codec is not None and codec.name == "VP8"


def test_select_codec_matches_codec_names_case_insensitively() -> None:
    media = video_offer("96", "a=rtpmap:96 vp8/90000").media[0]

    codec = select_codec(media)

    assert codec is not None and codec.payload_type == 96


def test_select_codec_returns_none_without_a_supported_codec() -> None:
    _, _, _, data, g711 = parse("offer", CHROME_OFFER).media

    assert select_codec(g711) is None
    assert select_codec(data) is None
    assert select_codec(video_offer("98", "a=rtpmap:98 VP9/90000").media[0]) is None


def test_select_codec_returns_a_copy() -> None:
    camera = parse("offer", CHROME_OFFER).media[1]

    codec = select_codec(camera)
    assert codec is not None
    codec.feedback.clear()

    assert len(camera.codecs[0].feedback) == 5


async def test_select_codec_on_aiortc_video_picks_vp8(aiortc_offer: tuple[RTCPeerConnection, str]) -> None:
    _, text = aiortc_offer

    codec = select_codec(parse("offer", text).media[1])

    assert codec is not None and codec.name == "VP8"


# --- writing answers ---------------------------------------------------------


def chrome_answer(congestion_control: bool = True) -> str:
    offer = parse("offer", CHROME_OFFER)
    return write_answer(offer, [AnswerMedia(m, select_codec(m)) for m in offer.media], LOCAL, congestion_control)


def test_answer_is_ice_lite_passive_with_our_transport() -> None:
    answer = chrome_answer()
    session = sdp_transform.parse(answer)

    assert "a=ice-lite\r\n" in answer
    assert session["icelite"] == "ice-lite"
    accepted = [m for m in session["media"] if m["port"] != 0]
    assert len(accepted) == 3
    for media in accepted:
        assert media["setup"] == "passive"
        assert media["iceUfrag"] == LOCAL.ice_ufrag
        assert media["icePwd"] == LOCAL.ice_pwd
        assert media["fingerprint"] == {"type": "sha-256", "hash": LOCAL.fingerprint}
        assert media["rtcpMux"] == "rtcp-mux"
        assert media["direction"] == "recvonly"
    assert answer.count(CANDIDATE_LINE + "\r\n") == 3


def test_answer_keeps_m_line_order_and_rejects_with_port_0() -> None:
    answer = parse("answer", chrome_answer())

    assert [m.mid for m in answer.media] == ["0", "1", "2", "3", "4"]
    assert [m.kind for m in answer.media] == ["audio", "video", "video", "application", "audio"]
    assert [m.rejected for m in answer.media] == [False, False, False, True, True]
    assert answer.bundle_mids == ["0", "1", "2"]
    assert "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n" in chrome_answer()
    assert "m=audio 0 UDP/TLS/RTP/SAVPF 0\r\n" in chrome_answer()


def test_answer_accepts_exactly_the_selected_codec() -> None:
    audio, camera, screen, _, _ = parse("answer", chrome_answer()).media

    assert [(c.payload_type, c.name) for c in audio.codecs] == [(111, "opus")]
    assert audio.codecs[0].fmtp == "minptime=10;useinbandfec=1"
    assert [(c.payload_type, c.name) for c in camera.codecs] == [(96, "VP8")]
    assert camera.codecs[0].feedback == [("goog-remb", ""), ("transport-cc", ""), ("ccm", "fir"), ("nack", ""), ("nack", "pli")]
    assert [(c.payload_type, c.name) for c in screen.codecs] == [(106, "H264")]


def test_answer_negotiates_only_extensions_we_use() -> None:
    audio, camera, screen, _, _ = parse("answer", chrome_answer()).media

    assert audio.extensions == {1: AUDIO_LEVEL_URI, 3: TRANSPORT_CC_URI, 4: MID_URI}
    assert camera.extensions == {3: TRANSPORT_CC_URI, 4: MID_URI, 10: RID_URI, 11: REPAIRED_RID_URI}
    assert screen.extensions == {4: MID_URI}


def test_answer_without_congestion_control_negotiates_no_congestion_feedback() -> None:
    audio, camera, _, _, _ = parse("answer", chrome_answer(congestion_control=False)).media

    assert audio.extensions == {1: AUDIO_LEVEL_URI, 4: MID_URI}
    assert camera.extensions == {4: MID_URI, 10: RID_URI, 11: REPAIRED_RID_URI}
    assert audio.codecs[0].feedback == []
    assert camera.codecs[0].feedback == [("goog-remb", ""), ("ccm", "fir"), ("nack", ""), ("nack", "pli")]


def test_answer_receives_the_offered_simulcast_layers() -> None:
    answer = chrome_answer()

    assert "a=rid:h recv\r\n" in answer
    assert "a=rid:m recv\r\n" in answer
    assert "a=simulcast:recv h;m\r\n" in answer
    assert answer.count("a=simulcast:") == 1


def test_answer_to_recvonly_m_line_is_inactive() -> None:
    offer = parse("offer", minimal_offer("a=recvonly"))

    answer = parse("answer", write_answer(offer, [AnswerMedia(offer.media[0], select_codec(offer.media[0]))], LOCAL))

    assert answer.media[0].direction == "inactive"


def test_answer_rejecting_everything_has_no_bundle_group() -> None:
    offer = parse("offer", minimal_offer())

    text = write_answer(offer, [AnswerMedia(offer.media[0], None)], LOCAL)

    assert "a=group:BUNDLE" not in text
    assert parse("answer", text).media[0].rejected


async def test_aiortc_accepts_our_answer(aiortc_offer: tuple[RTCPeerConnection, str]) -> None:
    pc, text = aiortc_offer
    offer = parse("offer", text)
    answer = write_answer(offer, [AnswerMedia(m, select_codec(m)) for m in offer.media], LOCAL)

    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    assert pc.signalingState == "stable"
    assert [t.currentDirection for t in pc.getTransceivers()] == ["sendonly", "sendonly"]
    assert "a=ice-lite" in answer
    assert answer.count("a=setup:passive") == 2
    assert answer.count("a=recvonly") == 2
    assert CANDIDATE_LINE in answer
    assert f"a=group:BUNDLE {offer.media[0].mid} {offer.media[1].mid}\r\n" in answer


# --- writing subscriber offers -----------------------------------------------


OPUS = Codec(111, "opus", 48000, 2, "minptime=10;useinbandfec=1")
VP8 = Codec(96, "VP8", 90000, None, "", [("nack", ""), ("nack", "pli"), ("ccm", "fir"), ("goog-remb", "")])
SLOTS = [
    OfferMedia("audio", "0", OPUS, ssrc=1111, cname="pub-cname", stream_id="alice", track_id="alice-mic"),
    OfferMedia("video", "1", VP8, ssrc=2222, cname="pub-cname", stream_id="alice", track_id="alice-cam"),
    OfferMedia("video", "2", VP8, active=False),
]


def test_subscriber_offer_has_sendonly_slots_and_an_inactive_one() -> None:
    text = write_offer(SLOTS, LOCAL, session_version=7)

    offer = parse("offer", text)

    assert "o=- 1 7 IN IP4 127.0.0.1\r\n" in text
    assert "a=ice-lite\r\n" in text
    assert [m.direction for m in offer.media] == ["sendonly", "sendonly", "inactive"]
    assert [m.setup for m in offer.media] == ["actpass"] * 3
    assert offer.bundle_mids == ["0", "1", "2"]
    assert [m.extensions for m in offer.media] == [{1: MID_URI, 2: TRANSPORT_CC_URI}] * 3
    assert offer.media[0].ssrcs == [1111]
    assert offer.media[0].msid == ("alice", "alice-mic")
    assert offer.media[0].codecs[0].feedback == [("transport-cc", "")]
    assert offer.media[1].codecs[0].feedback == [("nack", ""), ("nack", "pli"), ("ccm", "fir"), ("transport-cc", ""), ("goog-remb", "")]
    assert offer.media[2].ssrcs == [] and offer.media[2].msid is None
    assert "a=ssrc:2222 cname:pub-cname\r\n" in text
    assert "a=ssrc:2222 msid:alice alice-cam\r\n" in text
    assert text.count(CANDIDATE_LINE) == 3


def test_subscriber_offer_without_congestion_control_asks_for_no_congestion_feedback() -> None:
    offer = parse("offer", write_offer(SLOTS, LOCAL, session_version=2, congestion_control=False))

    assert [m.extensions for m in offer.media] == [{1: MID_URI}] * 3
    assert offer.media[1].codecs[0].feedback == [("nack", ""), ("nack", "pli"), ("ccm", "fir")]


async def test_aiortc_answers_our_subscriber_offer() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        await pc.setRemoteDescription(RTCSessionDescription(write_offer(SLOTS, LOCAL, 1), "offer"))
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)

        assert pc.signalingState == "stable"
        transceivers = pc.getTransceivers()
        assert [t.mid for t in transceivers] == ["0", "1", "2"]
        assert [t.receiver.track is not None for t in transceivers] == [True, True, False]
        parsed = parse("answer", pc.localDescription.sdp)
        assert [m.setup for m in parsed.media] == ["active"] * 3
        assert [m.codecs[0].name for m in parsed.media] == ["opus", "VP8", "VP8"]
        assert [m.direction for m in parsed.media] == ["recvonly", "recvonly", "inactive"]
    finally:
        await pc.close()


# --- malformed descriptions --------------------------------------------------


def _replace(old: str, new: str) -> str:
    assert old in CHROME_OFFER
    return CHROME_OFFER.replace(old, new)


MALFORMED = {
    "empty": ("offer", "", "v=0"),
    "garbage": ("offer", "garbage", "v=0"),
    "no m-line": ("offer", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", "m-line"),
    "rtpmap without clock rate": ("offer", minimal_offer("a=rtpmap:96 VP8/"), "rtpmap"),
    "rtpmap payload type above 127": ("offer", minimal_offer("a=rtpmap:200 VP8/90000"), "rtpmap"),
    "rtpmap with a non-numeric clock rate": ("offer", minimal_offer("a=rtpmap:96 VP8/fast"), "rtpmap"),
    "duplicate mid": ("offer", _replace("a=mid:1\r\n", "a=mid:0\r\n"), "duplicate a=mid"),
    "missing mid": ("offer", _replace("a=mid:2\r\n", ""), "a=mid"),
    "missing ice-ufrag": ("offer", minimal_offer().replace("a=ice-ufrag:abcd\r\n", ""), "ice-ufrag"),
    "missing ice-pwd": ("offer", minimal_offer().replace("a=ice-pwd:0123456789abcdefghijkl\r\n", ""), "ice-pwd"),
    "missing fingerprint": ("offer", minimal_offer().replace(f"a=fingerprint:sha-256 {CHROME_FINGERPRINT}\r\n", ""), "fingerprint"),
    "wrong type pranswer": ("pranswer", CHROME_OFFER, "pranswer"),
    "wrong type rollback": ("rollback", CHROME_OFFER, "offer"),
    "unknown media kind": ("offer", minimal_offer().replace("m=audio", "m=text"), "media kind"),
    "m-line without a port": ("offer", minimal_offer().replace("m=audio 9 ", "m=audio  "), "port"),
    "extmap id 0": ("offer", minimal_offer("a=extmap:0 urn:ietf:params:rtp-hdrext:sdes:mid"), "extmap"),
    "extmap id 256": ("offer", minimal_offer("a=extmap:256 urn:ietf:params:rtp-hdrext:sdes:mid"), "extmap"),
    "ssrc above 32 bits": ("offer", minimal_offer("a=ssrc:4294967296 cname:x"), "ssrc"),
    "ssrc-group with non-numeric ssrcs": ("offer", minimal_offer("a=ssrc-group:FID abc def"), "ssrc-group"),
}


@pytest.mark.parametrize(("sdp_type", "text", "mentions"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_sdp_raises_sdp_error_with_a_message(sdp_type: str, text: str, mentions: str) -> None:
    try:
        parse(sdp_type, text)
    except SdpError as exc:
        assert mentions in str(exc)
    else:
        pytest.fail("parse accepted a malformed description")


# Odd but not obviously fatal: rejecting or tolerating is the parser's
# choice, but anything other than SdpError escapes the signaling handler's
# `except SdpError` and ends the participant's session.
ODD = {
    "msid with only a space": minimal_offer("a=msid: "),
    "rtpmap channels that are a superscript digit": minimal_offer("a=rtpmap:96 opus/48000/\u00b2"),
    "payload type list with a superscript digit": minimal_offer().replace("SAVPF 111", "SAVPF 111 \u00b2"),
    "rtcp-fb for an unknown payload type": minimal_offer("a=rtcp-fb:100 nack"),
    "fmtp for an unknown payload type": minimal_offer("a=fmtp:100 apt=111"),
    "ssrc-group naming no ssrcs": minimal_offer("a=ssrc-group:FID"),
    "simulcast without rids": minimal_offer("a=simulcast:send h;m"),
}


@pytest.mark.parametrize("text", ODD.values(), ids=ODD.keys())
def test_odd_sdp_parses_or_raises_sdp_error(text: str) -> None:
    try:
        parse("offer", text)
    except SdpError as exc:
        assert str(exc)


def test_non_string_sdp_raises_sdp_error() -> None:
    with pytest.raises(SdpError):
        parse("offer", None)  # type: ignore[arg-type]


@given(st.text(max_size=400))
def test_random_text_after_v0_parses_or_raises_sdp_error(text: str) -> None:
    try:
        parse("offer", "v=0\r\n" + text)
    except SdpError:
        pass


_LINE_STARTS = [
    "m=audio 9 UDP/TLS/RTP/SAVPF ", "m=video 0 UDP/TLS/RTP/SAVPF ", "m=", "a=mid:", "a=rtpmap:", "a=fmtp:",
    "a=rtcp-fb:", "a=extmap:", "a=ssrc:", "a=ssrc-group:FID ", "a=msid:", "a=rid:", "a=simulcast:",
    "a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:", "a=setup:", "a=group:BUNDLE ", "c=", "a=",
]


@given(st.lists(st.tuples(st.sampled_from(_LINE_STARTS), st.text(max_size=30)), max_size=25))
def test_random_attribute_lines_parse_or_raise_sdp_error(lines: list[tuple[str, str]]) -> None:
    # Behind a valid m-section, so the random lines reach the per-attribute checks.
    text = minimal_offer(*(start + value for start, value in lines))
    try:
        parse("offer", text)
    except SdpError:
        pass


async def test_parse_off_loop_parses_in_the_sdp_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threads = []

    def recording_parse(sdp_type: str, text: str) -> SessionDescription:
        threads.append(threading.current_thread())
        return parse(sdp_type, text)

    monkeypatch.setattr("mediapod.rtc.sdp.parse", recording_parse)
    offer = await parse_off_loop("offer", CHROME_OFFER)
    assert offer == parse("offer", CHROME_OFFER)
    assert threads and threads[0] is not threading.current_thread() and threads[0].name.startswith("sdp-parse")


async def test_parse_off_loop_raises_the_parse_error() -> None:
    with pytest.raises(SdpError):
        await parse_off_loop("offer", "v=0\r\nm=audio 9 RTP/AVP 0\r\n")


def test_answer_accepts_data_channels_on_the_bundle_transport_when_asked() -> None:
    """LiveKit's SDKs offer their data channels alone at join; a rejected-only answer would never connect."""
    offer = parse("offer", CHROME_OFFER)
    answers = [AnswerMedia(m, select_codec(m) if m.kind != "application" else None, data_channels=m.kind == "application") for m in offer.media]
    text = write_answer(offer, answers, LOCAL)
    session = sdp_transform.parse(text)

    (application,) = [m for m in session["media"] if m["type"] == "application"]
    assert (application["port"], application["protocol"], application["payloads"]) == (9, "UDP/DTLS/SCTP", "webrtc-datachannel")
    assert (application["sctpPort"], application["maxMessageSize"]) == (5000, 262144)
    assert (application["setup"], application["iceUfrag"]) == ("passive", LOCAL.ice_ufrag)
    assert application["fingerprint"] == {"type": "sha-256", "hash": LOCAL.fingerprint}
    assert str(application["mid"]) in parse("answer", text).bundle_mids
    assert offer.media[3].sctp_port == 5000
