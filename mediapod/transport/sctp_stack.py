"""aiortc's SCTP association and DCEP (RFC 8832), screened, over our DTLS association.

The SCTP state machine and DCEP are aiortc's ``RTCSctpTransport``, not ours:
it is the SCTP stack the aiortc test peers already trust, written for
asyncio. It expects aiortc's own ``RTCDtlsTransport`` underneath; ``DtlsLink``
stands in for it with the four things it uses (``state``, ``_role``,
``_register_data_receiver``/``_unregister_data_receiver`` and ``_send_data``),
so our DtlsServer carries the SCTP packets.

What aiortc trusts and a media server cannot is screened in ``ScreenedSctp``,
at the seam where reassembled messages leave SCTP (``_receive``): malformed or
unexpected DCEP messages (aiortc asserts on them), channels we do not serve,
oversized messages.

This module is the only one that imports aiortc, whose package imports all of
aiortc and PyAV (FFmpeg): 18 MiB of RSS. sctp.py imports it with the first
association, so a pod that never carries a data channel never pays for it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection

from aiortc.rtcdatachannel import RTCDataChannel, RTCDataChannelParameters
from aiortc.rtcsctptransport import RTCSctpTransport

__all__ = ["DtlsLink", "RTCDataChannel", "RTCDataChannelParameters", "ScreenedSctp", "dcep_label", "dcep_problem"]

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


class DtlsLink:
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


class ScreenedSctp(RTCSctpTransport):
    """aiortc's association, with every reassembled message judged before aiortc or the owner sees it."""

    def __init__(
        self,
        link: DtlsLink,
        labels: Collection[str],
        max_message_size: int,
        on_message: Callable[[str, bytes], None],
        on_drop: Callable[[str], None],
    ) -> None:
        super().__init__(link)  # type: ignore[arg-type]  # DtlsLink stands in for RTCDtlsTransport
        self._labels = labels
        self._max_message_size = max_message_size
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
        if len(data) > self._max_message_size:
            self._on_drop("too_large")
            return
        if pp_id in (_PPID_STRING_EMPTY, _PPID_BINARY_EMPTY):
            data = b""  # the one placeholder byte of an empty message (RFC 8831 section 6.6)
        elif pp_id not in (_PPID_STRING, _PPID_BINARY):
            self._on_drop("unknown_payload_type")
            return
        self._on_message(channel.label, data)
