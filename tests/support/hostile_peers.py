"""Peers that misbehave the way probing found: idle PeerConnections, silenced consent, SSRC floods.

Each works on top of a real aiortc PeerConnection (or a real signal stream),
so what reaches the pod is real ICE, DTLS-SRTP and SRTP, only used badly.
"""

from __future__ import annotations

import asyncio
import secrets
import struct

import grpc
import sdp_transform
from aiortc import RTCPeerConnection
from aiortc.rtcdtlstransport import SRTP_PROFILES, RTCDtlsTransport
from pylibsrtp import Policy, Session

from mediapod.protocol import signal_pb2, signal_pb2_grpc


def dtls_transport(pc: RTCPeerConnection) -> RTCDtlsTransport:
    """The (BUNDLEd) DTLS transport of a connected aiortc PeerConnection."""
    for transceiver in pc.getTransceivers():
        if transceiver.sender.transport is not None:
            return transceiver.sender.transport
    raise AssertionError("the PeerConnection has no transport")


async def until_connected(pc: RTCPeerConnection, timeout: float = 10.0) -> None:
    """Wait for ICE and DTLS of an aiortc PeerConnection (publish() returns before they finish)."""
    async with asyncio.timeout(timeout):
        while pc.connectionState != "connected":
            await asyncio.sleep(0.05)


def silence_consent(pc: RTCPeerConnection) -> None:
    """Stop the ICE consent checks (RFC 7675) an aiortc PeerConnection sends; media keeps flowing.

    To an ICE-lite server this is a peer that vanished without a word.
    """
    connection = dtls_transport(pc).transport._connection
    task = connection._query_consent_task
    assert task is not None and not task.done(), "consent checks are not running"
    task.cancel()


class SsrcFlood:
    """Sends authentic SRTP on fresh SSRCs, never announced, over a connected PeerConnection.

    The keys are the PeerConnection's own (exported from its DTLS session as
    aiortc does), so every packet would authenticate at the pod. A fresh
    sending libsrtp session every few hundred SSRCs keeps the flood's own cost
    flat, since libsrtp searches its per-SSRC streams linearly.
    """

    SSRCS_PER_SESSION = 256

    def __init__(self, pc: RTCPeerConnection) -> None:
        self._dtls = dtls_transport(pc)
        selected = self._dtls._ssl.get_selected_srtp_profile()
        profile = next(p for p in SRTP_PROFILES if p.openssl_profile == selected)
        material = self._dtls._ssl.export_keying_material(
            b"EXTRACTOR-dtls_srtp", 2 * (profile.key_length + profile.salt_length)
        )
        self._key = profile.get_key_and_salt(material, 0 if self._dtls._role == "client" else 1)
        self._profile = profile.libsrtp_profile
        self.sent = 0

    def _session(self) -> Session:
        return Session(Policy(key=self._key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=self._profile))

    async def send(self, ssrcs: int, rate: float) -> None:
        """One packet on each of ``ssrcs`` distinct random SSRCs, at ``rate`` packets per second."""
        payload = secrets.token_bytes(160)
        first = secrets.randbits(32) | 1
        loop = asyncio.get_running_loop()
        start = loop.time()
        session = self._session()
        for index in range(ssrcs):
            if index and index % self.SSRCS_PER_SESSION == 0:
                session = self._session()
                # Pace in batches: asyncio cannot sleep per packet at thousands a second.
                ahead = start + index / rate - loop.time()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            ssrc = (first + index * 2654435761) & 0xFFFFFFFF
            header = struct.pack("!BBHII", 0x80, 111, index & 0xFFFF, index * 960 & 0xFFFFFFFF, ssrc)
            try:
                await self._dtls.transport._send(session.protect(header + payload))
            except ConnectionError:
                # The pod hung up on us; the rest of the flood still goes out
                # over the same 5-tuple as plain datagrams it must drop.
                pass
            self.sent += 1


def never_connecting_answer(offer_sdp: str) -> str:
    """A well-formed answer to a subscriber offer from a peer whose ICE never starts.

    Accepts every m-line with credentials and a fingerprint of its own, and
    no candidates: nothing will ever send a binding request for it.
    """
    session = sdp_transform.parse(offer_sdp)
    session.pop("fingerprint", None)
    session.pop("icelite", None)
    for media in session["media"]:
        media["direction"] = "recvonly"
        media["iceUfrag"] = secrets.token_hex(4)
        media["icePwd"] = secrets.token_hex(12)
        media["fingerprint"] = {"type": "sha-256", "hash": ":".join(f"{b:02X}" for b in secrets.token_bytes(32))}
        media["setup"] = "active"
        for key in ("candidates", "ssrcs", "ssrcGroups", "msid", "endOfCandidates"):
            media.pop(key, None)
    return sdp_transform.write(session)


class IdleSubscriber:
    """A participant on a raw signal stream that answers subscriber offers and never connects."""

    def __init__(self, target: str, token: str) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._call = signal_pb2_grpc.SignalStub(self._channel).Connect()
        self._token = token
        self._reader: asyncio.Task[None] | None = None
        self.answered = asyncio.Event()
        self.leave: signal_pb2.LeaveRequest | None = None
        self.ended = asyncio.Event()

    async def join(self) -> signal_pb2.JoinResponse:
        await self._call.write(signal_pb2.SignalRequest(join=signal_pb2.JoinRequest(token=self._token)))
        first = await self._call.read()
        assert first.WhichOneof("message") == "join", first
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return first.join

    async def _read(self) -> None:
        try:
            while True:
                response = await self._call.read()
                if response is grpc.aio.EOF:
                    return
                kind = response.WhichOneof("message")
                if kind == "offer":
                    answer = signal_pb2.SessionDescription(type="answer", sdp=never_connecting_answer(response.offer.sdp))
                    await self._call.write(signal_pb2.SignalRequest(answer=answer))
                    self.answered.set()
                elif kind == "leave":
                    self.leave = response.leave
        finally:
            self.ended.set()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        self._call.cancel()
        await self._channel.close()
