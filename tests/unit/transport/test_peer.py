"""PeerTransport: when time runs against a PeerConnection, and what reaches libsrtp.

A real UdpMux on 127.0.0.1; SRTP sessions are keyed directly (the DTLS
handshake has its own tests) so packets can be built by a second, mirrored
libsrtp session, the way a peer would.
"""

from __future__ import annotations

import asyncio
import secrets
import struct
from collections.abc import AsyncIterator

import pytest

from mediapod.metrics import MediaCounters
from mediapod.rtp.rtcp import RtcpPacket
from mediapod.transport import ice, peer as peer_module
from mediapod.transport.dtls import DtlsCertificate
from mediapod.transport.ice import parse_stun
from mediapod.transport.peer import MAX_RTCP_SSRCS, PeerTransport, TransportState
from mediapod.transport.srtp import AES128_CM_SHA1_80, SrtpSession
from mediapod.transport.udp import UdpMux
from tests.support.stun_requests import binding_request

FINGERPRINT = [("sha-256", "AB:" * 31 + "AB")]


@pytest.fixture
async def mux() -> AsyncIterator[UdpMux]:
    mux = await UdpMux.listen("127.0.0.1", 0, MediaCounters())
    yield mux
    mux.close()


class Owner:
    """What a transport delivered to its owner."""

    def __init__(self) -> None:
        self.rtp: list[bytes] = []
        self.rtcp: list[list[RtcpPacket]] = []
        self.states: list[TransportState] = []


def transport(mux: UdpMux, connect_timeout: float = 20.0) -> tuple[PeerTransport, Owner]:
    owner = Owner()
    peer = PeerTransport(
        mux,
        DtlsCertificate.generate().ssl_context(),
        on_rtp=owner.rtp.append,
        on_rtcp=owner.rtcp.append,
        on_state=owner.states.append,
        connect_timeout=connect_timeout,
    )
    return peer, owner


def keyed(peer: PeerTransport) -> SrtpSession:
    """Give peer an SRTP session as if DTLS had finished; returns the remote side's session."""
    ours, theirs = secrets.token_bytes(30), secrets.token_bytes(30)
    peer._srtp = SrtpSession(AES128_CM_SHA1_80, ours, theirs)
    return SrtpSession(AES128_CM_SHA1_80, theirs, ours)


def rtcp_receiver_report(sender_ssrc: int) -> bytes:
    return struct.pack("!BBHI", 0x80, 201, 1, sender_ssrc)


async def test_a_transport_never_negotiated_never_times_out(mux: UdpMux) -> None:
    peer, owner = transport(mux, connect_timeout=0.05)
    await asyncio.sleep(0.2)
    assert owner.states == []
    assert mux.counters.transport_connect_timeouts == 0


async def test_a_negotiated_transport_that_never_connects_is_given_up(mux: UdpMux) -> None:
    peer, owner = transport(mux, connect_timeout=0.05)
    peer.set_remote_parameters("remote", FINGERPRINT)
    await asyncio.sleep(0.2)
    assert owner.states == [TransportState.NEVER_CONNECTED]
    assert mux.counters.transport_connect_timeouts == 1
    assert not mux._by_ufrag, "a given-up transport still holds its ufrag on the port"


async def test_consent_runs_only_after_the_first_successful_check(
    mux: UdpMux, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ice, "CONSENT_TIMEOUT", 0.05)
    monkeypatch.setattr(peer_module, "CONSENT_SWEEP_INTERVAL", 0.02)
    peer, owner = transport(mux)
    await asyncio.sleep(0.2)
    assert owner.states == [], "an unused PeerConnection lost consent it never had"

    assert peer.check(parse_stun(binding_request(peer)), ("127.0.0.1", 5000)).ok
    await asyncio.sleep(0.2)
    assert owner.states == [TransportState.FAILED]
    assert mux.counters.consent_expiries == 1


async def test_rtp_is_handed_over_still_encrypted_and_decrypted_on_request(mux: UdpMux) -> None:
    peer, owner = transport(mux)
    remote = keyed(peer)
    plain = struct.pack("!BBHII", 0x80, 111, 7, 960, 0x1234) + b"opus"
    protected = remote.protect_rtp(plain)

    peer.on_srtp(protected)

    assert owner.rtp == [protected]
    assert peer.unprotect_rtp(protected) == plain


async def test_srtcp_sender_ssrcs_are_capped_per_transport(mux: UdpMux) -> None:
    peer, owner = transport(mux)
    remote = keyed(peer)
    received = owner.rtcp
    for ssrc in range(1, MAX_RTCP_SSRCS + 1):
        peer.on_srtp(remote.protect_rtcp(rtcp_receiver_report(ssrc)))
    assert len(received) == MAX_RTCP_SSRCS

    peer.on_srtp(remote.protect_rtcp(rtcp_receiver_report(MAX_RTCP_SSRCS + 1)))
    peer.on_srtp(remote.protect_rtcp(rtcp_receiver_report(1)))

    assert len(received) == MAX_RTCP_SSRCS + 1, "a known sender SSRC must still get through"
    assert mux.counters.drops["rtcp_ssrc_limit"] == 1


async def test_forged_srtcp_does_not_use_up_the_ssrc_cap(mux: UdpMux) -> None:
    peer, owner = transport(mux)
    remote = keyed(peer)
    for ssrc in range(1, MAX_RTCP_SSRCS + 10):
        peer.on_srtp(rtcp_receiver_report(ssrc) + secrets.token_bytes(14))
    assert mux.counters.drops["srtp_auth_failed"] == MAX_RTCP_SSRCS + 9
    peer.on_srtp(remote.protect_rtcp(rtcp_receiver_report(424242)))
    assert len(owner.rtcp) == 1
