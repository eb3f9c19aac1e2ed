"""The shared UDP port: RFC 7983 demultiplexing, ICE-lite binding, and drop accounting.

These run a real UdpMux on 127.0.0.1 and talk to it from a real UDP socket.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator

import pytest
from aioice import stun

from mediapod.metrics import DROP_REASONS, MediaCounters
from mediapod.transport.dtls import DtlsCertificate
from mediapod.transport.ice import parse_stun
from mediapod.transport.peer import PeerTransport
from mediapod.transport.udp import UdpMux
from tests.support.stun_requests import REMOTE_UFRAG, binding_request
from tests.support.peers import eventually


# RTP v2, PT 96, seq 1, ts 0, SSRC 0x11223344, then 16 bytes that would be
# ciphertext and auth tag if this were SRTP.
SRTP_LOOKING = bytes.fromhex("80600001" "00000000" "11223344") + bytes(range(16))
# SRTCP-looking: RR header (PT 201) + sender SSRC + 14 bytes of "trailer".
SRTCP_LOOKING = bytes.fromhex("80c90001" "11223344") + bytes(14)
# DTLS 1.2 handshake record header (content type 22, version fe fd, epoch 0, seq 0, length 4) + junk.
DTLS_LOOKING = bytes.fromhex("16fefd" "0000" "000000000000" "0004") + b"\x01\x00\x00\x00"


class UdpClient(asyncio.DatagramProtocol):
    """A peer's socket: sends datagrams to the mux and queues what comes back."""

    def __init__(self, sock: socket.socket) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self._sock = sock

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait(data)

    @property
    def address(self) -> tuple[str, int]:
        return self._sock.getsockname()[:2]

    def send(self, data: bytes, to: tuple[str, int] | None) -> None:
        # Straight to the socket: asyncio's transport silently skips empty
        # datagrams before Python 3.13, and an empty datagram is a test case.
        # A UDP send on a non-blocking socket does not block the loop.
        assert to is not None
        self._sock.sendto(data, to)

    async def receive(self, timeout: float = 2.0) -> bytes:
        return await asyncio.wait_for(self.received.get(), timeout)


def drops_except_zero(counters: MediaCounters) -> dict[str, int]:
    return {reason: count for reason, count in counters.drops.items() if count}


@pytest.fixture
async def mux() -> AsyncIterator[UdpMux]:
    mux = await UdpMux.listen("127.0.0.1", 0, MediaCounters())
    yield mux
    mux.close()


@pytest.fixture
async def peer(mux: UdpMux) -> AsyncIterator[PeerTransport]:
    peer = PeerTransport(
        mux,
        DtlsCertificate.generate().ssl_context(),
        on_rtp=lambda packet: None,
        on_rtcp=lambda packets: None,
        on_state=lambda state: None,
    )
    yield peer
    peer.close()


@pytest.fixture
async def client() -> AsyncIterator[UdpClient]:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    transport, protocol = await loop.create_datagram_endpoint(lambda: UdpClient(sock), sock=sock)
    yield protocol
    transport.close()


async def test_mux_listens_on_an_ephemeral_port(mux: UdpMux) -> None:
    assert mux.local_address is not None
    host, port = mux.local_address
    assert host == "127.0.0.1"
    assert port > 0


async def test_valid_binding_request_is_answered_over_the_socket(
    mux: UdpMux, peer: PeerTransport, client: UdpClient
) -> None:
    request = binding_request(peer)
    client.send(request, mux.local_address)

    response = parse_stun(await client.receive())

    assert response.message_class == stun.Class.RESPONSE
    assert response.transaction_id == parse_stun(request).transaction_id
    assert response.attributes["XOR-MAPPED-ADDRESS"] == client.address
    assert response.check_message_integrity(peer.ice.local_pwd.encode())
    assert drops_except_zero(mux.counters) == {}


async def test_valid_binding_request_binds_the_source_address_to_the_peer(
    mux: UdpMux, peer: PeerTransport, client: UdpClient
) -> None:
    client.send(binding_request(peer), mux.local_address)
    await client.receive()

    assert peer.remote_addr == client.address


