"""The relay between two nodes: sessions whose client is on one node and room on the other, and room calls.

Both nodes are real (MediaNode, SessionHost, RoomAdmin, SignalRelay,
SignalGateway, RoutedRoomAdmin); only Redis pub/sub is replaced, by
MemoryRouters that hand each serialized message to the other node's relay
on a later loop turn, as a subscription would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from mediapod import auth
from mediapod.config import LimitsConfig
from mediapod.protocol import relay_pb2, room_service_pb2, signal_pb2
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.participant import LeaveReason
from mediapod.signal.access import authenticate
from mediapod.signal.decoding import UndecodableRequest
from mediapod.signal.relay import MAX_PENDING_REQUESTS, _RelayedClient
from mediapod.signal.status import status_number
from mediapod.signal.stream import ProtocolViolation, StreamAbandoned
from tests.support.fake_signal import KEY, ROOM, SECRET, Bus, FakeTransport, Node, start_node, token

@pytest.fixture
async def two_nodes() -> AsyncIterator[Callable[..., tuple[Node, Node]]]:
    """Starts (edge, host), both with the given limits; the room is mapped to the host."""
    started: list[Node] = []

    def start(host_keys: dict[str, str] | None = None, **limits: object) -> tuple[Node, Node]:
        bus = Bus()
        config = LimitsConfig(**limits)  # type: ignore[arg-type]
        edge, host = start_node(bus, "edge", config), start_node(bus, "host", config, host_keys)
        bus.room_map[ROOM] = "host"
        started.extend((edge, host))
        return edge, host

    yield start
    for node in started:
        await node.relay.close()
        node.media.close()


@pytest.fixture
async def nodes(two_nodes: Callable[..., tuple[Node, Node]]) -> tuple[Node, Node]:
    return two_nodes()


class Client:
    """A client whose stream landed on a node: its session runs through that node's gateway."""

    def __init__(self, node: Node, identity: str = "alice", *, reading: bool = True, join_token: str | None = None) -> None:
        self.transport = FakeTransport(reading=reading)
        self.transport.request(join=signal_pb2.JoinRequest(token=join_token or token(identity)))
        self.task = asyncio.get_running_loop().create_task(node.gateway.serve(self.transport))

    async def joined(self) -> signal_pb2.JoinResponse:
        return (await self.transport.until("join"))[0].join

    async def ended(self, timeout: float = 2.0) -> None:
        await asyncio.wait_for(self.task, timeout)


async def until(condition: object, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.005)


def leaves(node: Node, reason: LeaveReason) -> int:
    return node.media.context.counters.leaves[reason.value]


async def test_a_client_on_the_edge_joins_the_room_on_the_host_and_is_answered_through_the_relay(nodes: tuple[Node, Node]) -> None:
    edge, host = nodes
    client = Client(edge)
    join = await client.joined()
    assert (join.node_id, join.participant.identity) == ("host", "alice")
    assert "alice" in host.media.rooms[ROOM].participants and ROOM not in edge.media.rooms
    client.transport.request(5, ping=signal_pb2.Ping(timestamp=99))
    assert (await client.transport.until("pong"))[0].pong.last_ping_timestamp == 99
    client.transport.request(6, mute=signal_pb2.MuteTrackRequest(sid="TR_nope"))
    error = (await client.transport.until("error"))[0].error
    assert (error.request_id, error.code) == (6, status_number(ErrorCode.NOT_FOUND))
    assert edge.relay.active_sessions == 1 and host.relay.active_sessions == 1


async def test_a_leave_through_the_edge_removes_the_participant_on_the_host(nodes: tuple[Node, Node]) -> None:
    edge, host = nodes
    client = Client(edge)
    await client.joined()
    client.transport.request(leave=signal_pb2.LeaveRequest())
    await client.ended()
    await until(lambda: not host.media.rooms[ROOM].participants)
    assert leaves(host, LeaveReason.CLIENT_INITIATED) == 1
    await until(lambda: edge.relay.active_sessions == 0 and host.relay.active_sessions == 0)


async def test_a_hang_up_at_the_edge_removes_the_participant_on_the_host(nodes: tuple[Node, Node]) -> None:
    edge, host = nodes
    client = Client(edge)
    await client.joined()
    client.transport.hang_up()
    await client.ended()
    await until(lambda: not host.media.rooms[ROOM].participants)


async def test_a_participant_removed_on_the_host_gets_its_leave_through_the_edge(nodes: tuple[Node, Node]) -> None:
    edge, host = nodes
    client = Client(edge)
    await client.joined()
    room = host.media.rooms[ROOM]
    room.remove_participant(room.participants["alice"], LeaveReason.PARTICIPANT_REMOVED)
    await client.ended()
    assert client.transport.of("leave")[-1].leave.reason == signal_pb2.LeaveRequest.PARTICIPANT_REMOVED


