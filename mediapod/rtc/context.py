"""What every PeerConnection on a node shares: UDP port, DTLS identity, counters."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from OpenSSL import SSL

from mediapod.metrics import MediaCounters
from mediapod.rtc.data import DATA_LABELS
from mediapod.rtc.sdp import LocalParameters
from mediapod.rtc.ssrc_guard import UnknownSsrcLimits
from mediapod.rtp.rtcp import RtcpPacket
from mediapod.transport.dtls import DtlsCertificate
from mediapod.transport.ice import IceLiteAgent
from mediapod.transport.peer import CONNECT_TIMEOUT, PeerTransport, TransportState
from mediapod.transport.sctp import ChannelSpec
from mediapod.transport.udp import UdpMux


def new_sid(prefix: str) -> str:
    """LiveKit-style ids: a type prefix and random url-safe characters."""
    return prefix + secrets.token_urlsafe(9).replace("-", "x").replace("_", "y")


@dataclass
class MediaContext:
    """What every PeerConnection on this node shares: the UDP port, the DTLS identity, counters."""

    node_id: str
    mux: UdpMux
    certificate: DtlsCertificate
    ssl_context: SSL.Context
    advertised_ip: str
    udp_port: int  # as advertised in candidates
    counters: MediaCounters
    connect_timeout: float = CONNECT_TIMEOUT
    unknown_ssrc_limits: UnknownSsrcLimits = UnknownSsrcLimits()
    congestion_control: bool = True

    def new_transport(
        self,
        on_rtp: Callable[[bytes], None],
        on_rtcp: Callable[[list[RtcpPacket]], None],
        on_state: Callable[[TransportState], None],
        on_data: Callable[[str, bytes], None] | None = None,
        data_channels: tuple[ChannelSpec, ...] = (),
    ) -> PeerTransport:
        """A PeerConnection's transport on this node's port, delivering to the given handlers.

        With ``on_data`` it serves the ``_reliable`` and ``_lossy`` data
        channels (and opens ``data_channels`` itself); without, it refuses
        every channel a peer opens.
        """
        if on_data is None:
            return PeerTransport(
                self.mux, self.ssl_context, on_rtp=on_rtp, on_rtcp=on_rtcp, on_state=on_state, connect_timeout=self.connect_timeout
            )
        return PeerTransport(
            self.mux,
            self.ssl_context,
            on_rtp=on_rtp,
            on_rtcp=on_rtcp,
            on_state=on_state,
            on_data=on_data,
            data_labels=DATA_LABELS,
            data_channels=data_channels,
            connect_timeout=self.connect_timeout,
        )

    def local_parameters(self, ice: IceLiteAgent) -> LocalParameters:
        return LocalParameters(
            ice_ufrag=ice.local_ufrag,
            ice_pwd=ice.local_pwd,
            fingerprint=self.certificate.fingerprint,
            candidate_ip=self.advertised_ip,
            candidate_port=self.udp_port,
        )
