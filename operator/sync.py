"""Redis <-> custom resources: the operator's side effects, driven by scheduler.py's decisions.

A :class:`Reconciler` keeps a snapshot of the world (Redis `nodes` and
`room_node_map`, and the rooms each live media pod reports over its
RoomService), refreshed every ``sync_interval`` by one task it owns. Handlers
(handlers.py) hand it a Room or an SFUNode; it decides with the pure
functions of scheduler.py and then acts: claims the room in Redis (an atomic
script, so a join racing the operator ends with one owner), creates or closes
the room on its media pod, and returns the status to write. Rooms that a join
created without a Room get one here.

Per-room locks serialise the kopf handlers and timers that may run for the
same Room at once; the Redis claim makes even two operators safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from mediapod.routing.registry import Registry
from mediapod.routing.selector import is_alive
from sfu_operator import resources
from sfu_operator.config import OperatorConfig
from sfu_operator.media_rooms import MediaPodError, MediaRooms
from sfu_operator.metrics import OperatorMetrics
from sfu_operator.scheduler import (
    ACTIVE,
    CLOSED,
    PENDING,
    SCHEDULED,
    Capacity,
    Close,
    InvalidSpec,
    LiveRoom,
    Observe,
    RoomSpec,
    RoomView,
    Schedule,
    SFUNodeSpec,
    Unschedulable,
    Wait,
    World,
    closed_room_expired,
    decide_room,
    node_gone_for,
    node_status,
    parse_room_spec,
    resource_name_for_room,
)

log = logging.getLogger(__name__)

REDIS_ERRORS = (RedisError, OSError, TimeoutError)
# Seconds a status this operator wrote overrides the (possibly older) body kopf passes in.
WRITE_SETTLE = 3.0
# Seconds a deleted Room's room is not given a new auto-created Room (a snapshot
# taken before the delete still shows it live).
DELETED_MEMORY = 60.0

# Creates a Room object: (namespace, body); True once it exists (made now or before).
RoomCreator = Callable[[str, dict[str, Any]], Awaitable[bool]]
# Deletes a Room (namespace, name) or an SFUNode (name); True once it is gone.
RoomDeleter = Callable[[str, str], Awaitable[bool]]
SFUNodeDeleter = Callable[[str], Awaitable[bool]]


def now_iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(previous: list[Mapping[str, Any]] | None, type_: str, status: bool, reason: str, message: str) -> list[dict[str, Any]]:
    """Conditions with one of them set; lastTransitionTime moves only when its status flips."""
    value = "True" if status else "False"
    old = {c.get("type"): dict(c) for c in previous or []}
    before = old.get(type_)
    since = before.get("lastTransitionTime") if before and before.get("status") == value else now_iso()
    old[type_] = {"type": type_, "status": value, "reason": reason, "message": message, "lastTransitionTime": since}
    return [old[k] for k in sorted(old)]


def changed(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of wanted that differ from current (what a status patch needs)."""
    return {k: v for k, v in wanted.items() if current.get(k) != v}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What reconciling one object produced: a status patch and, on a transition, one Event."""

    status: dict[str, Any]
    event: tuple[str, str, str] | None = None  # type, reason, message
    result: str = ""  # what was done, for switchboard_operator_reconciles (metrics.ROOM_RESULTS / SFUNODE_RESULTS)


def lifecycle_event(status: Mapping[str, Any], phase: str, live: LiveRoom) -> tuple[str, str, str] | None:
    """The Event a live room's change is worth, as its pod last reported it: started, emptied, or who is in it now.

    The same lifecycle the pod's webhooks tell the app (issue 13), seen by
    the cluster's users with ``kubectl describe room``; counts only, never identities.
    """
    before = (status.get("participants") or 0, status.get("tracks") or 0)
    if phase == ACTIVE and status.get("phase") != ACTIVE:
        return ("Normal", "Started", f"{live.participants} participant(s) joined on {live.node}")
    if phase != ACTIVE and status.get("phase") == ACTIVE:
        return ("Normal", "Emptied", "every participant left")
    if phase == ACTIVE and before != (live.participants, live.tracks):
        return ("Normal", "Changed", f"{live.participants} participant(s), {live.tracks} track(s) (were {before[0]}, {before[1]})")
    return None


class Reconciler:
    """Owns the snapshot loop, Redis and media pod clients; decides and acts for one object at a time."""

    def __init__(
        self, config: OperatorConfig, redis: Redis | None = None, media: MediaRooms | None = None, metrics: OperatorMetrics | None = None
    ) -> None:
        self.config = config
        host, _, port = config.redis_address.rpartition(":")
        self._redis = redis or Redis(
            host=host, port=int(port), password=config.redis_password or None,
            socket_timeout=config.redis_timeout, socket_connect_timeout=config.redis_timeout,
        )
        self.metrics = metrics or OperatorMetrics()
        self._room_phases: dict[str, str] = {}      # Room name -> phase, for the per-phase gauges
        self._node_phases: dict[str, str] = {}      # SFUNode name -> phase
        self._unplaced_since: dict[str, float] = {}  # Room name -> monotonic time first found needing a node
        # Objects to delete, decided by a handler and deleted by the snapshot loop: a
        # kopf timer that deletes its own object can leave kopf's finalizer on it.
        self._expired_rooms: set[str] = set()
        self._gone_nodes: set[str] = set()
        self.registry = Registry(self._redis)
        self.media = media or MediaRooms(config.api_key, config.api_secret, timeout=config.redis_timeout)
        self.policy = config.policy
        self.world: World | None = None
        self._world_ready = asyncio.Event()
        self.sfunodes: dict[str, SFUNodeSpec] = {}
        self.room_objects: set[str] = set()         # room names that have a Room
        self._deleted: dict[str, float] = {}        # room name -> when its Room was finalized
        self._acted: dict[str, float] = {}          # room name -> when this operator last scheduled it
        # room name -> (when, status) this operator last wrote: kopf may hand a
        # handler the body from before that patch landed, and a decision on it
        # would redo the work (harmlessly, thanks to the claim, but twice).
        self._written: dict[str, tuple[float, dict[str, Any]]] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._rng = random.Random()
        self._task: asyncio.Task[None] | None = None
        self._last_seen: dict[str, float] = {}      # node id -> last snapshot that had its entry
        # Since when Redis has answered every snapshot: absences count from
        # then (as in RedisRouter.is_gone), since nodes re-register after an outage.
        # A call made during a short outage may just wait for Redis to return
        # (redis-py retries), so Redis's own uptime bounds it too.
        self._watching_since: float | None = None
        self.create_room_object: RoomCreator | None = None
        self.delete_room_object: RoomDeleter | None = None
        self.delete_sfunode_object: SFUNodeDeleter | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="operator-snapshot")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.media.close()
        with contextlib.suppress(*REDIS_ERRORS):
            await self._redis.aclose()

    async def current_world(self) -> World | None:
        """The latest snapshot, waiting briefly for the first; None while Redis has never answered."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2 * self.config.redis_timeout):
                await self._world_ready.wait()
        return self.world

    async def _loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                self.world = await self.snapshot()
                self._world_ready.set()
                await self._adopt_unknown_rooms(self.world)
                await self.clean_up()
            except REDIS_ERRORS as exc:
                if self._watching_since is not None:
                    log.warning("cannot read the routing table at %s: %s; retrying", self.config.redis_address, exc)
                self._watching_since = None
            except Exception:
                log.exception("snapshot failed; retrying")
            await asyncio.sleep(max(0.0, self.config.sync_interval - (time.monotonic() - started)))

    async def snapshot(self) -> World:
        """Redis and every fresh node's rooms, as of now."""
        taken_at = time.time()
        async with asyncio.timeout(self.config.redis_timeout):
            nodes = await self.registry.nodes()
            room_nodes = await self.registry.room_nodes()
            uptime = float((await self._redis.info("server")).get("uptime_in_seconds", 0))
        fresh = [n for n in nodes.values() if is_alive(n, taken_at, self.config.stale_timeout) and n.grpc_port]
        answers = await asyncio.gather(*(self.media.live_rooms(n) for n in fresh), return_exceptions=True)
        live: dict[str, Mapping[str, LiveRoom]] = {}
        for node, answer in zip(fresh, answers):
            if isinstance(answer, BaseException):
                log.debug("node %s did not list its rooms: %s", node.id, answer)
            else:
                live[node.id] = answer
        redis_started = time.time() - uptime
        if self._watching_since is None or self._watching_since < redis_started:
            self._watching_since = max(taken_at, redis_started)
        for node_id in nodes:
            self._last_seen[node_id] = taken_at
        return World(taken_at, nodes, room_nodes, live, dict(self.sfunodes), dict(self._last_seen), self._watching_since)

    # -- objects seen by the watch ----------------------------------------------------

    def note_sfunode(self, name: str, spec: Mapping[str, Any], deleted: bool) -> None:
        if deleted:
            self.sfunodes.pop(name, None)
            self._node_phases.pop(name, None)
            self._count_phases()
            return
        cap = spec.get("capacity") or {}
        self.sfunodes[name] = SFUNodeSpec(
            name=name,
            region=str(spec.get("region") or ""),
            draining=bool(spec.get("draining")),
            capacity=Capacity(int(cap.get("maxRooms") or 0), int(cap.get("maxTracks") or 0), int(cap.get("maxBitrate") or 0)),
        )

    def note_room(self, name: str, deleted: bool) -> None:
        if not deleted:
            self.room_objects.add(name)
            return
        self.room_objects.discard(name)
        self._room_phases.pop(name, None)
        self._unplaced_since.pop(name, None)
        self._count_phases()
        self._acted.pop(name, None)
        self._written.pop(name, None)
        lock = self._locks.get(name)
        if lock is not None and not lock.locked():
            del self._locks[name]

    # -- Rooms ---------------------------------------------------------------------

    def _count_phases(self) -> None:
        self.metrics.count_phases(self._room_phases, self._node_phases)

    async def reconcile_room(
        self, name: str, spec: Mapping[str, Any], status: Mapping[str, Any], auto_created: bool = False
    ) -> Outcome:
        """Bring one Room one step closer to the world: schedule, mirror, close, or say why not.

        A Room a join auto-created that has been Closed for longer than
        ``closed_room_retention`` is deleted (result ``deleted``).
        """
        async with self._locks[name]:
            written_at, written = self._written.get(name, (0.0, {}))
            if time.monotonic() - written_at < WRITE_SETTLE:
                status = {**status, **written}
            try:
                outcome = await self._reconcile_room(name, spec, status)
                merged = {**status, **outcome.status}
                if closed_room_expired(auto_created, merged, time.time(), self.config.closed_room_retention):
                    outcome = self._delete_expired_room(name, outcome)
            except Exception:
                self.metrics.reconciles.labels("room", "error").inc()
                raise
            self.metrics.reconciles.labels("room", outcome.result or "waited").inc()
            if outcome.status:
                self._written[name] = (time.monotonic(), outcome.status)
            if merged.get("phase"):
                self._room_phases[name] = str(merged["phase"])
                self._count_phases()
            return outcome

    def _delete_expired_room(self, name: str, outcome: Outcome) -> Outcome:
        self._expired_rooms.add(name)  # deleted by clean_up(), outside this handler
        return Outcome(outcome.status, outcome.event, "deleted")

    async def clean_up(self) -> None:
        """Delete the Rooms and gone SFUNodes that handlers found expired (each retried until it is gone)."""
        world = self.world
        for name in sorted(self._expired_rooms):
            if world is not None and world.live_room(name) is not None:
                self._expired_rooms.discard(name)  # a join brought it back meanwhile: keep it
                continue
            if self.delete_room_object is not None and await self.delete_room_object(self.config.namespace, name):
                self._expired_rooms.discard(name)
                log.info("room %s: closed for over %g s and auto-created; deleted its Room", name, self.config.closed_room_retention)
        for name in sorted(self._gone_nodes):
            if world is not None and world.alive(name, self.config.stale_timeout):
                self._gone_nodes.discard(name)  # it came back meanwhile
                continue
            if await self._remove_gone_node(name):
                self._gone_nodes.discard(name)

    def _note_unplaced(self, name: str) -> None:
        self._unplaced_since.setdefault(name, time.monotonic())

    def _note_placed(self, name: str) -> None:
        since = self._unplaced_since.pop(name, None)
        if since is not None:
            self.metrics.scheduling_latency.observe(time.monotonic() - since)

    async def _reconcile_room(self, name: str, spec: Mapping[str, Any], status: Mapping[str, Any]) -> Outcome:
        conditions = status.get("conditions")
        try:
            parsed = parse_room_spec(spec)
        except InvalidSpec as exc:
            return self._refused(status, PENDING, "InvalidSpec", str(exc), conditions, result="invalid")
        world = await self.current_world()
        if world is None:
            return Outcome({}, result="waited")  # nothing known yet; the next tick tries again
        view = RoomView(name, parsed, str(status.get("phase") or ""), str(status.get("node") or ""))
        decision = decide_room(view, world, self.policy, self._acted.get(name, 0.0), self._rng)
        if isinstance(decision, Observe):
            live = decision.room
            wanted = {
                "phase": decision.phase,
                "node": live.node,
                "participants": live.participants,
                "publishers": live.publishers,
                "tracks": live.tracks,
            }
            event = lifecycle_event(status, decision.phase, live)
            if status.get("node") and status.get("node") != live.node:
                event = ("Normal", "Moved", f"the room is live on {live.node}")
            if status.get("node") != live.node or status.get("phase") in (None, "", PENDING, CLOSED):
                wanted["conditions"] = condition(conditions, "Scheduled", True, "Live", f"live on {live.node}")
            self._unplaced_since.pop(name, None)  # a join placed it: not the operator's latency
            return Outcome(changed(status, wanted), event, "observed")
        if isinstance(decision, Unschedulable):
            self._note_unplaced(name)
            return self._refused(status, PENDING, decision.reason, decision.message, conditions, result="unschedulable")
        if isinstance(decision, Close):
            if decision.release:
                with contextlib.suppress(*REDIS_ERRORS):
                    await self.registry.release_room(name, decision.release)
            wanted = {"phase": CLOSED, "participants": 0, "publishers": 0, "tracks": 0}
            wanted["conditions"] = condition(conditions, "Scheduled", False, "Closed", "the media pod closed the empty room")
            return Outcome(changed(status, wanted), ("Normal", "Closed", f"room closed on {status.get('node')}"), "closed")
        if isinstance(decision, Schedule):
            self._note_unplaced(name)
            return await self._schedule(name, parsed, decision, world, status)
        assert isinstance(decision, Wait)
        return Outcome({}, result="waited")

    def _refused(
        self, status: Mapping[str, Any], phase: str, reason: str, message: str, conditions: Any, result: str = "unschedulable"
    ) -> Outcome:
        previous = {c.get("type"): c for c in conditions or []}.get("Scheduled", {})
        wanted = {"phase": phase, "conditions": condition(conditions, "Scheduled", False, reason, message)}
        # Same reason as last time: nothing new to say (messages may carry
        # ages that change every tick; rewriting them would be an Event a second).
        if previous.get("reason") == reason and previous.get("status") == "False" and status.get("phase") == phase:
            return Outcome({}, result=result)
        return Outcome(changed(status, wanted), ("Warning", reason, message), result)

    async def _schedule(self, name: str, spec: RoomSpec, decision: Schedule, world: World, status: Mapping[str, Any]) -> Outcome:
        conditions = status.get("conditions")
        try:
            async with asyncio.timeout(self.config.redis_timeout):
                owner = await self.registry.claim_room(name, decision.node, replacing=decision.replacing)
                node = world.nodes.get(owner) if owner == decision.node else await self.registry.node(owner)
        except REDIS_ERRORS as exc:
            return self._refused(status, PENDING, "RedisUnavailable", f"cannot claim the room in Redis: {exc}", conditions)
        reason, message = decision.reason, decision.message
        if owner != decision.node:
            reason, message = "Adopted", f"a join mapped the room to {owner} first"
        if node is None or not is_alive(node, time.time(), self.config.stale_timeout):
            return self._refused(status, PENDING, "NodeGone", f"room_node_map maps the room to {owner}, which is gone", conditions)
        try:
            await self.media.create_room(node, name, spec)
        except MediaPodError as exc:
            # The claim stays: the next tick adopts it and tries the create again.
            return self._refused(status, PENDING, "CreateFailed", str(exc), conditions)
        self._acted[name] = time.time()
        wanted = {"phase": SCHEDULED, "node": owner, "participants": 0, "publishers": 0, "tracks": 0}
        wanted["conditions"] = condition(conditions, "Scheduled", True, reason, message or f"scheduled on {owner}")
        log.info("room %s: %s on %s", name, reason.lower(), owner)
        self._note_placed(name)
        return Outcome(changed(status, wanted), ("Normal", reason, message or f"scheduled on {owner}"), "scheduled")

    async def finalize_room(self, name: str, status: Mapping[str, Any]) -> None:
        """The Room is being deleted: close the room on its node (participants are told) and forget its mapping.

        Raises:
            MediaPodError, redis errors: when a live node could not be told; the finalizer is retried.
        """
        async with self._locks[name], asyncio.timeout(4 * self.config.redis_timeout):
            self._deleted[name] = time.time()
            mapped = await self.registry.room_node(name)
            world = self.world
            hosts = {mapped, str(status.get("node") or "")}
            if world is not None and (live := world.live_room(name)) is not None:
                hosts.add(live.node)
            for node_id in sorted(h for h in hosts if h):
                node = await self.registry.node(node_id)
                if node is not None and is_alive(node, time.time(), self.config.stale_timeout):
                    if await self.media.delete_room(node, name):
                        log.info("room %s deleted on %s", name, node_id)
            if mapped:
                await self.registry.release_room(name, mapped)

    async def _adopt_unknown_rooms(self, world: World) -> None:
        """Give every live room a Room, labelled auto-created, so `kubectl get rooms` shows them all."""
        if self.create_room_object is None:
            return
        forgotten = world.taken_at - DELETED_MEMORY
        self._deleted = {room: at for room, at in self._deleted.items() if at > forgotten}
        for rooms in world.live.values():
            for room, live in rooms.items():
                if room in self.room_objects or self._deleted.get(room, 0.0) >= world.taken_at:
                    continue
                object_name = resource_name_for_room(room)
                if object_name is None:
                    log.debug("room %r has no valid object name; it gets no Room", room)
                    continue
                if await self.create_room_object(self.config.namespace, resources.auto_room(object_name, live)):
                    self.room_objects.add(room)  # else: tried again at the next snapshot

    # -- SFUNodes --------------------------------------------------------------------

    async def reconcile_sfunode(self, name: str, status: Mapping[str, Any]) -> Outcome:
        """SFUNode.status from the node's entry in `nodes`; an Event when its phase changes.

        A node gone (no heartbeat) for longer than ``node_gone_grace`` loses
        its Redis entry and its SFUNode (result ``removed``).
        """
        try:
            outcome = await self._reconcile_sfunode(name, status)
        except Exception:
            self.metrics.reconciles.labels("sfunode", "error").inc()
            raise
        self.metrics.reconciles.labels("sfunode", outcome.result or ("updated" if outcome.status else "unchanged")).inc()
        phase = outcome.status.get("phase") or status.get("phase")
        if outcome.result == "removed":
            self._node_phases.pop(name, None)
        elif phase:
            self._node_phases[name] = str(phase)
        self._count_phases()
        return outcome

    async def _remove_gone_node(self, name: str) -> bool:
        """Forget a node gone for longer than the grace period: its Redis entry, then its SFUNode."""
        if self.delete_sfunode_object is None:
            return False
        try:
            async with asyncio.timeout(self.config.redis_timeout):
                await self.registry.remove_node(name)
        except REDIS_ERRORS as exc:
            log.warning("cannot remove gone node %s from Redis: %s; retrying", name, exc)
            return False
        if not await self.delete_sfunode_object(name):
            return False
        log.info("node %s gone for over %g s: removed its SFUNode and Redis entry", name, self.config.node_gone_grace)
        return True

    async def _reconcile_sfunode(self, name: str, status: Mapping[str, Any]) -> Outcome:
        world = await self.current_world()
        if world is None:
            return Outcome({})
        if status.get("phase") and name not in world.nodes and not world.lost(name, self.config.stale_timeout):
            return Outcome({})  # missing only briefly (Redis restarted empty): keep the phase, no flapping
        grace = self.config.node_gone_grace
        if grace > 0 and world.lost(name, self.config.stale_timeout):
            gone = node_gone_for(world.nodes.get(name), status.get("lastHeartbeat"), world.taken_at)
            if gone is not None and gone > grace:
                if name in self._gone_nodes:
                    return Outcome({}, result="removed")  # already said; clean_up() is on it
                self._gone_nodes.add(name)
                return Outcome({}, ("Normal", "Removed", f"no heartbeat for {gone:.0f} s (grace {grace:g} s): removing it"), "removed")
        spec = world.sfunodes.get(name) or self.sfunodes.get(name) or SFUNodeSpec(name)
        mapped = sum(1 for node in world.room_nodes.values() if node == name)
        hosted = len(world.live.get(name, {})) if name in world.live else mapped
        result = node_status(spec, world.nodes.get(name), hosted, world.taken_at, self.config.stale_timeout)
        wanted: dict[str, Any] = {
            "phase": result.phase,
            "rooms": result.rooms,
            "participants": result.participants,
            "load": result.load,
        }
        if result.last_heartbeat_ms:
            wanted["lastHeartbeat"] = now_iso(result.last_heartbeat_ms / 1000.0)
        if result.grpc_port or result.udp_port:
            wanted["ports"] = {"grpc": result.grpc_port, "udp": result.udp_port}
        event = None
        if status.get("phase") != result.phase:
            wanted["conditions"] = condition(status.get("conditions"), "Ready", result.phase == "Ready", result.reason, result.message)
            kind = "Warning" if result.phase == "NotReady" else "Normal"
            event = (kind, result.reason, f"{result.phase}: {result.message}")
        return Outcome(changed(status, wanted), event)
