"""The transport of one PeerConnection: ICE-lite, DTLS and SRTP on one 5-tuple.

BUNDLE and rtcp-mux put every m-line of a PeerConnection on the same
address pair, so one PeerTransport carries all its RTP and RTCP.

A participant has two PeerConnections and often uses only one (a viewer
never publishes), so time only runs against a transport once it is in use:
the connect timeout starts when its remote description arrives, consent
freshness (RFC 7675) when the first ICE check succeeds.

Data channels ride on the same DTLS association: once the owner says the
negotiation carried an m=application line, an SCTP association starts as
soon as DTLS is up (sctp.py).
"""

from __future__ import annotations

import asyncio
import enum
import struct
from collections.abc import Callable

from aioice import stun
from OpenSSL import SSL

from mediapod.rtp.errors import MalformedPacket
from mediapod.rtp.packet import is_rtcp
from mediapod.rtp.rtcp import RtcpPacket, parse_rtcp
from mediapod.transport.dtls import DtlsServer, DtlsState
from mediapod.transport.ice import Address, BindingResult, IceLiteAgent
from mediapod.transport.sctp import DEFAULT_SCTP_PORT, ChannelSpec, SctpAssociation
from mediapod.transport.srtp import SrtpError, SrtpSession
from mediapod.transport.udp import UdpMux

# How often consent freshness is checked; RFC 7675 expiry itself is 30 s.
CONSENT_SWEEP_INTERVAL = 5.0
# A negotiated PeerConnection that has not completed DTLS by then is given up.
CONNECT_TIMEOUT = 20.0
# libsrtp keeps one stream per SSRC it authenticates, searched linearly on
# every packet; RTCP sender SSRCs are not announced, so they are capped here.
MAX_RTCP_SSRCS = 64

_SSRC = struct.Struct("!I")



class TransportState(enum.Enum):
    """What a PeerTransport tells its owner."""

    CONNECTED = "connected"        # ICE and DTLS done, SRTP keyed
    FAILED = "failed"              # DTLS failed, or a connected peer lost consent
    CLOSED = "closed"              # the peer ended the DTLS association (close_notify)
    NEVER_CONNECTED = "never_connected"  # negotiated, but not connected within the connect timeout


def _ignore_state(state: TransportState) -> None:
    """What a closed transport tells its owner: nothing (the owner closed it)."""


def _ignore_data(label: str, data: bytes) -> None:
    """The data handler of a transport that serves no data-channel labels, and so never calls it."""


