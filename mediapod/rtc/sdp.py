"""SDP for the SFU: parse peers' offers/answers, write our answers/offers.

The grammar is sdp-transform's; this module turns its loose dicts into a
typed, validated model and back. Every description we write carries
``a=ice-lite``, our DTLS fingerprint, one host candidate, rtcp-mux and a
BUNDLE group, because the media pod serves each PeerConnection on one
5-tuple (see transport/peer.py).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import sdp_transform

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
REPAIRED_RID_URI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
TRANSPORT_CC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

# Codecs forwarded without decoding, by lower-case mime type.
SUPPORTED_CODECS: frozenset[str] = frozenset({"audio/opus", "video/vp8", "video/h264"})
# Header extensions a publisher may send us; anything else is not negotiated.
ACCEPTED_EXTENSIONS: frozenset[str] = frozenset({MID_URI, RID_URI, REPAIRED_RID_URI, AUDIO_LEVEL_URI, TRANSPORT_CC_URI})
# Our SCTP endpoint's port and the largest message we take on a data channel
# (RFC 8841 a=sctp-port, a=max-message-size), said in every answer that
# accepts an application m-line.
SCTP_PORT = 5000
MAX_MESSAGE_SIZE = 262144
# The mid of the application m-line in our subscriber offers (track slots have numeric mids).
DATA_MID = "data"
TRANSPORT_CC_FEEDBACK = ("transport-cc", "")
REMB_FEEDBACK = ("goog-remb", "")
# RTCP feedback we act on: relay PLI/FIR, answer NACK, and congestion
# feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01 section 4,
# REMB): we send it to publishers and read it from subscribers.
ACCEPTED_FEEDBACK: frozenset[tuple[str, str]] = frozenset(
    {("nack", ""), ("nack", "pli"), ("ccm", "fir"), REMB_FEEDBACK, TRANSPORT_CC_FEEDBACK}
)
CONGESTION_FEEDBACK: frozenset[tuple[str, str]] = frozenset({REMB_FEEDBACK, TRANSPORT_CC_FEEDBACK})
# The RFC 8285 ids of the header extensions in our subscriber offers.
SUBSCRIBER_MID_EXTENSION_ID = 1
SUBSCRIBER_TRANSPORT_CC_EXTENSION_ID = 2

_TOKEN = re.compile(r"^[\w+/=.:-]+$")


class SdpError(ValueError):
    """An SDP we cannot use; the message tells the peer what is wrong."""


@dataclass(slots=True)
class Codec:
    """One payload type of an m-line."""

    payload_type: int
    name: str
    clock_rate: int
    channels: int | None = None
    fmtp: str = ""
    feedback: list[tuple[str, str]] = field(default_factory=list)

    def mime_type(self, kind: str) -> str:
        return f"{kind}/{self.name}"

    def fmtp_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        for item in self.fmtp.split(";"):
            key, _, value = item.strip().partition("=")
            if key:
                params[key.lower()] = value
        return params


@dataclass(slots=True)
class MediaDescription:
    """One m-line, reduced to what the SFU uses."""

    kind: str
    mid: str
    port: int
    protocol: str
    direction: str
    codecs: list[Codec]
    extensions: dict[int, str]
    ssrcs: list[int]
    ssrc_groups: list[tuple[str, list[int]]]
    msid: tuple[str, str] | None
    rids: list[str]
    ice_ufrag: str
    ice_pwd: str
    fingerprints: list[tuple[str, str]]
    setup: str
    sctp_port: int = 0  # a=sctp-port of an application m-line (data channels); 0 if none

    @property
    def rejected(self) -> bool:
        return self.port == 0

    def extension_id(self, uri: str) -> int | None:
        for ext_id, ext_uri in self.extensions.items():
            if ext_uri == uri:
                return ext_id
        return None

    def rtx_ssrc_of(self, ssrc: int) -> int | None:
        """The RTX SSRC paired with ssrc by an ssrc-group FID line."""
        for semantics, group in self.ssrc_groups:
            if semantics == "FID" and len(group) == 2 and group[0] == ssrc:
                return group[1]
        return None

    def primary_ssrcs(self) -> list[int]:
        """SSRCs that carry media, leaving out FID (RTX) and FEC-FR repair streams."""
        repair = {group[1] for sem, group in self.ssrc_groups if sem in ("FID", "FEC-FR") and len(group) > 1}
        return [ssrc for ssrc in self.ssrcs if ssrc not in repair]


@dataclass(slots=True)
class SessionDescription:
    """A parsed offer or answer."""

    type: str
    media: list[MediaDescription]
    bundle_mids: list[str]

    def media_by_mid(self, mid: str) -> MediaDescription | None:
        for media in self.media:
            if media.mid == mid:
                return media
        return None


# One worker thread parses the pod's descriptions: they queue behind each
# other instead of all contending with the event loop for the GIL, so the loop
# always gets at least every other switch interval.
_PARSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sdp-parse")


async def parse_off_loop(sdp_type: str, text: str) -> SessionDescription:
    """parse() in the pod's SDP worker thread, for descriptions too large to parse on the event loop.

    sdp-transform is pure Python (about 0.25 ms per KiB here): a 128 KiB offer
    would hold the loop, and every room's media with it, for 30 ms or more.
    """
    return await asyncio.get_running_loop().run_in_executor(_PARSER, parse, sdp_type, text)


def parse(sdp_type: str, text: str) -> SessionDescription:
    """Parse and validate an SDP offer/answer from a peer; raises SdpError."""
    if sdp_type not in ("offer", "answer"):
        raise SdpError(f"SDP type must be 'offer' or 'answer', not {sdp_type!r}")
    if not isinstance(text, str) or not text.lstrip().startswith("v=0"):
        raise SdpError("SDP must start with 'v=0'")
    try:
        raw = sdp_transform.parse(text)
    except Exception as exc:  # noqa: BLE001 - the grammar's regexes fail in many ways
        raise SdpError(f"SDP does not parse: {exc}") from None
    raw_media = raw.get("media") or []
    if not raw_media:
        raise SdpError("SDP has no m-line")
    sections = _verbatim_attributes(text)
    if len(sections) != len(raw_media) + 1:
        raise SdpError("SDP has m-lines that do not parse")
    bundle: list[str] = []
    for group in raw.get("groups") or []:
        if str(group.get("type")) == "BUNDLE":
            bundle = str(group.get("mids", "")).split()
    media = [_parse_media(index, m, sections[0], sections[index + 1]) for index, m in enumerate(raw_media)]
    mids = [m.mid for m in media]
    if len(set(mids)) != len(mids):
        raise SdpError("duplicate a=mid values")
    return SessionDescription(type=sdp_type, media=media, bundle_mids=bundle)


# Attributes read from the text itself: sdp-transform turns values that look
# like numbers into numbers (ufrag "0123e5" would become a float), keeps only
# the last of repeated a=fingerprint lines, and drops session-level a=setup.
_VERBATIM = ("ice-ufrag", "ice-pwd", "fingerprint", "setup")


def _verbatim_attributes(text: str) -> list[dict[str, list[str]]]:
    """Per section (session first, then each m-line), the raw values of _VERBATIM attributes."""
    sections: list[dict[str, list[str]]] = [{}]
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("m="):
            sections.append({})
        elif line.startswith("a="):
            name, _, value = line[2:].partition(":")
            if name in _VERBATIM:
                sections[-1].setdefault(name, []).append(value.strip())
    return sections


def _fingerprints(section: dict[str, list[str]]) -> list[tuple[str, str]]:
    fingerprints = []
    for value in section.get("fingerprint", []):
        algorithm, _, digest = value.partition(" ")
        if algorithm and digest.strip():
            fingerprints.append((algorithm.lower(), digest.strip()))
    return fingerprints


def _parse_media(
    index: int, m: dict[str, Any], session: dict[str, list[str]], verbatim: dict[str, list[str]]
) -> MediaDescription:
    where = f"m-line {index}"
    kind = m.get("type")
    if kind is None:
        raise SdpError(f"{where}: the m= line does not parse (expected 'm=<kind> <port> <proto> <fmt>...')")
    if kind not in ("audio", "video", "application"):
        raise SdpError(f"{where}: unknown media kind {kind!r}")
    port = m.get("port")
    if not isinstance(port, int):
        raise SdpError(f"{where}: bad port")
    mid = m.get("mid")
    if mid is None or not _TOKEN.match(str(mid)):
        raise SdpError(f"{where}: missing or invalid a=mid")
    ufrag = (verbatim.get("ice-ufrag") or session.get("ice-ufrag") or [""])[0]
    pwd = (verbatim.get("ice-pwd") or session.get("ice-pwd") or [""])[0]
    fingerprints = _fingerprints(verbatim) or _fingerprints(session)
    setup = (verbatim.get("setup") or session.get("setup") or [""])[0]
    if port != 0:
        if not ufrag or not pwd:
            raise SdpError(f"{where}: missing a=ice-ufrag / a=ice-pwd")
        if not fingerprints:
            raise SdpError(f"{where}: missing a=fingerprint")
    codecs = _parse_codecs(where, kind, m) if kind != "application" else []
    extensions: dict[int, str] = {}
    for ext in m.get("ext") or []:
        ext_id = ext.get("value")
        if not isinstance(ext_id, int) or not 1 <= ext_id <= 255:
            raise SdpError(f"{where}: bad a=extmap id {ext_id!r}")
        extensions[ext_id] = str(ext.get("uri", ""))
    ssrcs: list[int] = []
    for line in m.get("ssrcs") or []:
        ssrc = line.get("id")
        if not isinstance(ssrc, int) or not 0 <= ssrc < 2**32:
            raise SdpError(f"{where}: bad a=ssrc {ssrc!r}")
        if ssrc not in ssrcs:
            ssrcs.append(ssrc)
    groups: list[tuple[str, list[int]]] = []
    for group in m.get("ssrcGroups") or []:
        try:
            members = [int(s) for s in str(group.get("ssrcs", "")).split()]
        except ValueError:
            raise SdpError(f"{where}: bad a=ssrc-group") from None
        groups.append((str(group.get("semantics", "")), members))
    msid = None
    if m.get("msid"):
        parts = str(m["msid"]).split()
        if parts:
            msid = (parts[0], parts[1] if len(parts) > 1 else "")
    rids = [str(r.get("id")) for r in m.get("rids") or [] if r.get("direction") == "send"]
    sctp_port = m.get("sctpPort")
    if kind == "application" and sctp_port is not None and (not isinstance(sctp_port, int) or not 0 < sctp_port < 65536):
        raise SdpError(f"{where}: bad a=sctp-port {sctp_port!r}")
    return MediaDescription(
        kind=kind,
        mid=str(mid),
        port=port,
        protocol=str(m.get("protocol", "")),
        direction=str(m.get("direction") or "sendrecv"),
        codecs=codecs,
        extensions=extensions,
        ssrcs=ssrcs,
        ssrc_groups=groups,
        msid=msid,
        rids=rids,
        ice_ufrag=ufrag,
        ice_pwd=pwd,
        fingerprints=fingerprints,
        setup=str(setup),
        sctp_port=sctp_port if isinstance(sctp_port, int) else 0,
    )


def _parse_codecs(where: str, kind: str, m: dict[str, Any]) -> list[Codec]:
    codecs: dict[int, Codec] = {}
    for rtp in m.get("rtp") or []:
        pt = rtp.get("payload")
        rate = rtp.get("rate")
        if not isinstance(pt, int) or not 0 <= pt <= 127 or not isinstance(rate, int) or rate <= 0:
            raise SdpError(f"{where}: bad a=rtpmap")
        channels = rtp.get("encoding")
        codecs[pt] = Codec(
            payload_type=pt,
            name=str(rtp.get("codec", "")),
            clock_rate=rate,
            channels=channels if isinstance(channels, int) else None,
        )
    for fmtp in m.get("fmtp") or []:
        codec = codecs.get(fmtp.get("payload"))
        if codec is not None:
            codec.fmtp = str(fmtp.get("config", ""))
    for fb in m.get("rtcpFb") or []:
        pt = fb.get("payload")
        targets = codecs.values() if pt == "*" else [codecs[pt]] if pt in codecs else []
        for codec in targets:
            codec.feedback.append((str(fb.get("type", "")), str(fb.get("subtype") or "")))
    # Order follows the m-line's payload list: that is the peer's preference.
    order: list[int] = []
    for token in str(m.get("payloads", "")).split():
        if token.isascii() and token.isdigit() and int(token) in codecs:
            order.append(int(token))
    return [codecs[pt] for pt in order] + [c for pt, c in codecs.items() if pt not in order]


@dataclass(frozen=True, slots=True)
class LocalParameters:
    """What every description we write says about our side of the transport."""

    ice_ufrag: str
    ice_pwd: str
    fingerprint: str
    candidate_ip: str
    candidate_port: int


@dataclass(slots=True)
class AnswerMedia:
    """Our answer to one offered m-line: the codec we accept, the data channels, or rejection."""

    offer: MediaDescription
    codec: Codec | None  # None rejects an audio/video m-line (port 0)
    rtx: Codec | None = None  # the offered RTX for codec, when the publisher can retransmit
    data_channels: bool = False  # accept an application m-line (SCTP over the bundle's DTLS)
    inactive: bool = False  # keep an m-line that carries no track in the bundle, receiving nothing

    @property
    def accepted(self) -> bool:
        return self.codec is not None or self.data_channels


@dataclass(slots=True)
class OfferMedia:
    """One m-line of a subscriber offer: a forwarded track, or an inactive slot."""

    kind: str
    mid: str
    codec: Codec
    ssrc: int = 0
    cname: str = ""
    stream_id: str = ""
    track_id: str = ""
    active: bool = True
    rtx: Codec | None = None  # RTX (RFC 4588) for codec; then rtx_ssrc carries retransmissions
    rtx_ssrc: int = 0


def select_codec(media: MediaDescription) -> Codec | None:
    """The publisher's most preferred codec we can forward, with feedback we support."""
    for codec in media.codecs:
        if codec.mime_type(media.kind).lower() not in SUPPORTED_CODECS:
            continue
        if codec.name.lower() == "h264" and codec.fmtp_params().get("packetization-mode", "0") != "1":
            # Mode 0 (single NAL) is legal but browsers send mode 1; one mode
            # keeps every subscriber's H.264 negotiation identical.
            continue
        return Codec(
            payload_type=codec.payload_type,
            name=codec.name,
            clock_rate=codec.clock_rate,
            channels=codec.channels,
            fmtp=codec.fmtp,
            feedback=[fb for fb in codec.feedback if fb in ACCEPTED_FEEDBACK],
        )
    return None


