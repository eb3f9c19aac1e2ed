"""Telling the cluster at once that a worker died, instead of letting its heartbeat go stale.

A worker killed by the kernel (OOM, a crash in a C extension) cannot
unregister. Its ``nodes`` entry would stay selectable, its rooms mapped and
the sessions relayed to it open for a stale timeout or two; the supervisor
knows the moment it dies, so it does what the worker would have done.
"""

from __future__ import annotations

import asyncio
import logging

from mediapod.protocol import relay_pb2
from mediapod.routing.registry import Registry

log = logging.getLogger(__name__)


class WorkerObituary:
    """Unmaps a dead worker's rooms and tells every node to end the sessions it relayed to or from it."""

    def __init__(self, registry: Registry, pod: str, timeout: float) -> None:
        self._registry = registry
        self._pod = pod
        self._timeout = timeout  # for each Redis call; an unreachable Redis is logged, not waited for

    async def announce(self, node_id: str) -> list[str]:
        """Forget node_id in Redis and broadcast NodeGone; returns the rooms it hosted (gone with it).

        Raises:
            RedisError, OSError, TimeoutError: Redis did not answer.
        """
        async with asyncio.timeout(self._timeout):
            rooms = await self._registry.forget_node(node_id)
        message = relay_pb2.RelayMessage(from_node=self._pod, node_gone=relay_pb2.NodeGone(node=node_id))
        data = message.SerializeToString()
        async with asyncio.timeout(self._timeout):
            nodes = await self._registry.nodes()
            # Every node, not only this pod's: an edge anywhere may relay a session to the dead worker.
            await asyncio.gather(*(self._registry.publish(other, data) for other in nodes))
        return rooms
