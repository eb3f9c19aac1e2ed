"""A client of the room model, in memory: what it is told, and its end of the wire.

The product's objects are real (UdpMux, PeerTransport, DtlsServer, SRTP);
only the pod's UDP socket is replaced, by a recorder, so no test binds a
port. The client's side is what a browser would be: it reads the pod's SDP
with a third-party parser (sdp-transform), checks in with a STUN binding
request, runs a pyOpenSSL DTLS client and keeps its own libsrtp session, and
its RTP is built byte by byte here.
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sdp_transform
from aioice import stun

from mediapod.config import LimitsConfig
from mediapod.metrics import MediaCounters
from mediapod.rtc.context import MediaContext
from mediapod.rtc.participant import LeaveReason, Participant, Permission
from mediapod.rtc.room import Room, RoomSettings
from mediapod.rtc.room_state import RoomState
from mediapod.rtc.speaker import Speaker
from mediapod.rtc.ssrc_guard import UnknownSsrcLimits
from mediapod.rtc.track import LayerAnnouncement, TrackAnnouncement, TrackSource
from mediapod.transport.dtls import DtlsCertificate
from mediapod.transport.ice import Address
from mediapod.transport.peer import CONNECT_TIMEOUT
from mediapod.transport.srtp import SrtpSession
from mediapod.transport.udp import UdpMux
from tests.support.sdp_fixtures import CHROME_OFFER
from tests.support.dtls_client import DtlsClient

POD_ADDRESS: Address = ("192.0.2.1", 7882)


class RecordingSocket(asyncio.DatagramTransport):
    """The pod's UDP socket, replaced: it keeps every datagram the mux sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[bytes, Address]] = []
        self.closed = False

    def sendto(self, data: bytes, addr: Any = None) -> None:  # type: ignore[override]
        self.sent.append((bytes(data), addr))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return POD_ADDRESS if name == "sockname" else default

    def close(self) -> None:
        self.closed = True

    def take(self, addr: Address) -> list[bytes]:
        """What was sent to addr since the last take, oldest first."""
        taken = [data for data, to in self.sent if to == addr]
        self.sent = [(data, to) for data, to in self.sent if to != addr]
        return taken


@dataclass
class Pod:
    """A media node's shared resources around a real UdpMux, and the recorder standing in for its socket."""

    context: MediaContext
    socket: RecordingSocket

    @property
    def counters(self) -> MediaCounters:
        return self.context.counters


def media_pod(*, connect_timeout: float = CONNECT_TIMEOUT, unknown_ssrc_limits: UnknownSsrcLimits = UnknownSsrcLimits()) -> Pod:
    """A node's media context whose UdpMux is real and whose socket is a recorder."""
    counters = MediaCounters()
    mux = UdpMux(counters)
    socket = RecordingSocket()
    mux.connection_made(socket)
    certificate = DtlsCertificate.generate()
    context = MediaContext(
        node_id="node-test",
        mux=mux,
        certificate=certificate,
        ssl_context=certificate.ssl_context(),
        advertised_ip=POD_ADDRESS[0],
        udp_port=POD_ADDRESS[1],
        counters=counters,
        connect_timeout=connect_timeout,
        unknown_ssrc_limits=unknown_ssrc_limits,
    )
    return Pod(context, socket)


@dataclass
class RecordingSink:
    """A participant's client as the room model sees it: every message, in order."""

    messages: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def send_offer(self, sdp: str) -> None:
        self.messages.append(("offer", (sdp,)))

    def send_answer(self, sdp: str) -> None:
        self.messages.append(("answer", (sdp,)))

    def send_track_published(self, cid: str, sid: str, announcement: TrackAnnouncement) -> None:
        self.messages.append(("track_published", (cid, sid, announcement)))

    def send_track_unpublished(self, track_sid: str) -> None:
        self.messages.append(("track_unpublished", (track_sid,)))

    def send_participants_update(self, participants: list[Participant]) -> None:
        # What the client would be told is a snapshot; the objects live on.
        snapshot = [(p.identity, p.state, tuple(sorted((sid, t.muted) for sid, t in p.tracks.items()))) for p in participants]
        self.messages.append(("update", tuple(snapshot)))

    def send_mute(self, track_sid: str, muted: bool) -> None:
        self.messages.append(("mute", (track_sid, muted)))

    def send_leave(self, reason: LeaveReason) -> None:
        self.messages.append(("leave", (reason,)))

    def send_speakers_changed(self, speakers: list[Speaker]) -> None:
        self.messages.append(("speakers", tuple(speakers)))

    def send_room_update(self, room: RoomState) -> None:
        self.messages.append(("room_update", (room,)))

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        """The arguments of every message of one kind."""
        return [args for name, args in self.messages if name == kind]

    def kinds(self) -> list[str]:
        return [name for name, _ in self.messages]

    def updates_about(self, identity: str) -> list[tuple[Any, ...]]:
        """Each participants update that mentioned identity: (identity, state, ((track sid, muted), ...))."""
        return [entry for (snapshot,) in ([args] for args in self.of("update")) for entry in snapshot if entry[0] == identity]