def select_rtx(media: MediaDescription, primary: Codec) -> Codec | None:
    """The offered RTX codec whose apt is the primary codec, if retransmission is offered."""
    for codec in media.codecs:
        if codec.name.lower() == "rtx" and codec.fmtp_params().get("apt") == str(primary.payload_type):
            return Codec(codec.payload_type, codec.name, codec.clock_rate, None, codec.fmtp)
    return None


def rtx_codec(payload_type: int, primary: Codec) -> Codec:
    """An RTX codec retransmitting ``primary``."""
    return Codec(payload_type, "rtx", primary.clock_rate, None, f"apt={primary.payload_type}")


def write_answer(
    offer: SessionDescription, answers: Iterable[AnswerMedia], local: LocalParameters, congestion_control: bool = True
) -> str:
    """Our answer to a publisher offer: recvonly for accepted m-lines, port 0 otherwise.

    An accepted application m-line shares the bundle's transport: LiveKit's
    clients open their data channels in an offer that carries nothing else,
    and a PeerConnection whose every m-line is rejected never connects.
    With congestion_control, transport-wide sequence numbers and
    ``transport-cc`` feedback are accepted, so the publisher's send-side
    estimator hears from us; without, the answer is what it was before we
    sent feedback: REMB negotiated but never sent, so a browser keeps its
    start bitrate.
    """
    accepted_extensions = ACCEPTED_EXTENSIONS if congestion_control else ACCEPTED_EXTENSIONS - {TRANSPORT_CC_URI}
    media = []
    for answer in answers:
        off = answer.offer
        if off.kind == "application" and answer.data_channels:
            media.append(_data_channel_media(off.mid, local))
            continue
        if answer.codec is None or off.kind == "application":
            media.append(_rejected(off))
            continue
        codec = answer.codec
        if not congestion_control:
            codec = replace(codec, feedback=[fb for fb in codec.feedback if fb != TRANSPORT_CC_FEEDBACK])
        entry = _media_base(off.kind, off.mid, codec, local, answer.rtx)
        receiving = not answer.inactive and off.direction in ("sendrecv", "sendonly")
        entry["direction"] = "recvonly" if receiving else "inactive"
        entry["ext"] = [
            {"value": ext_id, "uri": uri} for ext_id, uri in sorted(off.extensions.items()) if uri in accepted_extensions
        ]
        if off.rids and receiving:
            entry["rids"] = [{"id": rid, "direction": "recv"} for rid in off.rids]
            entry["simulcast"] = {"dir1": "recv", "list1": ";".join(off.rids)}
        media.append(entry)
    accepted = [m["mid"] for m in media if m["port"] != 0]
    return _write_session(media, accepted, 1)


