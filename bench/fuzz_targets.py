"""What each fuzzed parser is fed, and which errors it is allowed to raise.

One target per untrusted input the media pod parses. A target takes the raw
bytes a fuzzer produced, hands them to the parser the way the pod does, and
swallows only the parser's documented error type, so anything that escapes a
target (IndexError, KeyError, RecursionError, an AssertionError from a
consistency check, ...) is a crash. bench/fuzz_worker.py runs a target under
atheris; bench/fuzz.py and the item-9 acceptance test drive the workers.

Kept free of seeds and of the runner so the worker, which imports this module
under atheris' coverage instrumentation, instruments only what it fuzzes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from mediapod.auth import AuthError, TokenVerifier
from mediapod.protocol import signal_pb2
from mediapod.rtc.sdp import SdpError, select_codec, select_rtx
from mediapod.rtc.sdp import parse as parse_sdp
from mediapod.rtc.speaker import AudioLevelTap
from mediapod.rtp.codecs import h264_is_keyframe, h264_nal_types, parse_vp8, vp8_is_keyframe
from mediapod.rtp.errors import MalformedPacket
from mediapod.rtp.packet import RtpHeader, RtpPacket, get_header_extension
from mediapod.rtp.rtcp import parse_rtcp
from mediapod.rtp.rtx import unwrap_rtx
from mediapod.rtp.twcc import TwccFeedback
from mediapod.signal import convert
from mediapod.transport.ice import IceLiteAgent, MalformedStun, local_ufrag_of, parse_stun

UDP_DATAGRAM_MAX = 1500
"""RTP, RTCP and STUN inputs are capped at one Ethernet-sized datagram."""

SDP_REALISTIC_MAX = 8192
"""Browsers' offers are 2-8 KB; bigger ones are the SDP size limit's business, not the grammar's."""

SIGNAL_MESSAGE_MAX = 16384
TOKEN_MAX = 4096

FUZZ_ICE_UFRAG = "fuzzUfrg"
FUZZ_ICE_PWD = "fuzz-ice-password-0123456"
FUZZ_API_KEY = "APIfuzz"
FUZZ_API_SECRET = "fuzz-secret-long-enough-for-hs256-0123456789"

_PEER = ("192.0.2.10", 50123)
_RTX_PAYLOAD_TYPE, _RTX_SSRC = 96, 0x11223344
_EXTENSION_IDS = (1, 2, 3, 14, 15, 200)


@dataclass(frozen=True, slots=True)
class FuzzTarget:
    """One parser entry point as a fuzzer sees it."""

    name: str
    run: Callable[[bytes], None]
    documented: str  # the error type the parser may raise, for the report
    max_len: int
    dictionary: tuple[bytes, ...] = ()  # libFuzzer tokens: cheap structure awareness


def _stun_agent() -> IceLiteAgent:
    agent = IceLiteAgent()
    agent.local_ufrag = FUZZ_ICE_UFRAG
    agent.local_pwd = FUZZ_ICE_PWD
    return agent


_AGENT = _stun_agent()


def fuzz_stun(data: bytes) -> None:
    """A datagram with a STUN first byte, as the UDP demux hands it to ICE."""
    try:
        message = parse_stun(data)
    except MalformedStun:
        return
    local_ufrag_of(message)
    _AGENT.handle_request(message, _PEER)


def fuzz_rtp(data: bytes) -> None:
    """A decrypted RTP packet through every reader the receive path has.

    Also checks that the hot-path look-up and the full parse agree on every
    element: one walk, one answer.
    """
    try:
        header = RtpHeader.parse(data)
    except MalformedPacket:
        return
    try:
        unwrap_rtx(data, header, _RTX_PAYLOAD_TYPE, _RTX_SSRC)
    except MalformedPacket:
        pass
    AudioLevelTap(extension_id=1).observe(data)
    try:
        extensions = RtpPacket.parse(data).extensions
    except MalformedPacket:
        return
    for ext_id in _EXTENSION_IDS:
        if get_header_extension(data, ext_id) != extensions.get(ext_id):
            raise AssertionError(f"get_header_extension and RtpPacket.parse disagree on id {ext_id}")


_EXTENSION_PROFILES = (0xBEDE, 0x1000, 0x1005, 0xABCD)


