"""Real, valid inputs to start each fuzz target from.

Mutating real inputs reaches deep code in seconds where random bytes stall at
the first length check, so every target starts from what the unit tests
already pin down as real traffic: their byte vectors (RTP, RTCP, codec
payloads, the RFC 5769 STUN sample), a Chrome offer, requests and tokens
built with the same libraries the clients use. Only bench/fuzz.py imports this
module; the fuzz workers get the seeds as corpus files.
"""

from __future__ import annotations

import base64
import json

from aioice import stun

from bench.fuzz_targets import FUZZ_API_KEY, FUZZ_API_SECRET, FUZZ_ICE_PWD, FUZZ_ICE_UFRAG
from mediapod.auth import AccessToken, VideoGrant
from mediapod.protocol import models_pb2, signal_pb2
from mediapod.rtp.twcc import TwccFeedback
from tests.unit.rtc import test_sdp
from tests.unit.rtp import test_codecs, test_header_extension_walk, test_packet, test_rtcp, test_twcc
from tests.support.stun_requests import RFC5769_REQUEST
from tests.unit.transport import test_ice


def _binding_request(*, use_candidate: bool, integrity: bool) -> bytes:
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST, transaction_id=test_ice.TRANSACTION_ID)
    request.attributes["USERNAME"] = f"{FUZZ_ICE_UFRAG}:peer"
    request.attributes["PRIORITY"] = 0x6E0001FF
    request.attributes["ICE-CONTROLLING"] = 0x932FF9B151263B36
    if use_candidate:
        request.attributes["USE-CANDIDATE"] = None
    if integrity:
        request.add_message_integrity(FUZZ_ICE_PWD.encode())
    request.add_fingerprint()
    return bytes(request)


def stun_seeds() -> list[bytes]:
    return [
        RFC5769_REQUEST,
        _binding_request(use_candidate=False, integrity=True),
        _binding_request(use_candidate=True, integrity=True),
        _binding_request(use_candidate=True, integrity=False),
    ]


def _walk_vectors() -> list[bytes]:
    return [
        test_header_extension_walk.rtp_with_block(profile, block)
        for _, profile, block, _ in test_header_extension_walk.VECTORS
    ]


def rtp_seeds() -> list[bytes]:
    vectors = [
        test_packet.PLAIN, test_packet.WITH_CSRCS, test_packet.WITH_PADDING, test_packet.ONE_BYTE_EXT,
        test_packet.TWO_BYTE_EXT, test_packet.ONE_BYTE_EXT_WITH_STOP, test_packet.OTHER_PROFILE_EXT,
    ]
    return vectors + _walk_vectors()


def rtp_extension_seeds() -> list[bytes]:
    """The walk's vectors in the target's own shape: a profile selector byte, then the block."""
    selector = {0xBEDE: 0, 0x1000: 1, 0x1005: 2, 0xABCD: 3}
    return [
        bytes((selector[profile],)) + bytes.fromhex(block)
        for _, profile, block, _ in test_header_extension_walk.VECTORS
    ]


def codec_seeds() -> list[bytes]:
    return [value for name, value in vars(test_codecs).items() if name.startswith(("VP8_", "H264_")) and isinstance(value, bytes)]


def rtcp_seeds() -> list[bytes]:
    vectors = [vector for vector, _ in test_rtcp.VECTORS.values()]
    return vectors + [test_rtcp.SR_VECTOR + test_rtcp.SDES_VECTOR, test_rtcp.RR_VECTOR + test_rtcp.REMB_VECTOR]


def twcc_seeds() -> list[bytes]:
    """The hand-computed FCI vectors, and a realistic one: 100 packets 1 ms apart with a few losses."""
    realistic = TwccFeedback(4000, 1234, 17, [None if i % 23 == 5 else 1000 * i for i in range(100)]).serialize()
    return [raw for raw, _ in test_twcc.VECTORS.values()] + [realistic]


def sdp_seeds() -> list[bytes]:
    texts = [test_sdp.CHROME_OFFER, test_sdp.minimal_offer(), *test_sdp.ODD.values()]
    return [text.encode() for text in texts]


def signal_seeds() -> list[bytes]:
    requests = [
        signal_pb2.SignalRequest(join=signal_pb2.JoinRequest(token="eyJhbGciOiJIUzI1NiJ9.e30.x", room="r")),
        signal_pb2.SignalRequest(request_id=7, offer=signal_pb2.SessionDescription(type="offer", sdp=test_sdp.CHROME_OFFER)),
        signal_pb2.SignalRequest(answer=signal_pb2.SessionDescription(type="answer", sdp=test_sdp.minimal_offer())),
        signal_pb2.SignalRequest(trickle=signal_pb2.TrickleRequest(candidate_init='{"candidate":""}', target=1)),
        signal_pb2.SignalRequest(
            add_track=signal_pb2.AddTrackRequest(
                cid="cam", name="camera", type=models_pb2.VIDEO, source=models_pb2.CAMERA, width=1280, height=720,
                layers=[models_pb2.SimulcastLayer(rid=rid, width=w, height=h) for rid, w, h in
                        (("q", 320, 180), ("h", 640, 360), ("f", 1280, 720))],
            )
        ),
        signal_pb2.SignalRequest(mute=signal_pb2.MuteTrackRequest(sid="TR_x", muted=True)),
        signal_pb2.SignalRequest(subscription=signal_pb2.UpdateSubscription(track_sids=["TR_a", "TR_b"], subscribe=True)),
        signal_pb2.SignalRequest(track_settings=signal_pb2.UpdateTrackSettings(track_sids=["TR_a"], quality=2, max_temporal_layer=1)),
        signal_pb2.SignalRequest(remove_track=signal_pb2.RemoveTrackRequest(sid="TR_a")),
        signal_pb2.SignalRequest(leave=signal_pb2.LeaveRequest()),
        signal_pb2.SignalRequest(ping=signal_pb2.Ping(timestamp=1_700_000_000_000)),
    ]
    return [request.SerializeToString() for request in requests]


def _tokens() -> list[str]:
    base = AccessToken(FUZZ_API_KEY, FUZZ_API_SECRET)
    return [
        base.with_identity("alice").with_grant(VideoGrant(room_join=True, room="room")).to_jwt(),
        base.with_identity("bob").with_name("Bob").with_metadata('{"a":1}').with_attributes({"k": "v"})
        .with_grant(VideoGrant(room_join=True, room="room", can_publish=False, hidden=True)).to_jwt(),
        base.with_grant(VideoGrant(room_admin=True, room_create=True, room_list=True, room="room")).to_jwt(),
    ]


def token_seeds() -> list[bytes]:
    return [token.encode() for token in _tokens()]


def token_claims_seeds() -> list[bytes]:
    """The claims JSON inside real tokens, which the target signs again after mutation."""
    claims = []
    for token in _tokens():
        payload = token.split(".")[1]
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims.append(json.dumps(json.loads(decoded), separators=(",", ":")).encode())
    return claims


SEEDS = {
    "stun": stun_seeds,
    "rtp": rtp_seeds,
    "rtp-extensions": rtp_extension_seeds,
    "codecs": codec_seeds,
    "rtcp": rtcp_seeds,
    "twcc": twcc_seeds,
    "sdp": sdp_seeds,
    "signal": signal_seeds,
    "token": token_seeds,
    "token-claims": token_claims_seeds,
}
