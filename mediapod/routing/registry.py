"""The Redis keys of the routing table and their codecs: the only module that names them.

Two hashes, as in LiveKit:

- ``nodes``: node id -> serialized ``switchboard.v1.Node`` (state and stats,
  rewritten by the node at every heartbeat);
- ``room_node_map``: room name -> id of the node hosting it.

and one pub/sub channel per node (``switchboard:node:<id>``) that carries
``RelayMessage``\\ s to it. Changes to ``room_node_map`` that must not race
(claim a room, take it over from a dead node, release it) are Lua scripts, so
two nodes racing for the same room always end with one mapping.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from google.protobuf.message import DecodeError
from redis.asyncio import Redis

from mediapod.config import RedisConfig
from mediapod.protocol import node_pb2

log = logging.getLogger(__name__)

NODES = "nodes"
ROOM_NODE_MAP = "room_node_map"
CHANNEL_PREFIX = "switchboard:node:"

# Map the room to ARGV[2] if it is unmapped or mapped to ARGV[3] (a node the
# caller found gone); return whoever holds it afterwards.
_CLAIM = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if (not current) or (ARGV[3] ~= '' and current == ARGV[3]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return ARGV[2]
end
return current
"""

# Forget the room only if it is still mapped to ARGV[2]; 1 if it was.
_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""

# A node died without unregistering (its pod's supervisor saw it): drop its
# entry and every room still mapped to it, atomically; return those rooms.
_FORGET_NODE = """
redis.call('HDEL', KEYS[1], ARGV[1])
local rooms = {}
local mapping = redis.call('HGETALL', KEYS[2])
for i = 1, #mapping, 2 do
  if mapping[i + 1] == ARGV[1] then
    redis.call('HDEL', KEYS[2], mapping[i])
    table.insert(rooms, mapping[i])
  end
end
return rooms
"""


def connect(config: RedisConfig, health_check_interval: float = 0.0) -> Redis:
    """A client of the configured Redis whose every call times out after ``config.timeout``.

    health_check_interval: with it a pub/sub connection that Redis dropped is
    pinged, reconnected and resubscribed instead of staying silent forever.
    """
    host, _, port = config.address.rpartition(":")
    return Redis(
        host=host,
        port=int(port),
        db=config.db,
        username=config.username or None,
        password=config.password or None,
        socket_timeout=config.timeout,
        socket_connect_timeout=config.timeout,
        health_check_interval=health_check_interval,
    )


def channel(node_id: str) -> str:
    """The pub/sub channel a node listens on for relayed signaling and room calls."""
    return CHANNEL_PREFIX + node_id


def encode_node(node: node_pb2.Node) -> bytes:
    return node.SerializeToString()


def decode_node(data: bytes) -> node_pb2.Node | None:
    """A Node from its hash value; None (and a log line) for bytes that do not parse."""
    try:
        return node_pb2.Node.FromString(data)
    except DecodeError:
        log.warning("ignoring a malformed entry in %r (%d bytes)", NODES, len(data))
        return None


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value


class Registry:
    """Reads and writes the routing table; every call may raise redis errors, callers retry."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)
        self._forget_node = redis.register_script(_FORGET_NODE)

    # -- nodes -----------------------------------------------------------------

    async def put_node(self, node: node_pb2.Node) -> bool:
        """Write the node's entry; True if it was missing (first registration, or Redis lost it)."""
        return bool(await self._redis.hset(NODES, node.id, encode_node(node)))

    async def remove_node(self, node_id: str) -> None:
        await self._redis.hdel(NODES, node_id)

    async def forget_node(self, node_id: str) -> list[str]:
        """Remove a dead node's entry and its rooms' mappings; returns the rooms it hosted."""
        rooms = await self._forget_node(keys=[NODES, ROOM_NODE_MAP], args=[node_id])
        return sorted(_text(room) or "" for room in rooms)

    async def nodes(self) -> dict[str, node_pb2.Node]:
        raw = await self._redis.hgetall(NODES)
        decoded = {_text(k): decode_node(v) for k, v in raw.items()}
        return {k: v for k, v in decoded.items() if k is not None and v is not None}

    async def node(self, node_id: str) -> node_pb2.Node | None:
        raw = await self._redis.hget(NODES, node_id)
        return None if raw is None else decode_node(raw)

    # -- rooms -----------------------------------------------------------------

    async def room_node(self, room: str) -> str | None:
        return _text(await self._redis.hget(ROOM_NODE_MAP, room))

    async def room_nodes(self) -> dict[str, str]:
        raw = await self._redis.hgetall(ROOM_NODE_MAP)
        return {_text(k): _text(v) for k, v in raw.items()}  # type: ignore[misc]

    async def claim_room(self, room: str, node_id: str, replacing: str = "") -> str:
        """Map room to node_id if it is unmapped (or mapped to ``replacing``); returns the owner after."""
        owner = await self._claim(keys=[ROOM_NODE_MAP], args=[room, node_id, replacing])
        return _text(owner) or ""

    async def restore_rooms(self, rooms: Iterable[str], node_id: str) -> list[str]:
        """Re-map rooms this node hosts where nobody holds them (Redis came back empty).

        Returns the rooms another node holds now, which this one cannot take back.
        """
        rooms = list(rooms)
        if not rooms:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for room in rooms:
                pipe.hsetnx(ROOM_NODE_MAP, room, node_id)
            for room in rooms:
                pipe.hget(ROOM_NODE_MAP, room)
            results = await pipe.execute()
        owners = results[len(rooms):]
        return [room for room, owner in zip(rooms, owners) if _text(owner) != node_id]

    async def release_room(self, room: str, node_id: str) -> bool:
        """Forget the room's mapping if node_id still holds it."""
        return bool(await self._release(keys=[ROOM_NODE_MAP], args=[room, node_id]))

    # -- messages --------------------------------------------------------------

    async def listeners(self, node_id: str) -> int:
        """How many connections are subscribed to a node's channel."""
        counts = await self._redis.pubsub_numsub(channel(node_id))
        return int(counts[0][1]) if counts else 0

    async def publish(self, node_id: str, data: bytes) -> int:
        """Send one message to a node's channel; the number of listeners that got it."""
        return int(await self._redis.publish(channel(node_id), data))