async def test_use_candidate_nominates_the_source_address(
    mux: UdpMux, peer: PeerTransport, client: UdpClient
) -> None:
    client.send(binding_request(peer, use_candidate=True), mux.local_address)
    await client.receive()

    assert peer.ice.nominated == client.address
    assert peer.remote_addr == client.address


async def test_srtp_before_dtls_finished_is_counted_not_ready(
    mux: UdpMux, peer: PeerTransport, client: UdpClient
) -> None:
    client.send(binding_request(peer), mux.local_address)
    await client.receive()

    client.send(SRTP_LOOKING, mux.local_address)
    client.send(SRTCP_LOOKING, mux.local_address)

    await eventually(lambda: mux.counters.drops["srtp_not_ready"] == 2)
    assert drops_except_zero(mux.counters) == {"srtp_not_ready": 2}
    assert not peer.connected


async def test_dtls_from_an_authenticated_address_reaches_the_peer(
    mux: UdpMux, peer: PeerTransport, client: UdpClient
) -> None:
    seen: list[bytes] = []
    peer.on_dtls = seen.append  # type: ignore[method-assign]
    client.send(binding_request(peer), mux.local_address)
    await client.receive()

    client.send(DTLS_LOOKING, mux.local_address)

    await eventually(lambda: seen == [DTLS_LOOKING])
    assert drops_except_zero(mux.counters) == {}


async def test_binding_request_with_a_wrong_password_gets_401_and_binds_nothing(
    mux: UdpMux, peer: PeerTransport, client: UdpClient
) -> None:
    client.send(binding_request(peer, password="this-is-not-the-password"), mux.local_address)

    response = parse_stun(await client.receive())

    assert response.message_class == stun.Class.ERROR
    assert response.error_code == 401
    assert mux.counters.drops["stun_unauthorized"] == 1
    assert peer.remote_addr is None
    # Still unknown: SRTP from the same address is not the peer's.
    client.send(SRTP_LOOKING, mux.local_address)
    await eventually(lambda: mux.counters.drops["srtp_unknown_peer"] == 1)


async def test_binding_request_for_an_unknown_ufrag_is_dropped_silently(
    mux: UdpMux, peer: PeerTransport, client: UdpClient
) -> None:
    client.send(binding_request(peer, ufrag="nobody"), mux.local_address)

    await eventually(lambda: mux.counters.drops["stun_unknown_ufrag"] == 1)
    await asyncio.sleep(0.05)
    assert client.received.empty()
    assert peer.remote_addr is None


async def test_binding_request_for_a_closed_peer_is_dropped(
    mux: UdpMux, peer: PeerTransport, client: UdpClient
) -> None:
    request = binding_request(peer)
    peer.close()

    client.send(request, mux.local_address)

    await eventually(lambda: mux.counters.drops["stun_unknown_ufrag"] == 1)


async def test_closing_a_peer_unbinds_its_address(mux: UdpMux, peer: PeerTransport, client: UdpClient) -> None:
    client.send(binding_request(peer), mux.local_address)
    await client.receive()
    peer.close()

    client.send(SRTP_LOOKING, mux.local_address)

    await eventually(lambda: mux.counters.drops["srtp_unknown_peer"] == 1)


async def test_binding_indication_for_a_peer_is_dropped_as_malformed(
    mux: UdpMux, peer: PeerTransport, client: UdpClient
) -> None:
    indication = stun.Message(stun.Method.BINDING, stun.Class.INDICATION)
    indication.attributes["USERNAME"] = f"{peer.ice.local_ufrag}:{REMOTE_UFRAG}"
    indication.add_fingerprint()

    client.send(bytes(indication), mux.local_address)

    await eventually(lambda: mux.counters.drops["stun_malformed"] == 1)
    assert peer.remote_addr is None


def _truncated_stun() -> bytes:
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    request.attributes["USERNAME"] = "abcd:efgh"
    request.add_message_integrity(b"password-password-pw")
    return bytes(request)[:-6]


