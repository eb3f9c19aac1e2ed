"""One media pod as a node of a cluster: its RedisRouter, its relay, the routed RoomService, and how it drains.

main.py builds a Cluster only when ``redis.address`` is set; without it the
pod uses the LocalRouter and none of this exists.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mediapod import auth
from mediapod.config import MediaConfig
from mediapod.k8s_registration import SFUNodeRegistration
from mediapod.routing.redis_router import RedisRouter
from mediapod.rtc.node import MediaNode
from mediapod.protocol import relay_pb2
from mediapod.signal.livekit.agent_bus import AgentBus, LocalAgents
from mediapod.signal.relay import SignalRelay
from mediapod.signal.room_admin import RoomAdmin
from mediapod.signal.room_routing import RoutedRoomAdmin
from mediapod.signal.session import SessionHost

log = logging.getLogger(__name__)


class Cluster:
    """Routing for the signaling front ends (router, relay, routed RoomService); runs the drain on SIGTERM."""

    def __init__(
        self, config: MediaConfig, node: MediaNode, router: RedisRouter, relay: SignalRelay, rooms: RoutedRoomAdmin,
        agent_bus: AgentBus,
    ) -> None:
        self._config = config
        self._node = node
        self.router = router
        # Agent jobs between this node's rooms and other nodes' workers.
        self._agent_bus = agent_bus
        # Carries sessions to the node hosting their room (the gateway's forwarder).
        self.relay = relay
        # The RoomService to serve: each call runs on the node hosting its room.
        self.rooms = rooms
        self._drain = asyncio.Event()
        # With a kubeconfig the pod also keeps its own SFUNode for the operator.
        self.registration = (
            SFUNodeRegistration(config, router, self._drain.is_set) if config.kubernetes.kubeconfig else None
        )

    @classmethod
    async def start(
        cls, config: MediaConfig, node: MediaNode, verifier: auth.TokenVerifier, sessions: SessionHost, rooms: RoomAdmin,
        agent_bus: AgentBus, agents: LocalAgents,
    ) -> Cluster:
        """Register the node (STARTING) in Redis and relay sessions, calls and agent jobs for this node.

        A Redis that is down is retried in the background.
        """
        router = RedisRouter(config, node)
        relay = SignalRelay(router, sessions, rooms, verifier, config.limits, config.routing.heartbeat_interval)
        agent_bus.start(router, agents)

        def deliver(message: relay_pb2.RelayMessage) -> None:
            if not agent_bus.handle(message):
                relay.handle(message)

        await router.start(on_message=deliver)
        return cls(config, node, router, relay, RoutedRoomAdmin(rooms, router, relay.call), agent_bus)

    async def serving(self, grpc_port: int) -> None:
        await self.router.set_serving(grpc_port)
        if self.registration is not None:
            self.registration.start()
        log.info("node %s serving; routing through Redis at %s", self._config.node_id, self._config.redis.address)

    def request_drain(self, stop: asyncio.Event) -> Callable[[], None]:
        """A signal handler: the first call drains, the next one stops at once."""

        def handle() -> None:
            if self._drain.is_set():
                stop.set()
            else:
                self._drain.set()

        return handle

    def idle(self) -> bool:
        """Nothing left to serve: no hosted room, no session relayed through here."""
        return not self._node.rooms and self.relay.active_sessions == 0

    async def run_until_drained(self, stop: asyncio.Event) -> None:
        """Serve until stop, or until a drain was requested and every room and session has ended."""
        stopped = asyncio.ensure_future(stop.wait())
        draining = asyncio.ensure_future(self._drain.wait())
        try:
            await asyncio.wait({stopped, draining}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                return
            await self.router.drain()
            timeout = self._config.routing.drain_timeout
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout if timeout > 0 else None
            while not stop.is_set() and not self.idle():
                if deadline is not None and loop.time() >= deadline:
                    log.warning("drain timeout (%.0f s) reached with %d room(s) left", timeout, len(self._node.rooms))
                    return
                await asyncio.wait({stopped}, timeout=0.5)
            log.info("node %s drained", self._config.node_id)
        finally:
            stopped.cancel()
            draining.cancel()

    async def close(self) -> None:
        if self.registration is not None:
            await self.registration.stop()
        await self.relay.close()
        await self._agent_bus.close()
        await self.router.stop()
