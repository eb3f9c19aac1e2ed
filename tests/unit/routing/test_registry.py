"""The routing table's Redis keys and scripts, against a real redis-server."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from mediapod.protocol import node_pb2
from mediapod.routing import registry
from mediapod.routing.registry import Registry


def test_keys_are_the_ones_livekit_and_the_operator_use() -> None:
    assert registry.NODES == "nodes"
    assert registry.ROOM_NODE_MAP == "room_node_map"
    assert registry.channel("node-a") == "switchboard:node:node-a"


async def test_node_round_trips_as_serialized_protobuf_in_the_nodes_hash(redis: Redis) -> None:
    table = Registry(redis)
    node = node_pb2.Node(id="a", ip="10.0.0.1", grpc_port=7880, udp_port=7882, region="eu", state=node_pb2.SERVING,
                         stats=node_pb2.NodeStats(updated_at=123, num_rooms=2))
    assert await table.put_node(node) is True
    assert await table.put_node(node) is False  # already there: a refresh, not a registration
    assert node_pb2.Node.FromString(await redis.hget("nodes", "a")) == node
    assert await table.nodes() == {"a": node}
    assert await table.node("a") == node
    await table.remove_node("a")
    assert await table.nodes() == {}


async def test_malformed_node_entry_is_skipped(redis: Redis) -> None:
    await redis.hset("nodes", "junk", b"\xff\xff\xff")
    await Registry(redis).put_node(node_pb2.Node(id="ok"))
    assert list(await Registry(redis).nodes()) == ["ok"]


async def test_first_claim_wins_and_later_claims_see_the_owner(redis: Redis) -> None:
    table = Registry(redis)
    assert await table.claim_room("r", "a") == "a"
    assert await table.claim_room("r", "b") == "a"
    assert await table.room_node("r") == "a"


async def test_racing_claims_end_with_one_mapping(redis: Redis) -> None:
    clients = [Redis.from_url(f"redis://127.0.0.1:{redis.connection_pool.connection_kwargs['port']}") for _ in range(10)]
    try:
        owners = await asyncio.gather(*(Registry(c).claim_room("race", f"node-{i}") for i, c in enumerate(clients)))
    finally:
        for c in clients:
            await c.aclose()
    assert len(set(owners)) == 1
    assert await Registry(redis).room_node("race") == owners[0]


async def test_mapping_to_a_gone_node_is_replaced_only_by_compare_and_set(redis: Redis) -> None:
    table = Registry(redis)
    await table.claim_room("r", "dead")
    assert await table.claim_room("r", "b", replacing="dead") == "b"
    # A second node that also saw "dead" loses: the mapping moved on.
    assert await table.claim_room("r", "c", replacing="dead") == "b"
    assert await table.room_node("r") == "b"


async def test_release_only_forgets_the_callers_own_mapping(redis: Redis) -> None:
    table = Registry(redis)
    await table.claim_room("r", "a")
    assert await table.release_room("r", "b") is False
    assert await table.room_node("r") == "a"
    assert await table.release_room("r", "a") is True
    assert await table.room_node("r") is None


async def test_restore_rooms_remaps_what_redis_lost_and_reports_conflicts(redis: Redis) -> None:
    table = Registry(redis)
    await table.claim_room("taken", "other")
    assert await table.restore_rooms(["mine", "taken"], "me") == ["taken"]
    assert await table.room_nodes() == {"mine": "me", "taken": "other"}
    assert await table.restore_rooms([], "me") == []


async def test_publish_reaches_the_nodes_channel(redis: Redis) -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe(registry.channel("b"))
    await pubsub.get_message(timeout=1)  # subscribe confirmation
    assert await Registry(redis).publish("b", b"hello") == 1
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
    assert message is not None and message["data"] == b"hello"
    await pubsub.aclose()


async def test_listeners_counts_subscriptions_to_a_nodes_channel(redis: Redis) -> None:
    table = Registry(redis)
    assert await table.listeners("b") == 0
    pubsub = redis.pubsub()
    await pubsub.subscribe(registry.channel("b"))
    assert await table.listeners("b") == 1
    await pubsub.aclose()


async def test_forgetting_a_dead_node_removes_its_entry_and_only_its_rooms(redis: Redis) -> None:
    table = Registry(redis)
    await table.put_node(node_pb2.Node(id="dead"))
    await table.put_node(node_pb2.Node(id="alive"))
    for room, node in (("r1", "dead"), ("r2", "alive"), ("r3", "dead")):
        await table.claim_room(room, node)
    assert await table.forget_node("dead") == ["r1", "r3"]
    assert list(await table.nodes()) == ["alive"]
    assert await table.room_nodes() == {"r2": "alive"}
