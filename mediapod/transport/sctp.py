"""Data channels: an SCTP association (RFC 8261) over a PeerConnection's DTLS association.

SctpAssociation is what the transport uses: packets in, messages out, the
pod's own channels. The SCTP stack underneath is aiortc's, screened
(sctp_stack.py), imported with the first association: a pod that carries no
data channel does not load aiortc and PyAV (18 MiB). A peer that ignores our
receive window, or floods faster than the loop can take its packets, loses
its own packets or association, never the pod's memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mediapod.metrics import MediaCounters

if TYPE_CHECKING:
    from aiortc.rtcdatachannel import RTCDataChannel

log = logging.getLogger(__name__)

# The SCTP port both ends use unless the SDP says otherwise (RFC 8841 section 5).
DEFAULT_SCTP_PORT = 5000
# Largest message accepted or sent: what our SDP advertises (a=max-message-size,
# rtc/sdp.py) and browsers' own default; LiveKit's SDKs chunk streams far below it.
MAX_MESSAGE_SIZE = 262144
# SCTP packets waiting for the association's task; past it a flood loses its own packets.
MAX_QUEUED_PACKETS = 256
# Bytes a channel may have queued towards a slow peer before its messages are dropped.
MAX_BUFFERED_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """A data channel the pod opens itself, with its delivery guarantees."""

    label: str
    ordered: bool = True
    max_retransmits: int | None = None  # None: fully reliable


class SctpAssociation:
    """The data channels of one PeerConnection, carried over its DTLS association.

    ``send`` writes one SCTP packet as DTLS application data and returns
    whether the association could take it; ``on_message`` gets every message
    a peer sends on a channel whose label is in ``labels``, as bytes. The pod
    opens ``channels`` itself once the association is up (a LiveKit server
    opens ``_reliable`` and ``_lossy`` on the subscriber PeerConnection).
    """

    def __init__(
        self,
        send: Callable[[bytes], bool],
        on_message: Callable[[str, bytes], None],
        counters: MediaCounters,
        *,
        labels: Collection[str],
        channels: Sequence[ChannelSpec] = (),
    ) -> None:
        # Deferred: aiortc and the PyAV it pulls in are loaded by the first association, not by the pod's start.
        from mediapod.transport.sctp_stack import (
            DtlsLink,
            RTCDataChannel,
            RTCDataChannelParameters,
            ScreenedSctp,
        )

        self._counters = counters
        self._sctp = ScreenedSctp(DtlsLink(send), labels, MAX_MESSAGE_SIZE, on_message, self._count_drop)
        self._own: dict[str, RTCDataChannel] = {}
        for spec in channels:
            params = RTCDataChannelParameters(label=spec.label, ordered=spec.ordered, maxRetransmits=spec.max_retransmits)
            self._own[spec.label] = RTCDataChannel(self._sctp, params)
        self._inbound: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self, remote_port: int = DEFAULT_SCTP_PORT) -> None:
        """Begin the association (both ends send INIT, RFC 8841 section 9.3); DTLS must be connected."""
        if self._task is not None or self._closed:
            return
        self._task = asyncio.get_running_loop().create_task(self._run(remote_port), name="sctp")

    @property
    def established(self) -> bool:
        return self._sctp.state == "connected"

    def feed(self, packet: bytes) -> None:
        """One SCTP packet from the peer (DTLS application data), handled in order by the association's task."""
        if self._closed:
            return
        if len(self._inbound) >= MAX_QUEUED_PACKETS:
            self._count_drop("sctp_queue_full")
            return
        self._inbound.append(packet)
        self._wake.set()

    def send(self, label: str, data: bytes) -> bool:
        """Queue a binary message on the pod's own channel ``label``; False (counted) if it cannot go."""
        channel = self._own.get(label)
        if channel is None or channel.readyState != "open":
            self._count_drop("channel_not_open")
            return False
        if len(data) > MAX_MESSAGE_SIZE:
            self._count_drop("too_large")
            return False
        if channel.bufferedAmount + len(data) > MAX_BUFFERED_BYTES:
            self._count_drop("buffer_full")
            return False
        channel.send(data)
        return True

    def close(self) -> None:
        """Stop the association; an ABORT goes out if the DTLS association can still carry it."""
        if self._closed:
            return
        self._closed = True
        self._inbound.clear()
        if self._task is not None:
            self._task.cancel()
            self._task = None
            asyncio.get_running_loop().create_task(self._sctp.stop(), name="sctp-stop")

    async def _run(self, remote_port: int) -> None:
        await self._sctp.start(None, remote_port)
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._inbound:
                await self._handle(self._inbound.popleft())

    async def _handle(self, packet: bytes) -> None:
        try:
            await self._sctp._handle_data(packet)
        except Exception:  # a packet aiortc cannot digest must not end the association's task
            self._count_drop("sctp_malformed")
            log.debug("SCTP packet rejected by the association", exc_info=True)
            return
        # aiortc advertises a receive window but does not enforce it; a peer
        # that overruns it is holding our memory in its reassembly queues.
        if self._sctp._advertised_rwnd < 0:
            self._count_drop("sctp_window_exceeded")
            self.close()

    def _count_drop(self, reason: str) -> None:
        self._counters.data_drops[reason] += 1
