"""The transport of one PeerConnection: ICE-lite, DTLS and SRTP on one 5-tuple.

BUNDLE and rtcp-mux put every m-line of a PeerConnection on the same
address pair, so one PeerTransport carries all its RTP and RTCP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from OpenSSL import SSL

from mediapod.rtp.errors import MalformedPacket
from mediapod.rtp.packet import is_rtcp
from mediapod.rtp.rtcp import RtcpPacket, parse_rtcp
from mediapod.transport.dtls import DtlsServer, DtlsState
from mediapod.transport.ice import Address, IceLiteAgent
from mediapod.transport.srtp import SrtpError, SrtpSession
from mediapod.transport.udp import UdpMux

# How often consent freshness is checked; RFC 7675 expiry itself is 30 s.
CONSENT_SWEEP_INTERVAL = 5.0


def _ignore(_: bytes) -> None:
    return None


class PeerTransport:
    """ICE-lite + DTLS-SRTP for one PeerConnection on the shared UDP port.

    The owner sets ``on_rtp`` (decrypted RTP in) / ``on_rtcp`` (parsed compound RTCP in) and
    ``on_state`` (connected / closed), and sends with ``send_rtp`` / ``send_rtcp``.
    """

    def __init__(self, mux: UdpMux, ssl_context: SSL.Context) -> None:
        self.ice = IceLiteAgent()
        self.remote_addr: Address | None = None
        self.on_rtp: Callable[[bytes], None] = _ignore
        self.on_rtcp: Callable[[list[RtcpPacket]], None] = lambda packets: None
        self.on_state: Callable[[DtlsState], None] = lambda state: None
        self._mux = mux
        self._counters = mux.counters
        self._ssl_context = ssl_context
        self._dtls: DtlsServer | None = None
        self._srtp: SrtpSession | None = None
        self._closed = False
        self._consent_timer = asyncio.get_running_loop().call_later(CONSENT_SWEEP_INTERVAL, self._check_consent)
        mux.register(self)

    @property
    def connected(self) -> bool:
        return self._srtp is not None and not self._closed

    @property
    def failure(self) -> str:
        """Why the DTLS association failed, if it did."""
        return self._dtls.failure if self._dtls is not None else ""

    def set_remote_parameters(self, ufrag: str, fingerprints: list[tuple[str, str]]) -> None:
        """Apply the peer's ICE ufrag and DTLS fingerprints from its SDP (first time only).

        ICE restarts are not supported, so later descriptions keep the
        credentials and the DTLS association they started with.
        """
        if self._dtls is not None:
            return
        self.ice.remote_ufrag = ufrag
        self._dtls = DtlsServer(self._ssl_context, fingerprints, self._send_dtls, self._on_dtls_state)

    def on_checked(self, addr: Address, nominated: bool) -> None:
        """An authenticated binding request came from addr."""
        if nominated or self.remote_addr is None:
            self.remote_addr = addr

    def on_dtls(self, data: bytes) -> None:
        if self._dtls is not None:
            self._dtls.feed(data)

    def on_srtp(self, data: bytes) -> None:
        srtp = self._srtp
        if srtp is None:
            self._counters.drops["srtp_not_ready"] += 1
            return
        if len(data) < 8:
            self._counters.drops["rtp_malformed"] += 1
            return
        try:
            if not is_rtcp(data):
                self.on_rtp(srtp.unprotect_rtp(data))
                return
            plain = srtp.unprotect_rtcp(data)
        except SrtpError:
            self._counters.drops["srtp_auth_failed"] += 1
            return
        self._counters.rtcp_packets_in += 1
        try:
            packets = parse_rtcp(plain)
        except MalformedPacket:
            self._counters.drops["rtcp_malformed"] += 1
            return
        self.on_rtcp(packets)

    def send_rtp(self, packet: bytes) -> None:
        srtp, addr = self._srtp, self.remote_addr
        if srtp is None or addr is None:
            return
        try:
            self._mux.sendto(srtp.protect_rtp(packet), addr)
        except SrtpError:
            return
        self._counters.rtp_packets_out += 1
        self._counters.rtp_bytes_out += len(packet)

    def send_rtcp(self, packet: bytes) -> None:
        srtp, addr = self._srtp, self.remote_addr
        if srtp is None or addr is None:
            return
        try:
            self._mux.sendto(srtp.protect_rtcp(packet), addr)
        except SrtpError:
            return
        self._counters.rtcp_packets_out += 1

    def close(self) -> None:
        """Close on the owner's request; the owner is not called back."""
        if self._closed:
            return
        self._closed = True
        self.on_state = lambda state: None
        self._consent_timer.cancel()
        self._mux.unregister(self)
        if self._dtls is not None:
            self._dtls.close()
        self._srtp = None

    def _send_dtls(self, data: bytes) -> None:
        if self.remote_addr is not None:
            self._mux.sendto(data, self.remote_addr)

    def _on_dtls_state(self, state: DtlsState) -> None:
        if state == DtlsState.CONNECTED:
            assert self._dtls is not None
            self._srtp = self._dtls.srtp
            self._counters.dtls_handshakes += 1
        elif state == DtlsState.FAILED:
            self._counters.dtls_failures += 1
        self.on_state(state)

    def _check_consent(self) -> None:
        if self._closed:
            return
        if self.ice.consent_expired():
            notify = self.on_state
            self.close()
            notify(DtlsState.CLOSED)
            return
        self._consent_timer = asyncio.get_running_loop().call_later(CONSENT_SWEEP_INTERVAL, self._check_consent)