async def test_a_client_that_stops_reading_at_the_edge_is_abandoned_there_and_removed_as_stalled_on_the_host(
    two_nodes: Callable[..., tuple[Node, Node]],
) -> None:
    edge, host = two_nodes(signal_write_timeout=0.05)
    client = Client(edge)
    await client.joined()
    client.transport.reading.clear()
    client.transport.request(ping=signal_pb2.Ping(timestamp=1))  # its pong waits at the edge, past the deadline
    with pytest.raises(StreamAbandoned):
        await client.ended()
    await until(lambda: not host.media.rooms[ROOM].participants)
    assert leaves(host, LeaveReason.SIGNAL_STALLED) == 1


async def test_responses_piling_up_at_the_edge_past_the_budget_stall_the_session(two_nodes: Callable[..., tuple[Node, Node]]) -> None:
    edge, host = two_nodes(signal_queue_size=1000, signal_write_timeout=60)
    watcher = Client(edge, "watcher")
    await watcher.joined()
    watcher.transport.reading.clear()  # writes to it wait (within their deadline): only the budget can end it
    for index in range(20):
        passer_by = Client(host, f"passer-by-{index}")
        await passer_by.joined()
        passer_by.transport.hang_up()
        await passer_by.ended()
    with pytest.raises(StreamAbandoned):
        await watcher.ended()
    await until(lambda: "watcher" not in host.media.rooms[ROOM].participants)
    assert leaves(host, LeaveReason.SIGNAL_STALLED) == 1


async def test_undecodable_bytes_are_refused_at_the_edge_and_the_host_counts_a_protocol_violation(nodes: tuple[Node, Node]) -> None:
    edge, host = nodes
    client = Client(edge)
    await client.joined()
    client.transport.send(UndecodableRequest("a SignalRequest of 2 bytes could not be decoded (bad)"))
    with pytest.raises(ProtocolViolation, match="could not be decoded"):
        await client.ended()
    await until(lambda: not host.media.rooms[ROOM].participants)
    assert leaves(host, LeaveReason.PROTOCOL_VIOLATION) == 1


async def test_the_host_checks_the_token_again(two_nodes: Callable[..., tuple[Node, Node]]) -> None:
    # A token the edge accepts but the host's keys do not: the host refuses it with its own words.
    edge, host = two_nodes(host_keys={"other": SECRET})
    refused = Client(edge, "mallory")
    with pytest.raises(RequestError) as error:
        await refused.ended()
    assert error.value.code == ErrorCode.UNAUTHENTICATED and "unknown API key" in error.value.message
    assert ROOM not in host.media.rooms


async def test_a_draining_host_sends_the_room_elsewhere_here_when_the_map_says_so(nodes: tuple[Node, Node]) -> None:
    edge, host = nodes
    host.router.draining = True
    client = Client(edge)
    join = await client.joined()
    assert join.node_id == "edge" and "alice" in edge.media.rooms[ROOM].participants


async def test_a_host_that_stops_heartbeating_ends_the_edge_session_as_unavailable(nodes: tuple[Node, Node]) -> None:
    edge, host = nodes
    client = Client(edge)
    await client.joined()
    edge.router._bus.gone.add("host")  # noqa: SLF001 - the host crashed
    with pytest.raises(RequestError) as ended:
        await client.ended()
    assert ended.value.code == ErrorCode.UNAVAILABLE and "'host'" in ended.value.message
    edge.router._bus.gone.clear()  # noqa: SLF001 - back, so the edge's last messages go out at teardown


def _node_gone(node_id: str) -> relay_pb2.RelayMessage:
    return relay_pb2.RelayMessage(from_node="pod", node_gone=relay_pb2.NodeGone(node=node_id))


async def test_word_that_the_host_died_ends_the_edge_session_at_once_as_unavailable(nodes: tuple[Node, Node]) -> None:
    edge, _ = nodes
    client = Client(edge)
    await client.joined()
    edge.relay.handle(_node_gone("elsewhere"))  # another node's death ends nothing here
    edge.relay.handle(_node_gone("host"))  # its pod's supervisor saw the worker die; the heartbeat is still fresh
    with pytest.raises(RequestError) as ended:
        await client.ended(timeout=0.5)
    assert ended.value.code == ErrorCode.UNAVAILABLE and "'host'" in ended.value.message


async def test_word_that_the_edge_died_removes_its_participants_on_the_host(nodes: tuple[Node, Node]) -> None:
    edge, host = nodes
    await Client(edge).joined()
    host.relay.handle(_node_gone("edge"))
    await until(lambda: not host.media.rooms[ROOM].participants, timeout=0.5)
    assert host.relay.active_sessions == 0


async def test_a_request_for_a_session_the_host_forgot_ends_it_at_the_edge(nodes: tuple[Node, Node]) -> None:
    edge, host = nodes
    client = Client(edge)
    await client.joined()
    host.relay._hosted.clear()  # noqa: SLF001 - the host restarted under the same id
    client.transport.request(ping=signal_pb2.Ping(timestamp=1))
    with pytest.raises(RequestError) as ended:
        await client.ended()
    assert ended.value.code == ErrorCode.UNAVAILABLE and "no such session" in ended.value.message