UNWANTED = {
    "empty datagram": (b"", "unknown_first_byte"),
    "first byte 4 (below DTLS)": (bytes([4]) + bytes(19), "unknown_first_byte"),
    "first byte 19 (ZRTP range)": (bytes([19]) + bytes(19), "unknown_first_byte"),
    "first byte 64 (TURN channel)": (bytes([64]) + bytes(19), "unknown_first_byte"),
    "first byte 127": (bytes([127]) + bytes(19), "unknown_first_byte"),
    "first byte 192": (bytes([192]) + bytes(19), "unknown_first_byte"),
    "first byte 255": (bytes([255]) + bytes(19), "unknown_first_byte"),
    "noise 7f": (bytes.fromhex("7f3a9c01e55d0b8826f4"), "unknown_first_byte"),
    "noise d3": (bytes.fromhex("d3e0a1b2c3d4e5f60718293a4b5c6d7e"), "unknown_first_byte"),
    "single STUN byte": (b"\x00", "stun_malformed"),
    "truncated STUN": (_truncated_stun(), "stun_malformed"),
    "STUN header only with bad length": (bytes.fromhex("00010004" "2112a442") + bytes(12), "stun_malformed"),
    "DTLS from an unknown address": (DTLS_LOOKING, "dtls_unknown_peer"),
    "first byte 63 from an unknown address": (bytes([63]) + bytes(12), "dtls_unknown_peer"),
    "SRTP from an unknown address": (SRTP_LOOKING, "srtp_unknown_peer"),
    "SRTCP from an unknown address": (SRTCP_LOOKING, "srtp_unknown_peer"),
    "first byte 191 from an unknown address": (bytes([191]) + bytes(11), "srtp_unknown_peer"),
}


@pytest.mark.parametrize(("datagram", "reason"), UNWANTED.values(), ids=UNWANTED.keys())
async def test_unwanted_datagram_is_dropped_and_counted(
    mux: UdpMux, peer: PeerTransport, client: UdpClient, datagram: bytes, reason: str
) -> None:
    assert reason in DROP_REASONS

    client.send(datagram, mux.local_address)

    await eventually(lambda: mux.counters.drops[reason] == 1)
    assert drops_except_zero(mux.counters) == {reason: 1}
    await asyncio.sleep(0.02)
    assert client.received.empty()
    assert peer.remote_addr is None


async def test_random_datagrams_are_each_dropped_and_counted_once(
    mux: UdpMux, peer: PeerTransport, client: UdpClient
) -> None:
    # Every datagram must end in exactly one drop counter; one that raised in
    # datagram_received would be missing from the total.
    rng = random.Random(7983)
    datagrams = [rng.randbytes(rng.randrange(0, 200)) for _ in range(300)]

    for datagram in datagrams:
        client.send(datagram, mux.local_address)
        await asyncio.sleep(0)

    await eventually(lambda: sum(mux.counters.drops.values()) == len(datagrams))
    assert peer.remote_addr is None
    assert client.received.empty()


async def test_drop_reasons_all_start_at_zero() -> None:
    counters = MediaCounters()

    assert set(counters.drops) == set(DROP_REASONS)
    assert all(count == 0 for count in counters.drops.values())


class CongestedSocket(socket.socket):
    """A UDP socket whose buffer is full for the sends numbered in ``full_at`` (the kernel's EAGAIN)."""

    def __init__(self, full_at: set[int]) -> None:
        super().__init__(socket.AF_INET, socket.SOCK_DGRAM)
        self.full_at = full_at
        self.sends = 0

    def sendto(self, data, address):  # type: ignore[no-untyped-def, override]
        self.sends += 1
        if self.sends in self.full_at:
            raise BlockingIOError
        return super().sendto(data, address)


async def test_sends_keep_their_order_when_the_socket_buffer_is_full(client: UdpClient) -> None:
    """Packets go straight to the socket; one the socket refuses is queued by asyncio's transport, and the ones
    after it wait behind it there instead of overtaking it."""
    sock = CongestedSocket(full_at={4, 5})
    sock.setblocking(False)
    sock.bind(("127.0.0.1", 0))
    loop = asyncio.get_running_loop()
    _, mux = await loop.create_datagram_endpoint(lambda: UdpMux(MediaCounters(), sock), sock=sock)
    try:
        for n in range(20):
            mux.sendto(n.to_bytes(2, "big"), client.address)
        received = [int.from_bytes(await client.receive(), "big") for _ in range(20)]
    finally:
        mux.close()
    assert received == list(range(20))
    assert sock.sends > 20, "the refused packets were sent again once the socket took them"
