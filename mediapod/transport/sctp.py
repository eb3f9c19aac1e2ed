"""Data channels: an SCTP association (RFC 8261) over a PeerConnection's DTLS association.

The SCTP state machine and DCEP (RFC 8832) are aiortc's ``RTCSctpTransport``,
not ours: it is the SCTP stack the aiortc test peers already trust, written for
asyncio. It expects aiortc's own ``RTCDtlsTransport`` underneath; ``_DtlsLink``
stands in for it with the four things it uses (``state``, ``_role``,
``_register_data_receiver``/``_unregister_data_receiver`` and ``_send_data``),
so our DtlsServer carries the SCTP packets.

What aiortc trusts and a media server cannot is screened in ``_ScreenedSctp``,
at the seam where reassembled messages leave SCTP (``_receive``): malformed or
unexpected DCEP messages (aiortc asserts on them), channels we do not serve,
oversized messages. A peer that ignores our receive window, or floods faster
than the loop can take its packets, loses its own packets or association,
never the pod's memory.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from aiortc.rtcdatachannel import RTCDataChannel, RTCDataChannelParameters
from aiortc.rtcsctptransport import RTCSctpTransport

from mediapod.metrics import MediaCounters

log = logging.getLogger(__name__)

# SCTP payload protocol identifiers (RFC 8831 section 8) and DCEP message types (RFC 8832).
_PPID_DCEP = 50
_PPID_STRING = 51
_PPID_BINARY = 53
_PPID_STRING_EMPTY = 56
_PPID_BINARY_EMPTY = 57
_DCEP_ACK = 0x02
_DCEP_OPEN = 0x03
_DCEP_OPEN_HEADER = struct.Struct("!BBHLHH")
# Reliable, partially reliable by retransmits or by lifetime; each optionally unordered (0x80).
_DCEP_CHANNEL_TYPES = frozenset({0x00, 0x01, 0x02, 0x80, 0x81, 0x82})

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


class _DtlsLink:
    """The part of aiortc's RTCDtlsTransport that RTCSctpTransport uses, over our DtlsServer.

    The pod is always the DTLS server (dtls.py), which makes it the SCTP side
    with odd stream ids (RFC 8832 section 6).
    """

    state = "connected"
    _role = "server"

    def __init__(self, send: Callable[[bytes], bool]) -> None:
        self._send = send

    def _register_data_receiver(self, receiver: object) -> None:
        """Packets reach the association through SctpAssociation.feed, not a registration."""

    def _unregister_data_receiver(self, receiver: object) -> None:
        """See _register_data_receiver."""

    async def _send_data(self, data: bytes) -> None:
        # A closed DTLS association drops the packet; raising would surface as
        # an unretrieved exception in one of aiortc's timer tasks.
        self._send(data)


def dcep_problem(data: bytes, open_stream: bool) -> str:
    """Why a DCEP message cannot be handed to aiortc ("" if it can), judged on its bytes.

    aiortc asserts that an OPEN names a new stream and an ACK a known one,
    and decodes labels without checking; a peer must not be able to trip either.
    """
    if not data:
        return "dcep_malformed"
    if data[0] == _DCEP_ACK:
        return "" if open_stream else "dcep_unexpected"
    if data[0] != _DCEP_OPEN or len(data) < _DCEP_OPEN_HEADER.size:
        return "dcep_malformed"
    if open_stream:
        return "dcep_unexpected"
    _, channel_type, _, _, label_length, protocol_length = _DCEP_OPEN_HEADER.unpack_from(data)
    if channel_type not in _DCEP_CHANNEL_TYPES or len(data) != _DCEP_OPEN_HEADER.size + label_length + protocol_length:
        return "dcep_malformed"
    try:
        data[_DCEP_OPEN_HEADER.size :].decode("utf8")
    except UnicodeDecodeError:
        return "dcep_malformed"
    return ""


def dcep_label(data: bytes) -> str:
    """The label of a DCEP OPEN that dcep_problem accepted."""
    label_length = _DCEP_OPEN_HEADER.unpack_from(data)[4]
    return data[_DCEP_OPEN_HEADER.size : _DCEP_OPEN_HEADER.size + label_length].decode("utf8")


class _ScreenedSctp(RTCSctpTransport):
    """aiortc's association, with every reassembled message judged before aiortc or the owner sees it."""

    def __init__(
        self,
        link: _DtlsLink,
        labels: Collection[str],
        on_message: Callable[[str, bytes], None],
        on_drop: Callable[[str], None],
    ) -> None:
        super().__init__(link)  # type: ignore[arg-type]  # _DtlsLink stands in for RTCDtlsTransport
        self._labels = labels
        self._on_message = on_message
        self._on_drop = on_drop

    async def _receive(self, stream_id: int, pp_id: int, data: bytes) -> None:
        channel = self._data_channels.get(stream_id)
        if pp_id == _PPID_DCEP:
            problem = dcep_problem(data, channel is not None)
            if not problem and data[0] == _DCEP_OPEN and dcep_label(data) not in self._labels:
                problem = "unknown_channel"
            if problem:
                self._on_drop(problem)
                return
            await super()._receive(stream_id, pp_id, data)
            return
        if channel is None or channel.readyState != "open":
            self._on_drop("unknown_channel")
            return
        if len(data) > MAX_MESSAGE_SIZE:
            self._on_drop("too_large")
            return
        if pp_id in (_PPID_STRING_EMPTY, _PPID_BINARY_EMPTY):
            data = b""  # the one placeholder byte of an empty message (RFC 8831 section 6.6)
        elif pp_id not in (_PPID_STRING, _PPID_BINARY):
            self._on_drop("unknown_payload_type")
            return
        self._on_message(channel.label, data)


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
        self._counters = counters
        self._sctp = _ScreenedSctp(_DtlsLink(send), labels, on_message, self._count_drop)
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
        except Exception:  # noqa: BLE001 - a packet aiortc cannot digest must not end the association's task
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