def ice_credentials(text: str) -> tuple[str, str]:
    """The (ufrag, pwd) of a session description, read by sdp-transform."""
    description = sdp_transform.parse(text)
    media = description["media"][0]
    return media.get("iceUfrag") or description["iceUfrag"], media.get("icePwd") or description["icePwd"]


class ClientPeer:
    """One of the client's PeerConnections on the far side of the pod's port."""

    def __init__(self, pod: Pod, port: int = 50000) -> None:
        self.address: Address = ("198.51.100.7", port)
        self._mux = pod.context.mux
        self._socket = pod.socket
        self.dtls = DtlsClient(DtlsCertificate.generate(), b"SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80")
        self.srtp: SrtpSession | None = None
        self.ufrag = "cliUfrag"
        self.pwd = "clientPasswordClientPwd1"

    def own(self, text: str) -> str:
        """A fixture description as this client sends it: its ICE ufrag kept, its fingerprint made ours.

        The DTLS handshake checks the certificate against the signaled
        fingerprint, so a recorded browser's fingerprint must become this
        client's for the handshake to succeed.
        """
        self.ufrag, self.pwd = ice_credentials(text)
        return re.sub(r"a=fingerprint:sha-256 \S+", f"a=fingerprint:sha-256 {self.dtls.certificate.fingerprint}", text)

    def answer(self, offer: str, reject: frozenset[str] = frozenset()) -> str:
        """A browser's answer to the pod's subscriber offer: receive every active m-line but the mids in reject."""
        description = sdp_transform.parse(offer)
        description.pop("icelite", None)
        for media in description["media"]:
            for key in ("ssrcs", "ssrcGroups", "candidates", "endOfCandidates", "msid", "iceLite"):
                media.pop(key, None)
            media["iceUfrag"], media["icePwd"] = self.ufrag, self.pwd
            media["fingerprint"] = {"type": "sha-256", "hash": self.dtls.certificate.fingerprint}
            media["setup"] = "active"
            if str(media["mid"]) in reject:
                media["port"] = 0
                media["direction"] = "inactive"
            elif media.get("direction") == "sendonly":
                media["direction"] = "recvonly"
        return sdp_transform.write(description)

    def check_in(self, pod_sdp: str) -> None:
        """Send the nominating STUN binding request an ICE-controlling browser sends."""
        ufrag, pwd = ice_credentials(pod_sdp)
        request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        request.attributes["USERNAME"] = f"{ufrag}:{self.ufrag}"
        request.attributes["PRIORITY"] = 1853824767
        request.attributes["ICE-CONTROLLING"] = 0x1122334455667788
        request.attributes["USE-CANDIDATE"] = None
        request.add_message_integrity(pwd.encode())
        self._mux.datagram_received(bytes(request), self.address)

    def connect(self, pod_sdp: str) -> None:
        """Check in, then run the DTLS handshake to the end and key SRTP from it."""
        self.check_in(pod_sdp)
        for _ in range(10):
            incoming = [d for d in self._socket.take(self.address) if 20 <= d[0] <= 63]
            for datagram in self.dtls.step(incoming):
                self._mux.datagram_received(datagram, self.address)
            if self.dtls.handshake_done:
                self.dtls.step([d for d in self._socket.take(self.address) if 20 <= d[0] <= 63])
                self.srtp = self.dtls.srtp()
                return
        raise AssertionError("the DTLS handshake with the pod did not finish")

    def send_rtp(self, packet: bytes) -> bytes:
        """Protect and send one RTP packet; returns what went on the wire."""
        assert self.srtp is not None, "connect first"
        protected = self.srtp.protect_rtp(packet)
        self._mux.datagram_received(protected, self.address)
        return protected

    def send_rtcp(self, packet: bytes) -> None:
        assert self.srtp is not None, "connect first"
        self._mux.datagram_received(self.srtp.protect_rtcp(packet), self.address)

    def send_datagram(self, data: bytes) -> None:
        self._mux.datagram_received(data, self.address)

    def receive(self) -> tuple[list[bytes], list[bytes]]:
        """Decrypted (RTP, RTCP) the pod sent since the last call."""
        assert self.srtp is not None, "connect first"
        rtp, rtcp = [], []
        for data in self._socket.take(self.address):
            if not 128 <= data[0] <= 191:
                continue
            if 192 <= data[1] <= 223:  # RTCP packet types 192-223 (RFC 5761)
                rtcp.append(self.srtp.unprotect_rtcp(data))
            else:
                rtp.append(self.srtp.unprotect_rtp(data))
        return rtp, rtcp