def write_offer(
    slots: Iterable[OfferMedia],
    local: LocalParameters,
    session_version: int,
    data_at: int | None = None,
    congestion_control: bool = True,
) -> str:
    """Our offer on a subscriber PeerConnection: one sendonly m-line per forwarded track.

    With data_at, the application m-line of the pod's data channels (mid
    DATA_MID) sits at that index: m-lines never move once offered.
    session_version must grow with every offer (RFC 3264 section 8).
    With congestion_control every m-line offers the transport-wide sequence
    number extension and transport-cc/REMB feedback, so the subscriber tells
    us what its link carries.
    """
    extensions = [{"value": SUBSCRIBER_MID_EXTENSION_ID, "uri": MID_URI}]
    if congestion_control:
        extensions.append({"value": SUBSCRIBER_TRANSPORT_CC_EXTENSION_ID, "uri": TRANSPORT_CC_URI})
    media = []
    for slot in slots:
        if len(media) == data_at:
            media.append(_data_channel_media(DATA_MID, local) | {"setup": "actpass"})
        codec = slot.codec
        feedback = [fb for fb in codec.feedback if fb not in CONGESTION_FEEDBACK]
        if congestion_control:
            # REMB is for video only, as browsers offer it.
            feedback += [TRANSPORT_CC_FEEDBACK, REMB_FEEDBACK] if slot.kind == "video" else [TRANSPORT_CC_FEEDBACK]
        entry = _media_base(slot.kind, slot.mid, replace(codec, feedback=feedback), local, slot.rtx if slot.active else None)
        entry["setup"] = "actpass"
        entry["ext"] = list(extensions)
        if slot.active:
            entry["direction"] = "sendonly"
            entry["msid"] = f"{slot.stream_id} {slot.track_id}"
            ssrcs = [slot.ssrc, slot.rtx_ssrc] if slot.rtx is not None else [slot.ssrc]
            entry["ssrcs"] = [
                line
                for ssrc in ssrcs
                for line in (
                    {"id": ssrc, "attribute": "cname", "value": slot.cname},
                    {"id": ssrc, "attribute": "msid", "value": f"{slot.stream_id} {slot.track_id}"},
                )
            ]
            if slot.rtx is not None:
                entry["ssrcGroups"] = [{"semantics": "FID", "ssrcs": f"{slot.ssrc} {slot.rtx_ssrc}"}]
        else:
            entry["direction"] = "inactive"
        media.append(entry)
    if len(media) == data_at:
        media.append(_data_channel_media(DATA_MID, local) | {"setup": "actpass"})
    return _write_session(media, [m["mid"] for m in media], session_version)


