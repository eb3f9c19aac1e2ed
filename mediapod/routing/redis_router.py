"""RedisRouter: many media nodes share rooms through the Redis routing table.

The node registers itself in ``nodes`` (STARTING, then SERVING), refreshes its
stats every ``routing.heartbeat_interval``, maps new rooms to the node the
selector picks (atomically, see registry.py), listens on its own pub/sub
channel for relayed signaling, and goes DRAINING on request.

Redis is never on the media path: every call here has a timeout, a failure is
logged and retried at the next heartbeat, and an outage only pauses routing
(new rooms, relayed signaling) while forwarding goes on. When Redis comes
back, possibly empty, the next heartbeat re-registers the node and re-maps
the rooms it hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from google.protobuf.message import DecodeError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from mediapod.config import MediaConfig
from mediapod.protocol import node_pb2, relay_pb2
from mediapod.routing.node_stats import StatsSampler
from mediapod.routing.registry import Registry, channel, connect
from mediapod.routing.selector import Limits, is_alive, select_node
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.node import MediaNode

log = logging.getLogger(__name__)

# What a Redis call can fail with: server errors, sockets, our own timeouts.
REDIS_ERRORS = (RedisError, OSError, TimeoutError)


class RedisRouter:
    """Routes rooms across nodes through Redis; one per media pod."""

    def __init__(self, config: MediaConfig, node: MediaNode, redis: Redis | None = None) -> None:
        self._config = config
        self._media = node
        self._address = config.redis.address
        self._redis = redis or connect(config.redis, health_check_interval=max(config.routing.heartbeat_interval, 0.5))
        self._registry = Registry(self._redis)
        self._timeout = config.redis.timeout
        self._routing = config.routing
        self._limits = Limits.from_config(config.routing)
        self._sampler = StatsSampler(node.gauges, node.context.counters, config.workers)
        self.state = node_pb2.STARTING
        self.grpc_port = 0
        self._on_message: Callable[[relay_pb2.RelayMessage], None] | None = None
        self._nodes: dict[str, node_pb2.Node] = {}  # `nodes` as of the last good heartbeat
        self._healthy_since: float | None = None     # monotonic time Redis last became reachable
        self._registered_once = False
        self._restore_pending = True
        self._heartbeat_lock = asyncio.Lock()
        self._subscribed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._unheard = 0  # heartbeats in a row that found nobody on our channel
        node.room_closed_listeners.append(self._on_room_closed)

    @property
    def node_id(self) -> str:
        return self._config.node_id

    # -- lifecycle ---------------------------------------------------------------

    async def start(self, on_message: Callable[[relay_pb2.RelayMessage], None] | None = None) -> None:
        """Register as STARTING and hand what arrives on this node's channel to on_message.

        Never blocks on a missing Redis.
        """
        self._on_message = on_message
        await self._heartbeat()
        self._heartbeat_task = asyncio.create_task(self._heartbeat_loop(), name="routing-heartbeat")
        self._listen_task = asyncio.create_task(self._listen(), name="routing-listen")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout):
                await self._subscribed.wait()

    async def set_serving(self, grpc_port: int) -> None:
        """The gRPC server is up: take new rooms."""
        self.grpc_port = grpc_port
        self.state = node_pb2.SERVING
        await self._heartbeat()

    async def drain(self) -> None:
        """Take no new rooms; keep serving the hosted ones until they empty."""
        if self.state != node_pb2.DRAINING:
            log.info("node %s draining: no new rooms, %d hosted room(s) stay until they empty", self.node_id, len(self._media.rooms))
        self.state = node_pb2.DRAINING
        await self._heartbeat()

    @property
    def draining(self) -> bool:
        return self.state == node_pb2.DRAINING

    async def stop(self) -> None:
        """Unregister and let go of Redis; rooms are already closed (their releases are awaited briefly)."""
        for task in (self._heartbeat_task, self._listen_task):
            if task is not None:
                task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self._timeout)
        for task in list(self._tasks):
            task.cancel()
        try:
            async with asyncio.timeout(self._timeout):
                await self._registry.remove_node(self.node_id)
            log.info("node %s unregistered", self.node_id)
        except REDIS_ERRORS as exc:
            log.warning("could not unregister node %s from Redis: %s", self.node_id, exc)
        with contextlib.suppress(*REDIS_ERRORS):
            await self._redis.aclose()

    # -- the Router interface ------------------------------------------------------

    async def node_for_room(self, room_name: str, avoid: str = "") -> str:
        """The node hosting room_name; if none (or it is gone, or it is ``avoid``) one is chosen and claimed.

        Raises:
            RequestError: UNAVAILABLE when Redis cannot be reached or no node
                is up, RESOURCE_EXHAUSTED when every node is over a limit.
        """
        if room_name in self._media.rooms and avoid != self.node_id:
            return self.node_id
        try:
            async with asyncio.timeout(2 * self._timeout):
                owner = await self._registry.room_node(room_name)
                nodes = await self._registry.nodes()
                now = time.time()
                if owner and owner != avoid and self._can_host(owner, nodes.get(owner), now):
                    return owner
                candidates = [n for n in nodes.values() if n.id != avoid]
                chosen = select_node(
                    candidates, now, self._limits, sort_by=self._routing.sort_by, region=self._config.region
                )
                winner = await self._registry.claim_room(room_name, chosen.id, replacing=owner or "")
        except REDIS_ERRORS as exc:
            raise self._unreachable(exc) from None
        if owner and winner != owner:
            log.info("room %s moved from node %s (gone or draining) to %s", room_name, owner, winner)
        return winner

    def _can_host(self, node_id: str, node: node_pb2.Node | None, now: float) -> bool:
        if node_id == self.node_id:
            # Mapped here but not hosted here: only a node taking new rooms may start it.
            return not self.draining
        return is_alive(node, now, self._routing.stale_timeout)

    async def hosting_node(self, room_name: str) -> str | None:
        """The live node hosting room_name, or None; never maps a room."""
        if room_name in self._media.rooms:
            return self.node_id
        try:
            async with asyncio.timeout(self._timeout):
                owner = await self._registry.room_node(room_name)
        except REDIS_ERRORS as exc:
            raise self._unreachable(exc) from None
        if owner is None or owner == self.node_id or self.is_gone(owner):
            return None
        return owner

    async def room_nodes(self) -> dict[str, str]:
        """room -> node for every mapped room on a node that is not known to be gone."""
        try:
            async with asyncio.timeout(self._timeout):
                mapping = await self._registry.room_nodes()
        except REDIS_ERRORS as exc:
            raise self._unreachable(exc) from None
        return {room: node for room, node in mapping.items() if not self.is_gone(node)}

    async def release_room(self, room_name: str) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._registry.release_room(room_name, self.node_id)
        except REDIS_ERRORS as exc:
            raise self._unreachable(exc) from None

    def accepts_room(self, room_name: str) -> bool:
        """Whether a relayed join for room_name may start here (a draining node takes only its own rooms)."""
        return not self.draining or room_name in self._media.rooms

    def is_gone(self, node_id: str, patience: float = 1.0) -> bool:
        """True only when sure: Redis has been reachable for a stale timeout and the node has not heartbeaten.

        During and right after a Redis outage every node looks stale, so
        nothing is judged gone until the table had time to fill again.
        ``patience`` stretches the stale timeout for drastic decisions
        (ending a live participant's session) so a node slowed by load is
        not mistaken for a dead one.
        """
        if node_id == self.node_id:
            return False
        stale_timeout = self._routing.stale_timeout * patience
        healthy_since = self._healthy_since
        if healthy_since is None or time.monotonic() - healthy_since < stale_timeout:
            return False
        return not is_alive(self._nodes.get(node_id), time.time(), stale_timeout)

    def peers(self) -> list[str]:
        """The other nodes alive and serving as of the last heartbeat, least loaded first (agent jobs are offered to them)."""
        now = time.time()
        alive = [
            node for node_id, node in self._nodes.items()
            if node_id != self.node_id and node.state == node_pb2.SERVING and is_alive(node, now, self._routing.stale_timeout)
        ]
        return [node.id for node in sorted(alive, key=lambda node: (node.stats.num_clients, node.id))]

    # -- messages between nodes ------------------------------------------------------

    async def send(self, node_id: str, message: relay_pb2.RelayMessage) -> None:
        """Publish one message to a node's channel.

        Raises:
            RequestError: UNAVAILABLE if Redis is unreachable or nobody listens there.
        """
        message.from_node = self.node_id
        try:
            async with asyncio.timeout(self._timeout):
                listeners = await self._registry.publish(node_id, message.SerializeToString())
        except REDIS_ERRORS as exc:
            raise self._unreachable(exc) from None
        if not listeners:
            raise RequestError(ErrorCode.UNAVAILABLE, f"node {node_id!r} is not listening (gone or restarting)")

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self._redis.pubsub()
            try:
                async with asyncio.timeout(self._timeout):
                    await pubsub.subscribe(channel(self.node_id))
                self._subscribed.set()
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._deliver(message["data"])
            except REDIS_ERRORS as exc:
                if self._subscribed.is_set():
                    log.warning("lost the subscription to %s: %s; resubscribing", channel(self.node_id), exc)
                self._subscribed.clear()
            finally:
                with contextlib.suppress(*REDIS_ERRORS):
                    await pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._routing.heartbeat_interval)

    def _deliver(self, data: bytes) -> None:
        try:
            message = relay_pb2.RelayMessage.FromString(data)
        except DecodeError:
            log.warning("dropping a malformed relay message (%d bytes)", len(data))
            return
        if self._on_message is not None:
            try:
                self._on_message(message)
            except Exception:
                log.exception("relay message handler failed")

    # -- heartbeat -------------------------------------------------------------------

    def describe(self) -> node_pb2.Node:
        """This node as it goes into `nodes`."""
        context = self._media.context
        return node_pb2.Node(
            id=self.node_id,
            ip=context.advertised_ip,
            grpc_port=self.grpc_port,
            udp_port=context.udp_port,
            region=self._config.region,
            state=self.state,
            stats=self._sampler.sample(),
            pod=self._config.worker.pod or self.node_id,
            worker=self._config.worker.index,
        )

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._routing.heartbeat_interval)
            await self._heartbeat()

    async def _heartbeat(self) -> bool:
        async with self._heartbeat_lock:
            node = self.describe()
            try:
                async with asyncio.timeout(self._timeout):
                    missing = await self._registry.put_node(node)
                    if missing or self._restore_pending:
                        self._restore_pending = True
                        taken = await self._registry.restore_rooms(list(self._media.rooms), self.node_id)
                        self._restore_pending = False
                        for room in taken:
                            log.warning("room %s is hosted here but Redis maps it to another node", room)
                    nodes = await self._registry.nodes()
                    listening = await self._registry.listeners(self.node_id)
            except REDIS_ERRORS as exc:
                if self._healthy_since is not None or not self._registered_once:
                    log.warning(
                        "Redis at %s unreachable (%s): routing paused, media keeps flowing; retrying every %.1f s",
                        self._address, exc or type(exc).__name__, self._routing.heartbeat_interval,
                    )
                self._healthy_since = None
                return False
            if missing and self._registered_once:
                log.info("node %s re-registered in Redis with %d room(s)", self.node_id, len(self._media.rooms))
            self._registered_once = True
            if self._healthy_since is None:
                self._healthy_since = time.monotonic()
            self._nodes = nodes
            self._check_listening(listening)
            return True

    def _check_listening(self, listeners: int) -> None:
        """Resubscribe from scratch if our channel has had no listener for two heartbeats."""
        if self._listen_task is None or listeners:
            self._unheard = 0
            return
        self._unheard += 1
        if self._unheard >= 2:
            log.warning("nobody listens on %s; resubscribing", channel(self.node_id))
            self._unheard = 0
            self._listen_task.cancel()
            self._listen_task = asyncio.create_task(self._listen(), name="routing-listen")

    # -- rooms closing ------------------------------------------------------------------

    def _on_room_closed(self, room_name: str) -> None:
        task = asyncio.get_running_loop().create_task(self._release(room_name), name=f"release-{room_name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _release(self, room_name: str) -> None:
        deadline = time.monotonic() + 3 * self._routing.stale_timeout
        while room_name not in self._media.rooms:
            try:
                async with asyncio.timeout(self._timeout):
                    await self._registry.release_room(room_name, self.node_id)
                return
            except REDIS_ERRORS as exc:
                if time.monotonic() > deadline:
                    log.warning("could not release room %s in Redis: %s", room_name, exc)
                    return
            await asyncio.sleep(self._routing.heartbeat_interval)

    def _unreachable(self, exc: BaseException) -> RequestError:
        return RequestError(
            ErrorCode.UNAVAILABLE, f"the routing table (Redis at {self._address}) is unreachable: {exc or type(exc).__name__}"
        )
