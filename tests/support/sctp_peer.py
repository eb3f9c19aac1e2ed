"""A browser's data channels for tests: aiortc's SCTP stack on a ClientPeer's in-memory DTLS client.

aiortc's ``RTCSctpTransport`` is a third-party SCTP/DCEP implementation,
so the pod's association is judged by a peer nobody on this team wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiortc.rtcsctptransport import RTCSctpCapabilities, RTCSctpTransport
from OpenSSL import SSL

from tests.support.fake_client import ClientPeer, Pod


class _ClientDtlsLink:
    """What aiortc's SCTP needs of its DTLS transport, over the ClientPeer's pyOpenSSL client."""

    state = "connected"
    _role = "client"  # browsers answer our actpass with active: they are the DTLS client

    def __init__(self, peer: ClientPeer) -> None:
        self._peer = peer

    def _register_data_receiver(self, receiver: object) -> None:
        """The pump below hands packets over."""

    def _unregister_data_receiver(self, receiver: object) -> None:
        """The pump below hands packets over."""

    async def _send_data(self, data: bytes) -> None:
        self._peer.dtls.ssl.send(data)
        for datagram in self._peer.dtls.drain():
            self._peer.send_datagram(datagram)


class SctpPeer:
    """aiortc's SCTP association on the client side of a connected ClientPeer."""

    def __init__(self, pod: Pod, peer: ClientPeer, max_message_size: int = 0) -> None:
        self._pod = pod
        self._peer = peer
        self.sctp = RTCSctpTransport(_ClientDtlsLink(peer))  # type: ignore[arg-type]
        self._max_message_size = max_message_size

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SctpPeer]:
        """Start the association and pump the pod's DTLS records into it until the block ends."""
        await self.sctp.start(RTCSctpCapabilities(maxMessageSize=self._max_message_size), 5000)
        pump = asyncio.get_running_loop().create_task(self._pump())
        try:
            yield self
        finally:
            pump.cancel()
            await self.sctp.stop()

    async def _pump(self) -> None:
        ssl = self._peer.dtls.ssl
        while True:
            for datagram in self._pod.socket.take(self._peer.address):
                if not 20 <= datagram[0] <= 63:
                    continue
                ssl.bio_write(datagram)
                while True:
                    try:
                        record = ssl.recv(16384)
                    except (SSL.WantReadError, SSL.ZeroReturnError):
                        break
                    await self.sctp._handle_data(record)
            await asyncio.sleep(0.001)