def _data_channel_media(mid: str, local: LocalParameters) -> dict[str, Any]:
    """An application m-line for SCTP over DTLS (RFC 8841), on the bundle's single transport."""
    return {
        "type": "application",
        "port": 9,
        "protocol": "UDP/DTLS/SCTP",
        "payloads": "webrtc-datachannel",
        "connection": {"version": 4, "ip": "0.0.0.0"},
        "mid": mid,
        "sctpPort": SCTP_PORT,
        "maxMessageSize": MAX_MESSAGE_SIZE,
        **_transport_attributes(local),
    }


def _transport_attributes(local: LocalParameters) -> dict[str, Any]:
    """ICE, DTLS and candidate attributes: the same in every m-line, since all share one transport."""
    return {
        "iceUfrag": local.ice_ufrag,
        "icePwd": local.ice_pwd,
        "fingerprint": {"type": "sha-256", "hash": local.fingerprint},
        "setup": "passive",
        "candidates": [
            {
                "foundation": "1",
                "component": 1,
                "protocol": "udp",
                "priority": 2130706431,
                "ip": local.candidate_ip,
                "port": local.candidate_port,
                "type": "host",
            }
        ],
        "endOfCandidates": "end-of-candidates",
    }


def _media_base(kind: str, mid: str, codec: Codec, local: LocalParameters, rtx: Codec | None = None) -> dict[str, Any]:
    codecs = [codec, rtx] if rtx is not None else [codec]
    rtp = []
    for c in codecs:
        line: dict[str, Any] = {"payload": c.payload_type, "codec": c.name, "rate": c.clock_rate}
        if c.channels:
            line["encoding"] = c.channels
        rtp.append(line)
    entry: dict[str, Any] = {
        "type": kind,
        "port": 9,
        "protocol": "UDP/TLS/RTP/SAVPF",
        "payloads": " ".join(str(c.payload_type) for c in codecs),
        "connection": {"version": 4, "ip": "0.0.0.0"},
        "mid": mid,
        "rtcpMux": "rtcp-mux",
        "rtp": rtp,
        "fmtp": [{"payload": c.payload_type, "config": c.fmtp} for c in codecs if c.fmtp],
        "rtcpFb": [
            {"payload": codec.payload_type, "type": fb_type, **({"subtype": sub} if sub else {})}
            for fb_type, sub in codec.feedback
        ],
        **_transport_attributes(local),
    }
    return entry


