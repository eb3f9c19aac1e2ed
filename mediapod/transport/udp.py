"""One UDP socket per port, shared by every peer, demultiplexed per RFC 7983.

First byte 0-3 is STUN, 20-63 DTLS, 128-191 RTP/RTCP; anything else is
counted and dropped. STUN is routed by the ufrag in USERNAME (the only way to
know a new peer), DTLS and SRTP by the source address that a binding request
authenticated. Unauthenticated addresses never reach DTLS or SRTP.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Protocol

from aioice import stun

from mediapod.metrics import MediaCounters
from mediapod.transport.ice import Address, BindingResult, MalformedStun, local_ufrag_of, parse_stun


class MuxEndpoint(Protocol):
    """One PeerConnection's share of the port: all the mux knows of a transport.

    The mux finds an endpoint by the ufrag of a binding request and, once the
    endpoint has authenticated a request from an address, by that address;
    what ICE, DTLS and SRTP mean is the endpoint's business.
    """

    def check(self, message: stun.Message, addr: Address) -> BindingResult | None:
        """Answer a binding request for this endpoint's ufrag; None to drop it."""
        ...

    def on_dtls(self, data: bytes) -> None: ...

    def on_srtp(self, data: bytes) -> None: ...


class UdpMux(asyncio.DatagramProtocol):
    """The media pod's UDP port: routes datagrams to the endpoints of PeerConnections.

    Sends go straight to the socket (``sock``, non-blocking), not through
    the asyncio transport's ``sendto``: every forwarded packet is one send,
    and the transport's checks cost a Python frame each. Only when the
    socket's buffer is full does a datagram go to the transport, which
    queues it until the socket is writable; later sends follow it there
    until that queue has drained, so datagrams leave in the order sent.
    """

    def __init__(self, counters: MediaCounters, sock: socket.socket | None = None) -> None:
        """sock: the bound socket the transport was made from; without it every send goes through the transport."""
        self.counters = counters
        self._by_ufrag: dict[str, MuxEndpoint] = {}
        self._by_addr: dict[Address, MuxEndpoint] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._sock = sock
        self._send_direct: Callable[[bytes, Address], int] | None = None
        self._queued = False  # the transport holds datagrams the socket would not take yet
        self.local_address: Address | None = None

    @classmethod
    async def listen(cls, host: str, port: int, counters: MediaCounters) -> UdpMux:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
        sock.bind((host, port))
        _, mux = await loop.create_datagram_endpoint(lambda: cls(counters, sock), sock=sock)
        return mux

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.local_address = transport.get_extra_info("sockname")[:2]
        if self._sock is not None:
            self._send_direct = self._sock.sendto

    def close(self) -> None:
        self._send_direct = None
        if self._transport is not None:
            self._transport.close()

    def register(self, ufrag: str, endpoint: MuxEndpoint) -> None:
        self._by_ufrag[ufrag] = endpoint

    def unregister(self, ufrag: str) -> None:
        endpoint = self._by_ufrag.pop(ufrag, None)
        for addr in [a for a, e in self._by_addr.items() if e is endpoint]:
            del self._by_addr[addr]

    def sendto(self, data: bytes, addr: Address) -> None:
        send = self._send_direct
        if send is not None and not self._queued:
            try:
                send(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self._queued = True  # the transport queues this one and keeps the order from here
            except OSError as exc:
                self.error_received(exc)  # as the transport would: ICMP errors surface on the next send
                return
        transport = self._transport
        if transport is not None:
            transport.sendto(data, addr)
            if self._queued and not transport.get_write_buffer_size():
                self._queued = False

    def datagram_received(self, data: bytes, addr: Address) -> None:  # type: ignore[override]
        if not data:
            self.counters.drops["unknown_first_byte"] += 1
            return
        first = data[0]
        if first >= 128:
            if first > 191:
                self.counters.drops["unknown_first_byte"] += 1
                return
            peer = self._by_addr.get(addr)
            if peer is None:
                self.counters.drops["srtp_unknown_peer"] += 1
                return
            peer.on_srtp(data)
        elif first < 4:
            self._on_stun(data, addr)
        elif 20 <= first <= 63:
            peer = self._by_addr.get(addr)
            if peer is None:
                self.counters.drops["dtls_unknown_peer"] += 1
                return
            peer.on_dtls(data)
        else:
            self.counters.drops["unknown_first_byte"] += 1

    def _on_stun(self, data: bytes, addr: Address) -> None:
        try:
            message = parse_stun(data)
        except MalformedStun:
            self.counters.drops["stun_malformed"] += 1
            return
        ufrag = local_ufrag_of(message)
        endpoint = self._by_ufrag.get(ufrag) if ufrag else None
        if endpoint is None:
            self.counters.drops["stun_unknown_ufrag"] += 1
            return
        result = endpoint.check(message, addr)
        if result is None:
            self.counters.drops["stun_malformed"] += 1
            return
        self.sendto(result.response, addr)
        if result.ok:
            self._by_addr[addr] = endpoint
        else:
            self.counters.drops["stun_unauthorized"] += 1

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a vanished peer; consent expiry handles it.
        pass
