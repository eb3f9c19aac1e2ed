"""SCTP data channels over the pod's DTLS association, against aiortc's SCTP stack as the peer.

The pod's side is real (UdpMux, PeerTransport, DtlsServer, SctpAssociation);
the client is a pyOpenSSL DTLS client carrying aiortc's RTCSctpTransport
(tests/support/sctp_peer.py), so only the UDP socket is replaced.
"""

from __future__ import annotations

import asyncio
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import google_crc32c
import pytest
from aiortc.rtcdatachannel import RTCDataChannel, RTCDataChannelParameters
from aiortc.rtcsctptransport import (
    DataChunk,
    HeartbeatChunk,
    InitChunk,
    serialize_packet,
)

from mediapod.rtc import sdp
from mediapod.rtc.data import DATA_LABELS, SERVER_CHANNELS
from mediapod.transport import sctp
from mediapod.transport.peer import PeerTransport, TransportState
from tests.support.fake_client import ClientPeer, Pod, media_pod
from tests.support.peers import eventually
from tests.support.sctp_peer import SctpPeer


@dataclass
class Link:
    """A connected PeerTransport with data channels, its client, and what the pod's side received."""

    pod: Pod
    transport: PeerTransport
    client: ClientPeer
    peer: SctpPeer
    received: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def drops(self) -> dict[str, int]:
        return {reason: n for reason, n in self.pod.counters.data_drops.items() if n}


def connected(pod: Pod, received: list[tuple[str, bytes]], *, data: bool = True) -> tuple[PeerTransport, ClientPeer]:
    states: list[TransportState] = []
    transport = PeerTransport(
        pod.context.mux,
        pod.context.ssl_context,
        on_rtp=lambda packet: None,
        on_rtcp=lambda packets: None,
        on_state=states.append,
        on_data=lambda label, payload: received.append((label, payload)),
        data_labels=DATA_LABELS,
        data_channels=SERVER_CHANNELS,
    )
    client = ClientPeer(pod)
    transport.set_remote_parameters(client.ufrag, [("sha-256", client.dtls.certificate.fingerprint)])
    if data:
        transport.accept_data_channels()
    client.connect(f"v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-ufrag:{transport.ice.local_ufrag}\r\na=ice-pwd:{transport.ice.local_pwd}\r\n")
    assert states == [TransportState.CONNECTED]
    return transport, client


@pytest.fixture
async def link() -> AsyncIterator[Link]:
    pod = media_pod()
    received: list[tuple[str, bytes]] = []
    transport, client = connected(pod, received)
    peer = SctpPeer(pod, client)
    async with peer.running():
        yield Link(pod, transport, client, peer, received)
    transport.close()



def open_channel(link: Link, label: str, **options: object) -> RTCDataChannel:
    return RTCDataChannel(link.peer.sctp, RTCDataChannelParameters(label=label, **options))  # type: ignore[arg-type]


# --- channels the client opens (publisher PeerConnection) ------------------------


async def test_client_channels_open_and_their_messages_reach_the_owner_by_label(link: Link) -> None:
    reliable = open_channel(link, "_reliable")
    lossy = open_channel(link, "_lossy", ordered=False, maxRetransmits=0)
    await eventually(lambda: reliable.readyState == "open" and lossy.readyState == "open")

    reliable.send(b"\x00binary payload")
    lossy.send(b"lossy")
    reliable.send("text")
    reliable.send(b"")

    await eventually(lambda: len(link.received) == 4)
    assert sorted(link.received) == sorted(
        [("_reliable", b"\x00binary payload"), ("_lossy", b"lossy"), ("_reliable", b"text"), ("_reliable", b"")]
    )
    assert link.drops == {}


async def test_a_channel_with_a_label_we_do_not_serve_never_opens(link: Link) -> None:
    other = open_channel(link, "chat")
    reliable = open_channel(link, "_reliable")
    await eventually(lambda: reliable.readyState == "open")
    await eventually(lambda: link.drops.get("unknown_channel", 0) >= 1)
    assert other.readyState == "connecting"
    assert link.received == []