def fuzz_rtp_extensions(data: bytes) -> None:
    """Structure-aware RTP: a valid header around a fuzzed extension block.

    Byte 0 picks the profile, the rest is the block (zero-padded to a word),
    so nearly every input reaches the element walk instead of dying on the
    version or length checks.
    """
    if not data:
        return
    profile = _EXTENSION_PROFILES[data[0] % len(_EXTENSION_PROFILES)]
    block = data[1:] + b"\x00" * (-(len(data) - 1) % 4)
    packet = (
        b"\x90\x60\x00\x01\x00\x00\x00\x01\x11\x22\x33\x44"
        + profile.to_bytes(2, "big")
        + (len(block) // 4).to_bytes(2, "big")
        + block
        + b"\xde\xad"
    )
    fuzz_rtp(packet)


def fuzz_codecs(data: bytes) -> None:
    """An RTP payload through the VP8 and H.264 descriptor readers."""
    try:
        parse_vp8(data)
    except MalformedPacket:
        pass
    vp8_is_keyframe(data)
    h264_is_keyframe(data)
    try:
        h264_nal_types(data)
    except MalformedPacket:
        pass


def fuzz_rtcp(data: bytes) -> None:
    """A decrypted (compound) RTCP packet."""
    try:
        parse_rtcp(data)
    except MalformedPacket:
        pass


def fuzz_twcc(data: bytes) -> None:
    """The FCI of a TransportCC packet, as the bandwidth estimator decodes a subscriber's feedback.

    Whatever parses must serialize back to something that parses the same:
    a reader and a writer of one format that disagree would feed the
    estimator wrong arrival times.
    """
    try:
        feedback = TwccFeedback.parse(data)
    except MalformedPacket:
        return
    if TwccFeedback.parse(feedback.serialize()) != feedback:
        raise AssertionError("TwccFeedback does not survive serialize() and parse()")


def fuzz_sdp(data: bytes) -> None:
    """An offer's text, then the codec choice the answer is built from."""
    try:
        session = parse_sdp("offer", data.decode("utf-8", errors="replace"))
    except SdpError:
        return
    for media in session.media:
        codec = select_codec(media)
        if codec is not None:
            select_rtx(media, codec)


def fuzz_signal(data: bytes) -> None:
    """A SignalRequest off the gRPC stream, and the model objects built from it."""
    try:
        request = signal_pb2.SignalRequest.FromString(data)
    except DecodeError:
        return
    kind = request.WhichOneof("message")
    if kind == "add_track":
        convert.announcement_from_proto(request.add_track)
    elif kind == "subscription":
        list(request.subscription.track_sids)


_VERIFIER = TokenVerifier({FUZZ_API_KEY: FUZZ_API_SECRET})


def fuzz_token(data: bytes) -> None:
    """Whatever a client puts where the access token goes."""
    try:
        _VERIFIER.verify(data.decode("latin-1"))
    except AuthError:
        pass


_JWT_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")


def signed_token(claims_json: bytes) -> str:
    """An HS256 token over these claim bytes, signed with the fuzz key, so only the claims can be wrong."""
    payload = base64.urlsafe_b64encode(claims_json).rstrip(b"=")
    signing_input = _JWT_HEADER + b"." + payload
    signature = hmac.new(FUZZ_API_SECRET.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


def fuzz_token_claims(data: bytes) -> None:
    """Structure-aware tokens: fuzzed claims JSON with a valid signature, to reach claim checking."""
    try:
        _VERIFIER.verify(signed_token(data))
    except AuthError:
        pass


_SDP_TOKENS = (
    b"\r\n", b"v=0", b"m=audio 9 UDP/TLS/RTP/SAVPF ", b"m=video 9 UDP/TLS/RTP/SAVPF ", b"a=mid:",
    b"a=rtpmap:", b"a=fmtp:", b"a=rtcp-fb:", b"a=extmap:", b"a=ssrc:", b"a=ssrc-group:FID ",
    b"a=msid:", b"a=rid:", b"a=simulcast:send ", b"a=group:BUNDLE ", b"a=ice-ufrag:", b"a=ice-pwd:",
    b"a=fingerprint:sha-256 ", b"a=setup:actpass", b"a=sendonly", b"a=recvonly", b"a=candidate:",
    b"apt=", b"packetization-mode=1", b"VP8/90000", b"H264/90000", b"opus/48000/2", b"rtx/90000",
)
_TOKEN_TOKENS = (
    b'"iss":', b'"exp":', b'"nbf":', b'"sub":', b'"video":', b'"attributes":', b'"roomJoin":',
    b'"room":', b'"name":', b'"metadata":', b"true", b"null", b"1e400", b"-1", b"{}", b"[]",
)

TARGETS: dict[str, FuzzTarget] = {
    t.name: t
    for t in (
        FuzzTarget("stun", fuzz_stun, "MalformedStun", UDP_DATAGRAM_MAX,
                   (b"\x21\x12\xa4\x42", b"\x00\x06", b"\x00\x08", b"\x80\x28", b"\x80\x2a", b"\x00\x25")),
        FuzzTarget("rtp", fuzz_rtp, "MalformedPacket", UDP_DATAGRAM_MAX, (b"\xbe\xde", b"\x10\x00")),
        FuzzTarget("rtp-extensions", fuzz_rtp_extensions, "MalformedPacket", 1024),
        FuzzTarget("codecs", fuzz_codecs, "MalformedPacket", UDP_DATAGRAM_MAX),
        FuzzTarget("rtcp", fuzz_rtcp, "MalformedPacket", UDP_DATAGRAM_MAX,
                   (b"\xc8", b"\xc9", b"\xca", b"\xcb", b"\xcd", b"\xce", b"REMB")),
        FuzzTarget("twcc", fuzz_twcc, "MalformedPacket", UDP_DATAGRAM_MAX,
                   (b"\x1f\xff", b"\x20\x01", b"\x40\x01", b"\x9f\x1c", b"\xd2\x81")),
        FuzzTarget("sdp", fuzz_sdp, "SdpError", SDP_REALISTIC_MAX, _SDP_TOKENS),
        FuzzTarget("signal", fuzz_signal, "protobuf DecodeError", SIGNAL_MESSAGE_MAX),
        FuzzTarget("token", fuzz_token, "AuthError", TOKEN_MAX, (b"eyJ", b".")),
        FuzzTarget("token-claims", fuzz_token_claims, "AuthError", TOKEN_MAX, _TOKEN_TOKENS),
    )
}