async def test_room_calls_from_the_edge_run_on_the_host_with_its_checks(nodes: tuple[Node, Node]) -> None:
    edge, host = nodes
    client = Client(edge)
    await client.joined()
    admin = authenticate(auth.TokenVerifier({KEY: SECRET}), token("", room_join=False, room_admin=True, room_list=True))
    listed = await edge.rooms.list_participants(admin, room_service_pb2.ListParticipantsRequest(room=ROOM))
    assert [p.identity for p in listed.participants] == ["alice"]
    rooms = await edge.rooms.list_rooms(admin, room_service_pb2.ListRoomsRequest())
    assert [(r.name, r.node_id, r.num_participants) for r in rooms.rooms] == [(ROOM, "host", 1)]
    with pytest.raises(RequestError) as missing:
        await edge.rooms.remove_participant(admin, room_service_pb2.RoomParticipantIdentity(room=ROOM, identity="nobody"))
    assert missing.value.code == ErrorCode.NOT_FOUND
    await edge.rooms.remove_participant(admin, room_service_pb2.RoomParticipantIdentity(room=ROOM, identity="alice"))
    await client.ended()
    assert client.transport.of("leave")[-1].leave.reason == signal_pb2.LeaveRequest.PARTICIPANT_REMOVED


async def test_a_room_call_with_a_bad_token_is_refused_by_the_host(nodes: tuple[Node, Node]) -> None:
    edge, _ = nodes
    call = relay_pb2.RoomCall(token="a.b.c", list_participants=room_service_pb2.ListParticipantsRequest(room=ROOM))
    reply = await edge.relay.call("host", call)
    assert reply.code == status_number(ErrorCode.UNAUTHENTICATED) and reply.WhichOneof("reply") is None
    participant = relay_pb2.RoomCall(token=token("bob"), list_participants=room_service_pb2.ListParticipantsRequest(room=ROOM))
    reply = await edge.relay.call("host", participant)
    assert reply.code == status_number(ErrorCode.PERMISSION_DENIED) and "roomAdmin" in reply.message


async def test_a_room_call_to_a_node_that_does_not_listen_is_unavailable(nodes: tuple[Node, Node]) -> None:
    edge, _ = nodes
    with pytest.raises(RequestError) as unreachable:
        await edge.relay.call("nowhere", relay_pb2.RoomCall(token="t", list_rooms=room_service_pb2.ListRoomsRequest()))
    assert unreachable.value.code == ErrorCode.UNAVAILABLE


async def test_a_relayed_client_flooding_requests_ends_as_a_protocol_violation() -> None:
    """The host bounds the requests of a relayed session that wait to be handled:
    the backlog up to the bound is served, then the session ends."""
    client = _RelayedClient(outbox=None)  # type: ignore[arg-type]  # only reads and deliveries here
    for timestamp in range(MAX_PENDING_REQUESTS + 10):
        client.deliver(signal_pb2.SignalRequest(ping=signal_pb2.Ping(timestamp=timestamp)))
    served = [(await client.read()).ping.timestamp for _ in range(MAX_PENDING_REQUESTS)]  # type: ignore[union-attr]
    assert served == list(range(MAX_PENDING_REQUESTS))
    with pytest.raises(ProtocolViolation, match=f"more than {MAX_PENDING_REQUESTS} requests"):
        await client.read()


async def test_participant_and_room_updates_from_the_edge_reach_clients_on_the_host(nodes: tuple[Node, Node]) -> None:
    edge, _ = nodes
    alice, bob = Client(edge, "alice"), Client(edge, "bob")
    await alice.joined()
    await bob.joined()
    admin = authenticate(auth.TokenVerifier({KEY: SECRET}), token("", room_join=False, room_admin=True))
    update = room_service_pb2.UpdateParticipantRequest(room=ROOM, identity="alice", metadata="on stage", attributes={"k": "v"})
    info = await edge.rooms.update_participant(admin, update)
    assert (info.metadata, dict(info.attributes)) == ("on stage", {"k": "v"})
    got = await edge.rooms.get_participant(admin, room_service_pb2.RoomParticipantIdentity(room=ROOM, identity="alice"))
    assert got.metadata == "on stage"
    room = await edge.rooms.update_room_metadata(admin, room_service_pb2.UpdateRoomMetadataRequest(room=ROOM, metadata="agenda"))
    assert (room.metadata, room.node_id) == ("agenda", "host")
    await bob.transport.until("room_update")
    updates = [p for r in bob.transport.of("update") for p in r.update.participants if p.identity == "alice"]
    assert updates[-1].metadata == "on stage" and bob.transport.of("room_update")[-1].room_update.room.metadata == "agenda"
    await edge.rooms.send_data(admin, room_service_pb2.SendDataRequest(room=ROOM, data=b"x"))
    with pytest.raises(RequestError) as elsewhere:
        await edge.rooms.send_data(admin, room_service_pb2.SendDataRequest(room="other", data=b"x"))
    assert elsewhere.value.code == ErrorCode.PERMISSION_DENIED