class PeerTransport:
    """ICE-lite + DTLS-SRTP for one PeerConnection on the shared UDP port.

    The owner passes in where packets go: ``on_rtp`` gets RTP still encrypted
    (the owner routes it by its clear-text SSRC and pays for ``unprotect_rtp``
    only for packets it wants), ``on_rtcp`` parsed compound RTCP, ``on_state``
    the transport's fate; it sends with ``send_rtp`` / ``send_rtcp``.
    ``on_data`` gets data-channel messages as (label, bytes), for the labels
    in ``data_labels``; ``send_data`` sends on the channels in ``data_channels``,
    which the pod opens itself.
    """

    def __init__(
        self,
        mux: UdpMux,
        ssl_context: SSL.Context,
        *,
        on_rtp: Callable[[bytes], None],
        on_rtcp: Callable[[list[RtcpPacket]], None],
        on_state: Callable[[TransportState], None],
        on_data: Callable[[str, bytes], None] = _ignore_data,
        data_labels: frozenset[str] = frozenset(),
        data_channels: tuple[ChannelSpec, ...] = (),
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.ice = IceLiteAgent()
        self.remote_addr: Address | None = None
        self._on_rtp = on_rtp
        self._on_rtcp = on_rtcp
        self._on_state = on_state
        self._on_data = on_data
        self._data_labels = data_labels
        self._data_channels = data_channels
        self._sctp_port: int | None = None  # set once an m=application line is negotiated
        self._sctp: SctpAssociation | None = None
        self._mux = mux
        self._counters = mux.counters
        self._ssl_context = ssl_context
        self._connect_timeout = connect_timeout
        self._dtls: DtlsServer | None = None
        self._srtp: SrtpSession | None = None
        self._rtcp_ssrcs: set[int] = set()
        self._closed = False
        self._consent_timer: asyncio.TimerHandle | None = None
        self._connect_timer: asyncio.TimerHandle | None = None
        mux.register(self.ice.local_ufrag, self)

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
        if self._dtls is not None or self._closed:
            return
        self.ice.remote_ufrag = ufrag
        self._dtls = DtlsServer(
            self._ssl_context, fingerprints, self._send_dtls, self._on_dtls_state, self._on_application_data
        )
        self._connect_timer = asyncio.get_running_loop().call_later(self._connect_timeout, self._give_up_connecting)

    def accept_data_channels(self, remote_port: int = DEFAULT_SCTP_PORT) -> None:
        """The negotiation carries data channels: run SCTP to remote_port once DTLS is up (first call only)."""
        if self._sctp_port is not None or self._closed:
            return
        self._sctp_port = remote_port
        if self._srtp is not None:
            self._start_sctp()

    def send_data(self, label: str, data: bytes) -> bool:
        """Send a message on the pod's own data channel label; False (counted) if it cannot go now."""
        if self._sctp is None:
            self._counters.data_drops["channel_not_open"] += 1
            return False
        return self._sctp.send(label, data)

    def check(self, message: stun.Message, addr: Address) -> BindingResult | None:
        """Answer a binding request; the first one that authenticates starts consent freshness."""
        result = self.ice.handle_request(message, addr)
        if result is None or not result.ok:
            return result
        if result.nominated or self.remote_addr is None:
            self.remote_addr = addr
        if self._consent_timer is None and not self._closed:
            self._consent_timer = asyncio.get_running_loop().call_later(CONSENT_SWEEP_INTERVAL, self._check_consent)
        return result

    def on_dtls(self, data: bytes) -> None:
        if self._dtls is not None:
            self._dtls.feed(data)

    def on_srtp(self, data: bytes) -> None:
        srtp = self._srtp
        if srtp is None:
            self._counters.drops["srtp_not_ready"] += 1
            return
        if not is_rtcp(data):
            if len(data) < 12:
                self._counters.drops["rtp_malformed"] += 1
                return
            self._on_rtp(data)
            return
        if len(data) < 8:
            self._counters.drops["rtcp_malformed"] += 1
            return
        ssrc = _SSRC.unpack_from(data, 4)[0]
        if ssrc not in self._rtcp_ssrcs and len(self._rtcp_ssrcs) >= MAX_RTCP_SSRCS:
            self._counters.drops["rtcp_ssrc_limit"] += 1
            return
        try:
            plain = srtp.unprotect_rtcp(data)
        except SrtpError:
            self._counters.drops["srtp_auth_failed"] += 1
            return
        # Only authenticated SSRCs count: libsrtp creates a stream only for those.
        self._rtcp_ssrcs.add(ssrc)
        self._counters.rtcp_packets_in += 1
        try:
            packets = parse_rtcp(plain)
        except MalformedPacket:
            self._counters.drops["rtcp_malformed"] += 1
            return
        self._on_rtcp(packets)

    def unprotect_rtp(self, data: bytes) -> bytes | None:
        """Decrypt and authenticate an RTP packet on_rtp handed over; None (counted) if it fails."""
        srtp = self._srtp
        if srtp is None:
            return None
        try:
            return srtp.unprotect_rtp(data)
        except SrtpError:
            self._counters.drops["srtp_auth_failed"] += 1
            return None

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
        self._on_state = _ignore_state
        for timer in (self._consent_timer, self._connect_timer):
            if timer is not None:
                timer.cancel()
        self._mux.unregister(self.ice.local_ufrag)
        if self._sctp is not None:
            self._sctp.close()  # its ABORT goes out before DTLS's close_notify
        if self._dtls is not None:
            self._dtls.close()
        self._srtp = None

    def _send_dtls(self, data: bytes) -> None:
        if self.remote_addr is not None:
            self._mux.sendto(data, self.remote_addr)

    def _on_application_data(self, data: bytes) -> None:
        if self._sctp is None:
            self._counters.data_drops["no_association"] += 1
            return
        self._sctp.feed(data)

    def _start_sctp(self) -> None:
        dtls, port = self._dtls, self._sctp_port
        assert dtls is not None and port is not None
        self._sctp = SctpAssociation(
            dtls.send_data, self._on_data, self._counters, labels=self._data_labels, channels=self._data_channels
        )
        self._sctp.start(port)

    def _on_dtls_state(self, state: DtlsState) -> None:
        if state == DtlsState.CONNECTED:
            assert self._dtls is not None
            self._srtp = self._dtls.srtp
            self._counters.dtls_handshakes += 1
            if self._connect_timer is not None:
                self._connect_timer.cancel()
                self._connect_timer = None
            if self._sctp_port is not None:
                self._start_sctp()
            self._on_state(TransportState.CONNECTED)
        elif state == DtlsState.FAILED:
            self._counters.dtls_failures += 1
            self._end(TransportState.FAILED)
        elif state == DtlsState.CLOSED:
            self._end(TransportState.CLOSED)

    def _give_up_connecting(self) -> None:
        self._connect_timer = None
        if self._srtp is None:
            self._counters.transport_connect_timeouts += 1
            self._end(TransportState.NEVER_CONNECTED)

    def _check_consent(self) -> None:
        if self._closed:
            return
        if self.ice.consent_expired():
            self._counters.consent_expiries += 1
            self._end(TransportState.FAILED)
            return
        self._consent_timer = asyncio.get_running_loop().call_later(CONSENT_SWEEP_INTERVAL, self._check_consent)

    def _end(self, state: TransportState) -> None:
        """Close and tell the owner why (close() alone, on the owner's request, tells nobody)."""
        notify = self._on_state
        self.close()
        notify(state)
