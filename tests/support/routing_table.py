"""What tests read of the Redis routing table (``nodes``, ``room_node_map``), decoded."""

from __future__ import annotations

from redis.asyncio import Redis

from mediapod.protocol import node_pb2
from mediapod.routing import registry


async def registered_nodes(redis: Redis) -> dict[str, node_pb2.Node]:
    """Node id -> the Node entry it registered in ``nodes``."""
    raw = await redis.hgetall(registry.NODES)
    return {k.decode(): node_pb2.Node.FromString(v) for k, v in raw.items()}


async def room_host(redis: Redis, room: str) -> str | None:
    """The node ``room_node_map`` maps the room to, if any."""
    value = await redis.hget(registry.ROOM_NODE_MAP, room)
    return value.decode() if value is not None else None