# --- channels the pod opens (subscriber PeerConnection) ---------------------------


async def test_the_pod_opens_reliable_and_lossy_and_sends_on_them(link: Link) -> None:
    opened: dict[str, RTCDataChannel] = {}
    messages: list[tuple[str, bytes]] = []

    @link.peer.sctp.on("datachannel")
    def on_channel(channel: RTCDataChannel) -> None:
        opened[channel.label] = channel
        channel.on("message", lambda data, label=channel.label: messages.append((label, data)))

    await eventually(lambda: set(opened) == {"_reliable", "_lossy"})
    assert (opened["_reliable"].ordered, opened["_reliable"].maxRetransmits) == (True, None)
    assert (opened["_lossy"].ordered, opened["_lossy"].maxRetransmits) == (False, 0)
    assert all(channel.id % 2 == 1 for channel in opened.values())  # the DTLS server's odd ids (RFC 8832)
    await eventually(lambda: link.transport.send_data("_reliable", b"to the client"))
    assert link.transport.send_data("_lossy", b"lossy to the client")
    big = bytes(range(256)) * 200  # 51 200 bytes: fragmented over many SCTP packets
    assert link.transport.send_data("_reliable", big)

    await eventually(lambda: len(messages) == 3)
    assert sorted(messages) == sorted([("_reliable", b"to the client"), ("_lossy", b"lossy to the client"), ("_reliable", big)])


async def test_sending_on_a_channel_the_pod_does_not_own_is_refused_and_counted(link: Link) -> None:
    assert not link.transport.send_data("chat", b"nobody")
    assert link.drops == {"channel_not_open": 1}


async def test_a_message_over_the_size_limit_is_not_sent(link: Link) -> None:
    await eventually(lambda: link.transport.send_data("_reliable", b"ready"), interval=0.01)
    assert not link.transport.send_data("_reliable", b"x" * (sctp.MAX_MESSAGE_SIZE + 1))
    assert link.drops["too_large"] == 1


def test_the_size_limit_is_the_one_our_sdp_advertises() -> None:
    assert sctp.MAX_MESSAGE_SIZE == sdp.MAX_MESSAGE_SIZE
    assert sctp.DEFAULT_SCTP_PORT == sdp.SCTP_PORT


# --- bad input ---------------------------------------------------------------------


async def test_an_oversized_message_from_the_client_is_dropped_and_the_channel_still_works(link: Link) -> None:
    reliable = open_channel(link, "_reliable")
    await eventually(lambda: reliable.readyState == "open")
    reliable.send(b"y" * (sctp.MAX_MESSAGE_SIZE + 1))
    reliable.send(b"after")
    await eventually(lambda: link.received == [("_reliable", b"after")])
    assert link.drops == {"too_large": 1}


@pytest.mark.parametrize(
    ("dcep", "reason"),
    [
        (b"\x07", "dcep_malformed"),
        (b"\x03\x00\x00\x00", "dcep_malformed"),  # OPEN shorter than its header
        (struct.pack("!BBHLHH", 3, 0, 0, 0, 50, 0) + b"_reliable", "dcep_malformed"),  # label length past the end
        (struct.pack("!BBHLHH", 3, 0x42, 0, 0, 9, 0) + b"_reliable", "dcep_malformed"),  # no such channel type
        (struct.pack("!BBHLHH", 3, 0, 0, 0, 2, 0) + b"\xff\xfe", "dcep_malformed"),  # label not UTF-8
        (b"\x02", "dcep_unexpected"),  # ACK for a stream nobody opened
    ],
)
async def test_malformed_dcep_is_counted_and_the_association_keeps_working(link: Link, dcep: bytes, reason: str) -> None:
    await link.peer.sctp._send(100, 50, dcep)
    reliable = open_channel(link, "_reliable")
    await eventually(lambda: reliable.readyState == "open")
    reliable.send(b"still fine")
    await eventually(lambda: link.received == [("_reliable", b"still fine")])
    assert link.drops == {reason: 1}


