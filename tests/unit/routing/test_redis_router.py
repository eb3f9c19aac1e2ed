"""RedisRouter against a real redis-server, with a stand-in for the node's rooms."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import Redis

from mediapod.config import MediaConfig, RedisConfig, RoutingConfig
from mediapod.metrics import MediaCounters, RoomGauges
from mediapod.protocol import node_pb2, relay_pb2
from mediapod.routing.redis_router import RedisRouter
from mediapod.routing.registry import Registry
from mediapod.rtc.errors import ErrorCode, RequestError
from tests.support.redis_server import RedisServer, free_port


@dataclass
class FakeContext:
    advertised_ip: str = "10.1.2.3"
    udp_port: int = 7882
    counters: MediaCounters = field(default_factory=MediaCounters)


@dataclass
class FakeNode:
    """The slice of MediaNode the router reads: its rooms, gauges and close hook."""

    rooms: dict[str, Any] = field(default_factory=dict)
    context: FakeContext = field(default_factory=FakeContext)
    room_closed_listeners: list[Any] = field(default_factory=list)

    def gauges(self) -> RoomGauges:
        return RoomGauges(len(self.rooms), 0, 0, 0)

    def close_room(self, name: str) -> None:
        del self.rooms[name]
        for listener in self.room_closed_listeners:
            listener(name)




def config(node_id: str, address: str, **routing: Any) -> MediaConfig:
    settings = {"heartbeat_interval": 0.2, "stale_timeout": 1.0, **routing}
    return MediaConfig(
        node_id=node_id, redis=RedisConfig(address=address, timeout=0.5), routing=RoutingConfig(**settings)
    )


@pytest.fixture
async def routers(redis_server: RedisServer, redis: Redis) -> AsyncIterator[Any]:
    started: list[RedisRouter] = []

    async def start(
        node_id: str,
        node: FakeNode | None = None,
        serving: bool = True,
        on_message: Callable[[relay_pb2.RelayMessage], None] | None = None,
        **routing: Any,
    ) -> RedisRouter:
        router = RedisRouter(config(node_id, redis_server.address, **routing), node or FakeNode())  # type: ignore[arg-type]
        await router.start(on_message)
        if serving:
            await router.set_serving(7880)
        started.append(router)
        return router

    yield start
    for router in started:
        await router.stop()


async def test_node_registers_starting_then_serving_and_unregisters_on_stop(routers: Any, redis: Redis) -> None:
    router = await routers("a", serving=False)
    table = Registry(redis)
    node = await table.node("a")
    assert node is not None and node.state == node_pb2.STARTING
    await router.set_serving(7999)
    node = await table.node("a")
    assert node is not None
    assert (node.state, node.ip, node.grpc_port, node.udp_port) == (node_pb2.SERVING, "10.1.2.3", 7999, 7882)
    assert abs(node.stats.updated_at / 1000 - time.time()) < 2
    await router.stop()
    assert await table.node("a") is None


async def test_stats_are_refreshed_every_heartbeat(routers: Any, redis: Redis) -> None:
    fake = FakeNode()
    await routers("a", fake)
    fake.rooms["r1"] = object()
    await asyncio.sleep(0.5)
    node = await Registry(redis).node("a")
    assert node is not None and node.stats.num_rooms == 1


async def test_new_room_is_claimed_once_and_every_node_agrees(routers: Any, redis: Redis) -> None:
    a, b = await routers("a"), await routers("b")
    owners = await asyncio.gather(*(r.node_for_room("room") for r in (a, b, a, b)))
    assert len(set(owners)) == 1
    assert await Registry(redis).room_node("room") == owners[0]


async def test_room_hosted_here_is_answered_without_redis(routers: Any, redis_server: RedisServer) -> None:
    router = await routers("a", FakeNode(rooms={"mine": object()}))
    assert await router.node_for_room("mine") == "a"
    assert await router.hosting_node("mine") == "a"


async def test_mapping_to_a_stale_node_is_replaced(routers: Any, redis: Redis) -> None:
    table = Registry(redis)
    dead = node_pb2.Node(id="dead", state=node_pb2.SERVING, stats=node_pb2.NodeStats(updated_at=int((time.time() - 60) * 1000)))
    await table.put_node(dead)
    await table.claim_room("room", "dead")
    router = await routers("a")
    assert await router.node_for_room("room") == "a"
    assert await table.room_node("room") == "a"


async def test_draining_node_gets_no_new_rooms_and_gives_up_mapped_rooms_it_does_not_host(routers: Any, redis: Redis) -> None:
    a, b = await routers("a"), await routers("b")
    await a.drain()
    for i in range(5):
        assert await b.node_for_room(f"new-{i}") == "b"
    # A mapping to the draining node for a room it does not have moves away.
    await Registry(redis).claim_room("orphan", "a", replacing="b")
    assert await a.node_for_room("orphan") == "b"
    assert not a.accepts_room("elsewhere")


async def test_no_node_left_is_a_clear_error(routers: Any) -> None:
    a = await routers("a")
    await a.drain()
    with pytest.raises(RequestError) as error:
        await a.node_for_room("room")
    assert error.value.code == ErrorCode.UNAVAILABLE
    assert "a draining" in error.value.message


async def test_closed_room_is_released(routers: Any, redis: Redis) -> None:
    fake = FakeNode()
    router = await routers("a", fake)
    assert await router.node_for_room("room") == "a"
    fake.rooms["room"] = object()
    fake.close_room("room")
    await asyncio.sleep(0.3)
    assert await Registry(redis).room_node("room") is None


async def test_node_and_its_rooms_come_back_after_redis_loses_everything(routers: Any, redis: Redis) -> None:
    fake = FakeNode(rooms={"kept": object()})
    await routers("a", fake)
    await redis.flushdb()
    await asyncio.sleep(0.5)
    table = Registry(redis)
    assert (await table.node("a")) is not None
    assert await table.room_node("kept") == "a"


async def test_unreachable_redis_fails_routing_fast_and_judges_no_node_gone() -> None:
    router = RedisRouter(config("a", f"127.0.0.1:{free_port()}"), FakeNode())  # type: ignore[arg-type]
    started = time.monotonic()
    await router.start()  # does not block on a missing Redis
    with pytest.raises(RequestError) as error:
        await router.node_for_room("room")
    assert error.value.code == ErrorCode.UNAVAILABLE
    assert "unreachable" in error.value.message
    assert not router.is_gone("b")
    assert time.monotonic() - started < 5
    await router.stop()


async def test_messages_reach_the_addressed_nodes_handler(routers: Any) -> None:
    received: list[relay_pb2.RelayMessage] = []
    a, b = await routers("a"), await routers("b", on_message=received.append)
    await a.send("b", relay_pb2.RelayMessage(session_id="s1", end=relay_pb2.SessionEnd(message="bye")))
    for _ in range(50):
        if received:
            break
        await asyncio.sleep(0.05)
    assert [(m.from_node, m.session_id, m.end.message) for m in received] == [("a", "s1", "bye")]
    with pytest.raises(RequestError):
        await a.send("nobody", relay_pb2.RelayMessage(session_id="s2"))


async def test_node_that_stops_heartbeating_is_gone_after_the_stale_timeout(routers: Any, redis: Redis) -> None:
    a = await routers("a")
    b = await routers("b")
    await asyncio.sleep(0.3)
    assert not a.is_gone("b")
    for task in (b._heartbeat_task, b._listen_task):
        task.cancel()  # as if b crashed
    await asyncio.sleep(2.5)
    assert a.is_gone("b")
    assert not a.is_gone("a")