def rtp(
    ssrc: int,
    seq: int,
    *,
    payload_type: int = 111,
    timestamp: int = 0,
    payload: bytes = b"\x00" * 20,
    marker: bool = False,
    extensions: Mapping[int, bytes] | None = None,
) -> bytes:
    """An RTP packet (RFC 3550), with one-byte header extensions (RFC 8285) if given."""
    header = struct.pack(
        "!BBHII", 0x90 if extensions else 0x80, (0x80 if marker else 0) | payload_type, seq & 0xFFFF, timestamp, ssrc
    )
    if not extensions:
        return header + payload
    body = b"".join(bytes([(ext_id << 4) | (len(value) - 1)]) + value for ext_id, value in extensions.items())
    body += b"\x00" * (-len(body) % 4)
    return header + struct.pack("!HH", 0xBEDE, len(body) // 4) + body + payload


# A VP8 keyframe's first payload bytes: descriptor S=1 PID=0, then a payload
# header with the P bit clear and the keyframe start code (RFC 7741 4.3, 9.1).
VP8_KEYFRAME = b"\x10" + b"\x50\x02\x00\x9d\x01\x2a" + b"\x40\x01\xf0\x00" + bytes(20)
VP8_DELTA = b"\x10" + b"\x51\x02\x00" + bytes(20)


def rtp_fields(packet: bytes) -> tuple[int, int, int, int]:
    """(payload type, sequence number, timestamp, SSRC) of an RTP packet, read by struct alone."""
    _, marker_pt, seq, ts, ssrc = struct.unpack_from("!BBHII", packet)
    return marker_pt & 0x7F, seq, ts, ssrc


def payload_of(packet: bytes) -> bytes:
    """The payload of an RTP packet without CSRCs or padding, after any header extension."""
    offset = 12
    if packet[0] & 0x10:
        length = struct.unpack_from("!H", packet, offset + 2)[0]
        offset += 4 + 4 * length
    return packet[offset:]


# The tracks CHROME_OFFER carries, announced as a LiveKit client would: the
# microphone on mid 0, the simulcast camera (rids h, m) on mid 1, the screen
# share with RTX on mid 2. Its mid 4 (G.711 only) and data channel are not.
MICROPHONE = TrackAnnouncement(cid="microphone", name="mic", kind="audio", source=TrackSource.MICROPHONE)
CAMERA = TrackAnnouncement(
    cid="camera",
    name="cam",
    kind="video",
    source=TrackSource.CAMERA,
    layers=(LayerAnnouncement("h", 1280, 720), LayerAnnouncement("m", 640, 360)),
)
SCREEN = TrackAnnouncement(cid="screen", name="screen", kind="video", source=TrackSource.SCREEN_SHARE)
MIC_SSRC, SCREEN_SSRC, SCREEN_RTX_SSRC = 1001, 3000, 3001
# Extension ids CHROME_OFFER maps (and our answer keeps).
AUDIO_LEVEL_ID, MID_ID, RID_ID, REPAIRED_RID_ID = 1, 4, 10, 11


def new_room(pod: Pod, *, limits: LimitsConfig | None = None, closed: list[Room] | None = None, **settings: Any) -> Room:
    """A room with long timers unless a test sets them; closed rooms are appended to closed."""
    on_closed = closed.append if closed is not None else (lambda room: None)
    room_settings = RoomSettings(**{"empty_timeout": 300, "departure_timeout": 20, "max_participants": 0, **settings})
    return Room("room", "RM_test", room_settings, pod.context, on_closed=on_closed, limits=limits or LimitsConfig())


@dataclass
class Member:
    """A participant and its client: the signal messages it got and its two PeerConnections."""

    participant: Participant
    sink: RecordingSink
    publisher: ClientPeer
    subscriber: ClientPeer


_ports = iter(range(40000, 60000, 2))


def join(
    pod: Pod,
    room: Room,
    identity: str,
    *,
    permission: Permission = Permission(),
    auto_subscribe: bool = True,
    activate: bool = True,
) -> Member:
    """Join identity to room as a signaling front end would, and activate it unless told not to."""
    sink = RecordingSink()
    participant = room.join(identity, identity.title(), "", permission, auto_subscribe, sink)
    if activate:
        room.activate(participant)
    port = next(_ports)
    return Member(participant, sink, ClientPeer(pod, port), ClientPeer(pod, port + 1))


async def publish_chrome_offer(member: Member, *announcements: TrackAnnouncement) -> str:
    """Announce tracks (all three of CHROME_OFFER by default), send the offer and connect; returns the answer."""
    for announcement in announcements or (MICROPHONE, CAMERA, SCREEN):
        member.participant.announce_track(announcement)
    await member.participant.handle_offer("offer", member.publisher.own(CHROME_OFFER))
    (answer,) = member.sink.of("answer")[-1:]
    member.publisher.connect(answer[0])
    return answer[0]