async def test_a_second_open_on_an_open_stream_is_refused(link: Link) -> None:
    reliable = open_channel(link, "_reliable")
    await eventually(lambda: reliable.readyState == "open")
    assert reliable.id is not None
    await link.peer.sctp._send(reliable.id, 50, struct.pack("!BBHLHH", 3, 0, 0, 0, 5, 0) + b"_lossy")
    reliable.send(b"same channel")
    await eventually(lambda: link.received == [("_reliable", b"same channel")])
    assert link.drops == {"dcep_unexpected": 1}


async def test_a_message_on_a_stream_no_channel_opened_is_counted(link: Link) -> None:
    await link.peer.sctp._send(200, 53, b"stray")
    await eventually(lambda: link.drops == {"unknown_channel": 1})
    assert link.received == []


async def test_an_sctp_packet_aiortc_cannot_digest_is_counted_not_raised(link: Link) -> None:
    # An INIT bundled with another chunk trips an assertion inside aiortc.
    init = InitChunk()
    init.initiate_tag, init.advertised_rwnd, init.outbound_streams, init.inbound_streams, init.initial_tsn = 1, 65536, 1, 1, 1
    packet = serialize_packet(5000, 5000, 0, init)
    bundled = packet + bytes(init)
    crc = google_crc32c.value(bundled[:8] + b"\x00\x00\x00\x00" + bundled[12:])
    bundled = bundled[:8] + struct.pack("<L", crc) + bundled[12:]
    link.client.dtls.ssl.send(bundled)
    for datagram in link.client.dtls.drain():
        link.client.send_datagram(datagram)
    await eventually(lambda: link.drops == {"sctp_malformed": 1})
    reliable = open_channel(link, "_reliable")
    await eventually(lambda: reliable.readyState == "open")


async def test_a_flood_of_packets_loses_its_own_packets_and_the_association_survives(link: Link) -> None:
    reliable = open_channel(link, "_reliable")
    await eventually(lambda: reliable.readyState == "open")
    heartbeat = serialize_packet(5000, 5000, 0xBAD, HeartbeatChunk())  # a wrong verification tag: ignored by SCTP
    for _ in range(sctp.MAX_QUEUED_PACKETS * 3):
        link.client.dtls.ssl.send(heartbeat)
        for datagram in link.client.dtls.drain():
            link.client.send_datagram(datagram)
    assert link.drops["sctp_queue_full"] >= sctp.MAX_QUEUED_PACKETS
    reliable.send(b"after the flood")
    await eventually(lambda: ("_reliable", b"after the flood") in link.received)


async def test_a_peer_overrunning_the_receive_window_loses_its_association(link: Link) -> None:
    client = link.peer.sctp
    reliable = open_channel(link, "_reliable")
    await eventually(lambda: reliable.readyState == "open")
    # First fragments of ordered messages that never finish: held for reassembly, past our window.
    for _ in range(1000):
        chunk = DataChunk(flags=0x02)
        chunk.tsn, chunk.stream_id, chunk.stream_seq, chunk.protocol = client._local_tsn, reliable.id, 50, 53
        chunk.user_data = b"z" * 1100
        client._local_tsn = (client._local_tsn + 1) % (1 << 32)
        await client._send_chunk(chunk)
        await asyncio.sleep(0)
    await eventually(lambda: link.drops.get("sctp_window_exceeded") == 1)


async def test_application_data_without_negotiated_data_channels_is_counted() -> None:
    pod = media_pod()
    transport, client = connected(pod, [], data=False)
    client.dtls.ssl.send(b"sctp nobody asked for")
    for datagram in client.dtls.drain():
        client.send_datagram(datagram)
    assert pod.counters.data_drops["no_association"] == 1
    transport.close()


def test_a_pod_loads_aiortc_with_its_first_data_channel_not_at_start() -> None:
    # aiortc's package imports all of aiortc and PyAV: 18 MiB of an idle pod's RSS.
    probe = "import sys, mediapod.pod; print(sorted({'aiortc', 'av'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-P", "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
