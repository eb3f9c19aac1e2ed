"""Data packets in a room: routing, limits, and the whole path over real SCTP, without sockets.

Clients are in-memory (tests/support/fake_client.py) with aiortc's SCTP
stack on their DTLS (tests/support/sctp_peer.py), so what a participant
receives is judged by a third-party data-channel implementation.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiortc.rtcdatachannel import RTCDataChannel

from mediapod.rtc.data import DataKind, DataMessage, DataRateLimit, RawDataCodec, recipients
from mediapod.rtc.participant import Participant, Permission
from mediapod.rtc.room import Room
from tests.support.fake_client import ClientPeer, Pod, RecordingSink, media_pod, new_room
from tests.support.peers import eventually
from tests.support.sctp_peer import SctpPeer


@dataclass
class Someone:
    sid: str
    identity: str


def message(sender: str = "PA_a", destinations: frozenset[str] = frozenset()) -> DataMessage:
    return DataMessage(DataKind.RELIABLE, "a", sender, b"hi", destination_identities=destinations)


# --- who gets a message --------------------------------------------------------------


def test_everyone_but_the_sender_gets_a_message_without_destinations() -> None:
    room = [Someone("PA_a", "a"), Someone("PA_b", "b"), Someone("PA_c", "c")]
    assert [p.identity for p in recipients(message(), room)] == ["b", "c"]


def test_only_destination_identities_get_a_message_that_names_them() -> None:
    room = [Someone("PA_a", "a"), Someone("PA_b", "b"), Someone("PA_c", "c")]
    assert [p.identity for p in recipients(message(destinations=frozenset({"b"})), room)] == ["b"]


def test_the_sender_never_gets_its_own_message_even_if_it_names_itself() -> None:
    room = [Someone("PA_a", "a"), Someone("PA_b", "b")]
    assert [p.identity for p in recipients(message(destinations=frozenset({"a", "b"})), room)] == ["b"]


def test_a_server_message_reaches_everyone() -> None:
    room = [Someone("PA_a", "a"), Someone("PA_b", "b")]
    assert [p.identity for p in recipients(message(sender=""), room)] == ["a", "b"]


def test_the_rate_limit_passes_a_burst_then_refuses_until_time_refills_it() -> None:
    limit = DataRateLimit(messages_per_second=10, bytes_per_second=1000)
    assert all(limit.allow(10, 0.0) for _ in range(10))
    assert not limit.allow(10, 0.0)
    assert limit.allow(10, 0.5)
    assert not limit.allow(995, 0.5)  # 990 bytes left: bytes run out before messages do


# --- the whole path: participant -> room -> participants, over SCTP ----------------


@dataclass
class DataMember:
    participant: Participant
    sink: RecordingSink
    client: ClientPeer
    peer: SctpPeer
    channels: dict[str, RTCDataChannel] = field(default_factory=dict)
    received: list[tuple[str, bytes]] = field(default_factory=list)



@contextlib.asynccontextmanager
async def data_member(pod: Pod, room: Room, identity: str, port: int, permission: Permission = Permission()) -> AsyncIterator[DataMember]:
    """Join with data channels, answer the pod's first subscriber offer (only its application m-line), connect SCTP."""
    sink = RecordingSink()
    participant = room.join(identity, identity, "", permission, True, sink, data_codec=RawDataCodec())
    room.activate(participant)
    [(offer,)] = sink.of("offer")
    assert "m=application" in offer
    client = ClientPeer(pod, port)
    await participant.handle_answer("answer", client.answer(offer))
    client.connect(offer)
    member = DataMember(participant, sink, client, SctpPeer(pod, client))

    @member.peer.sctp.on("datachannel")
    def on_channel(channel: RTCDataChannel) -> None:
        member.channels[channel.label] = channel
        channel.on("message", lambda data, label=channel.label: member.received.append((label, data)))

    async with member.peer.running():
        await eventually(lambda: set(member.channels) == {"_reliable", "_lossy"})
        yield member


async def test_a_message_reaches_every_other_participant_on_the_channel_of_its_kind() -> None:
    pod = media_pod()
    room = new_room(pod)
    async with data_member(pod, room, "a", 41000) as a, data_member(pod, room, "b", 41002) as b, data_member(pod, room, "c", 41004) as c:
        a.channels["_reliable"].send(b"hello all")
        a.channels["_lossy"].send(b"lossy hello")
        await eventually(lambda: len(b.received) == 2 and len(c.received) == 2)
        await asyncio.sleep(0.05)
        assert sorted(b.received) == sorted(c.received) == [("_lossy", b"lossy hello"), ("_reliable", b"hello all")]
        assert a.received == []
        assert pod.counters.data_packets_received == 2
        assert pod.counters.data_packets_forwarded == 4
        assert pod.counters.data_bytes_forwarded == 2 * (len(b"hello all") + len(b"lossy hello"))
    room.close("test over")


async def test_room_send_data_honors_destination_identities_and_a_third_gets_nothing() -> None:
    pod = media_pod()
    room = new_room(pod)
    async with data_member(pod, room, "a", 41010) as a, data_member(pod, room, "b", 41012) as b, data_member(pod, room, "c", 41014) as c:
        await eventually(lambda: room.send_data(DataMessage(DataKind.RELIABLE, "", "", b"ready")) == 3)
        await eventually(lambda: all(m.received for m in (a, b, c)))
        for m in (a, b, c):
            m.received.clear()
        delivered = room.send_data(DataMessage(DataKind.RELIABLE, "a", a.participant.sid, b"for b", destination_identities=frozenset({"b"})))
        assert delivered == 1
        await eventually(lambda: b.received == [("_reliable", b"for b")])
        await asyncio.sleep(0.05)
        assert a.received == c.received == []
    room.close("test over")


async def test_a_participant_without_can_publish_data_reaches_nobody() -> None:
    pod = media_pod()
    room = new_room(pod)
    muted = Permission(can_publish_data=False)
    async with data_member(pod, room, "a", 41020, muted) as a, data_member(pod, room, "b", 41022) as b:
        a.channels["_reliable"].send(b"not allowed")
        await eventually(lambda: pod.counters.data_drops["not_permitted"] == 1)
        assert b.received == []
    room.close("test over")

