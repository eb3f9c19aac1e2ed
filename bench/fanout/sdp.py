"""The SDP the generator writes (a publisher's offer, a subscriber's answer) and reads (the SFU's side).

Only what ICE, DTLS and RTP routing need: no header extensions, no RTX, no
feedback, so every SFU forwards the same bare VP8 + Opus streams. Parsing is
sdp-transform's, a third-party grammar, not the pod's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import sdp_transform

OPUS_PT = 111
VP8_PT = 96


@dataclass(frozen=True)
class RemoteDescription:
    """The SFU's transport parameters, from its SDP or (mediasoup) from its API."""

    ufrag: str
    pwd: str
    fingerprint: str
    setup: str  # "active" | "passive" | "actpass"
    address: tuple[str, int]
    ice_lite: bool


def parse(sdp: str) -> RemoteDescription:
    """The first UDP host candidate and the session's ICE and DTLS parameters (BUNDLE: one transport)."""
    session = sdp_transform.parse(sdp)
    media = next(m for m in session["media"] if m.get("port", 0) != 0)

    def attribute(name: str) -> str:
        return str(media.get(name) or session.get(name) or "")

    fingerprint = media.get("fingerprint") or session.get("fingerprint")
    candidates = [c for c in media.get("candidates", []) if str(c["protocol"]).lower() == "udp" and ":" not in str(c["ip"])]
    if not candidates:
        raise ValueError(f"no IPv4 UDP candidate in the SFU's SDP:\n{sdp}")
    return RemoteDescription(
        ufrag=attribute("iceUfrag"),
        pwd=attribute("icePwd"),
        fingerprint=fingerprint["hash"],
        setup=attribute("setup") or "actpass",
        address=(candidates[0]["ip"], int(candidates[0]["port"])),
        ice_lite="icelite" in session,
    )


@dataclass(frozen=True)
class LocalTransport:
    """Our side's ICE and DTLS parameters, written into every m-line."""

    ufrag: str
    pwd: str
    fingerprint: str
    address: tuple[str, int]


def _transport_lines(local: LocalTransport, setup: str) -> list[str]:
    return [
        f"a=ice-ufrag:{local.ufrag}",
        f"a=ice-pwd:{local.pwd}",
        f"a=fingerprint:sha-256 {local.fingerprint}",
        f"a=setup:{setup}",
        "a=rtcp-mux",
        f"a=candidate:1 1 udp 2130706431 {local.address[0]} {local.address[1]} typ host",
        "a=end-of-candidates",
    ]


def publisher_offer(local: LocalTransport, audio_ssrc: int, video_ssrc: int, stream: str, audio_cid: str, video_cid: str) -> str:
    """sendonly Opus (mid 0) and VP8 (mid 1), bundled, with a=ssrc and a=msid (the pod matches its AddTrack cids on msid)."""
    lines = ["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=group:BUNDLE 0 1", "a=msid-semantic: WMS *"]
    for mid, kind, pt, codec, ssrc, cid in (
        ("0", "audio", OPUS_PT, "opus/48000/2", audio_ssrc, audio_cid),
        ("1", "video", VP8_PT, "VP8/90000", video_ssrc, video_cid),
    ):
        lines += [
            f"m={kind} 9 UDP/TLS/RTP/SAVPF {pt}", "c=IN IP4 0.0.0.0", f"a=mid:{mid}", "a=sendonly",
            f"a=msid:{stream} {cid}", f"a=rtpmap:{pt} {codec}",
            *([f"a=rtcp-fb:{pt} nack pli"] if kind == "video" else []),
            f"a=ssrc:{ssrc} cname:{stream}", f"a=ssrc:{ssrc} msid:{stream} {cid}",
            *_transport_lines(local, "actpass"),
        ]
    return "\r\n".join(lines) + "\r\n"


def subscriber_answer(offer: str, local: LocalTransport) -> str:
    """recvonly for every audio/video m-line of the SFU's offer, its first Opus or VP8 payload type; others rejected."""
    session = sdp_transform.parse(offer)
    lines = ["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0"]
    accepted, sections = [], []
    for media in session["media"]:
        mid = str(media.get("mid", len(sections)))
        wanted = {"audio": "opus", "video": "vp8"}.get(media["type"])
        rtp = next((r for r in media.get("rtp", []) if wanted and r["codec"].lower() == wanted), None)
        if rtp is None or media.get("port", 0) == 0:
            sections.append([f"m={media['type']} 0 {media['protocol']} {media['payloads']}", "c=IN IP4 0.0.0.0", f"a=mid:{mid}", "a=inactive"])
            continue
        accepted.append(mid)
        codec = f"{rtp['codec']}/{rtp['rate']}" + (f"/{rtp['encoding']}" if rtp.get("encoding") else "")
        sections.append([
            f"m={media['type']} 9 UDP/TLS/RTP/SAVPF {rtp['payload']}", "c=IN IP4 0.0.0.0", f"a=mid:{mid}", "a=recvonly",
            f"a=rtpmap:{rtp['payload']} {codec}", *_transport_lines(local, "active"),
        ])
    lines.append(f"a=group:BUNDLE {' '.join(accepted)}")
    for section in sections:
        lines += section
    return "\r\n".join(lines) + "\r\n"