def _rejected(off: MediaDescription) -> dict[str, Any]:
    fmt = str(off.codecs[0].payload_type) if off.codecs else ("webrtc-datachannel" if off.kind == "application" else "0")
    return {
        "type": off.kind,
        "port": 0,
        "protocol": off.protocol or "UDP/TLS/RTP/SAVPF",
        "payloads": fmt,
        "connection": {"version": 4, "ip": "0.0.0.0"},
        "mid": off.mid,
        "direction": "inactive",
    }


def _write_session(media: list[dict[str, Any]], bundle: list[str], session_version: int) -> str:
    session: dict[str, Any] = {
        "version": 0,
        "origin": {
            "username": "-",
            "sessionId": 1,
            "sessionVersion": session_version,
            "netType": "IN",
            "ipVer": 4,
            "address": "127.0.0.1",
        },
        "name": "-",
        "timing": {"start": 0, "stop": 0},
        "icelite": "ice-lite",
        "msidSemantic": {"semantic": "WMS", "token": "*"},
        "media": media,
    }
    if bundle:
        session["groups"] = [{"type": "BUNDLE", "mids": " ".join(bundle)}]
    return sdp_transform.write(session)


def require_verifiable_fingerprints(description: SessionDescription, algorithms: frozenset[str] | set[str]) -> None:
    """Refuse a description now if DTLS could not verify the peer's certificate against it later.

    Raises:
        SdpError: naming the m-line, the hashes it offers and the ones we check.
    """
    for media in description.media:
        if media.rejected or any(algorithm in algorithms for algorithm, _ in media.fingerprints):
            continue
        offered = ", ".join(sorted({algorithm for algorithm, _ in media.fingerprints})) or "none"
        raise SdpError(
            f"m-line {media.mid} has no a=fingerprint this server can verify "
            f"(offered: {offered}; supported: {', '.join(sorted(algorithms))})"
        )
