"""What the operator does with a Room or an SFUNode: pure decisions over one snapshot of the world.

Nothing here talks to Kubernetes, Redis or a media pod, so every rule is
tested without a cluster (tests/unit/operator). The rules for which node may
take a new room are the router's (``mediapod.routing.selector``: fresh,
SERVING, under the limits, region preferred, least loaded), plus what only the
SFUNode knows: ``spec.draining`` and ``spec.capacity``.

The decisions are level-based: given the Room as it is, the routing table and
what each live node reports, they say what should be true, never "what
happened". That is what makes the operator restart-safe: a replica that
starts mid-way reads the same world and reaches the same decision, and a room
already claimed in ``room_node_map`` is adopted, never scheduled twice.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mediapod.protocol import node_pb2
from mediapod.routing.selector import (
    Limits,
    NoNodeAvailable,
    exclusion,
    is_alive,
    select_node,
)

# Room phases (crds/rooms.yaml) and SFUNode phases (crds/sfunodes.yaml).
PENDING, SCHEDULED, ACTIVE, CLOSED = "Pending", "Scheduled", "Active", "Closed"
READY, DRAINING, DRAINED, NOT_READY = "Ready", "Draining", "Drained", "NotReady"
HOSTED_PHASES = (SCHEDULED, ACTIVE)

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class RoomSpec:
    """Room.spec as the media pod's CreateRoom takes it; 0 means "not set"."""

    max_participants: int = 0
    empty_timeout: int = 0
    departure_timeout: int = 0
    region: str = ""
    metadata: str = ""


class InvalidSpec(ValueError):
    """A Room spec the API server let through (an old schema, a hand edit) that cannot be used."""


def parse_room_spec(spec: Mapping[str, object]) -> RoomSpec:
    """Room.spec from its JSON, checked again: the schema is the first line, not the only one.

    Raises:
        InvalidSpec: with a message a person can act on.
    """

    def integer(key: str, minimum: int) -> int:
        value = spec.get(key)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidSpec(f"spec.{key} must be an integer, not {value!r}")
        if value < minimum:
            raise InvalidSpec(f"spec.{key} must be at least {minimum}, not {value}")
        return value

    def text(key: str) -> str:
        value = spec.get(key, "")
        if not isinstance(value, str):
            raise InvalidSpec(f"spec.{key} must be a string, not {value!r}")
        return value

    return RoomSpec(
        max_participants=integer("maxParticipants", 1),
        empty_timeout=integer("emptyTimeout", 1),
        departure_timeout=integer("departureTimeout", 0),
        region=text("region"),
        metadata=text("metadata"),
    )


@dataclass(frozen=True, slots=True)
class Capacity:
    """SFUNode.spec.capacity; 0 = no limit."""

    max_rooms: int = 0
    max_tracks: int = 0
    max_bitrate: int = 0


@dataclass(frozen=True, slots=True)
class SFUNodeSpec:
    """What an SFUNode's spec adds to the node's entry in `nodes`."""

    name: str
    region: str = ""
    draining: bool = False
    capacity: Capacity = Capacity()


@dataclass(frozen=True, slots=True)
class LiveRoom:
    """A room as its hosting node reports it (RoomService ListRooms / ListParticipants)."""

    node: str
    participants: int = 0
    publishers: int = 0
    tracks: int = 0
    spec: RoomSpec = RoomSpec()  # the settings it runs with (an auto-created Room copies them)


@dataclass(frozen=True, slots=True)
class World:
    """One snapshot of everything a decision reads.

    ``live`` holds, per node that answered, the rooms it hosts; a node that
    did not answer is absent, and nothing is concluded about its rooms.

    A node with a stale entry in `nodes` stopped heartbeating: it is lost. A
    node with no entry at all may be lost, or Redis may just have restarted
    empty and the node not re-registered yet (it does within a heartbeat);
    so it counts as lost only once it has been missing for a stale timeout,
    measured from when the operator last saw its entry (``last_seen``) or from
    ``watching_since`` (the operator's start, or Redis answering again after
    it did not), whichever is later.
    """

    taken_at: float                                   # unix seconds when the snapshot started
    nodes: Mapping[str, node_pb2.Node]                # Redis `nodes`
    room_nodes: Mapping[str, str]                     # Redis `room_node_map`
    live: Mapping[str, Mapping[str, LiveRoom]]        # node id -> room name -> stats
    sfunodes: Mapping[str, SFUNodeSpec] = field(default_factory=dict)
    last_seen: Mapping[str, float] = field(default_factory=dict)  # node id -> unix s its entry was last there
    watching_since: float = 0.0                       # unix s since when Redis has answered without a break

    def live_room(self, room: str) -> LiveRoom | None:
        """Where the room is live; the node room_node_map names wins if two nodes report it."""
        mapped = self.live.get(self.room_nodes.get(room, ""), {})
        if room in mapped:
            return mapped[room]
        for rooms in self.live.values():
            if room in rooms:
                return rooms[room]
        return None

    def alive(self, node_id: str, stale_timeout: float) -> bool:
        return is_alive(self.nodes.get(node_id), self.taken_at, stale_timeout)

    def lost(self, node_id: str, stale_timeout: float) -> bool:
        """Surely gone: a stale heartbeat, or missing from `nodes` for longer than a stale timeout."""
        node = self.nodes.get(node_id)
        if node is not None:
            return not is_alive(node, self.taken_at, stale_timeout)
        missing_since = max(self.last_seen.get(node_id, 0.0), self.watching_since)
        return self.taken_at - missing_since > stale_timeout

    def regions(self) -> set[str]:
        return {n.region for n in self.nodes.values() if n.region} | {s.region for s in self.sfunodes.values() if s.region}


@dataclass(frozen=True, slots=True)
class RoomView:
    """The parts of a Room the decision reads: its room name, spec, and status so far."""

    name: str
    spec: RoomSpec
    phase: str = ""
    node: str = ""


# -- decisions ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Schedule:
    """Claim the room for ``node`` in room_node_map (taking it from ``replacing``) and create it there."""

    node: str
    replacing: str = ""
    reason: str = "Scheduled"   # Scheduled | Rescheduled | Adopted
    message: str = ""


@dataclass(frozen=True, slots=True)
class Observe:
    """The room is live on a node: mirror its stats into status."""

    room: LiveRoom

    @property
    def phase(self) -> str:
        return ACTIVE if self.room.participants else SCHEDULED


@dataclass(frozen=True, slots=True)
class Unschedulable:
    """No node can take the room now: Pending with a condition saying why; tried again next tick."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Close:
    """The hosting node closed the room (empty or departure timeout): Closed, mapping released."""

    release: str = ""  # node whose stale mapping to forget, if any


@dataclass(frozen=True, slots=True)
class Wait:
    """Nothing to do, or nothing can be concluded from this snapshot."""


RoomDecision = Schedule | Observe | Unschedulable | Close | Wait


@dataclass(frozen=True, slots=True)
class SchedulingPolicy:
    """How the operator picks nodes: the router's limits and sort order."""

    limits: Limits = Limits()
    sort_by: str = "sysload"


def decide_room(
    room: RoomView,
    world: World,
    policy: SchedulingPolicy,
    acted_at: float = 0.0,
    rng: random.Random | None = None,
) -> RoomDecision:
    """What to do with one Room now.

    ``acted_at`` is when this operator last scheduled the room (unix s): a
    snapshot older than that cannot tell "closed" from "not created yet".
    """
    stale = policy.limits.stale_timeout
    live = world.live_room(room.name)
    if live is not None:
        return Observe(live)
    if room.phase == CLOSED:
        return Wait()  # stays closed unless a join brings it back (then it is live)
    if room.spec.region and room.spec.region not in world.regions():
        known = ", ".join(sorted(world.regions())) or "none"
        return Unschedulable("UnknownRegion", f"no SFUNode serves region {room.spec.region!r} (known: {known})")

    mapped = world.room_nodes.get(room.name, "")
    fresh = world.taken_at > acted_at
    if mapped and world.alive(mapped, stale):
        if mapped not in world.live:
            return Wait()  # the node did not answer: it may host the room
        if room.node == mapped and room.phase in HOSTED_PHASES:
            return Close(release=mapped) if fresh else Wait()
        # Claimed but not created: an operator stopped between the two, or a
        # join is creating it right now. Either way that node keeps it.
        return Schedule(mapped, reason="Adopted", message=f"room_node_map already maps the room to {mapped}")
    if mapped and not world.lost(mapped, stale):
        return Wait()  # missing from `nodes`, not for long: Redis may have restarted

    if room.node and room.phase in HOSTED_PHASES:
        if world.alive(room.node, stale):
            if room.node not in world.live or not fresh:
                return Wait()
            return Close()  # the node closed the room and released its mapping
        if not world.lost(room.node, stale):
            return Wait()

    lost = room.node if room.node and room.phase in HOSTED_PHASES else ""
    choice = pick_node(world, policy, room.spec.region, avoid={mapped, lost} - {""}, rng=rng)
    if isinstance(choice, Unschedulable):
        return choice
    if lost or mapped:
        gone = lost or mapped
        return Schedule(choice, replacing=mapped, reason="Rescheduled", message=f"node {gone} is gone; moved to {choice}")
    return Schedule(choice, message=f"scheduled on {choice}")


def node_exclusion(node: node_pb2.Node, sfunode: SFUNodeSpec | None, now: float, limits: Limits) -> str | None:
    """Why a node cannot take a new room: the router's reasons, then the SFUNode's draining and capacity."""
    why = exclusion(node, now, limits)
    if why is not None:
        return why
    if sfunode is None:
        return None
    if sfunode.draining:
        return "draining (spec.draining)"
    stats, capacity = node.stats, sfunode.capacity
    tracks = stats.num_tracks_in + stats.num_tracks_out
    bitrate = int(8 * (stats.bytes_in_per_sec + stats.bytes_out_per_sec))
    for limit, value, what in (
        (capacity.max_rooms, stats.num_rooms, "rooms"),
        (capacity.max_tracks, tracks, "tracks"),
        (capacity.max_bitrate, bitrate, "bitrate"),
    ):
        if limit and value >= limit:
            return f"over capacity ({what} {value}/{limit})"
    return None


def pick_node(
    world: World,
    policy: SchedulingPolicy,
    region: str = "",
    avoid: set[str] | None = None,
    rng: random.Random | None = None,
) -> str | Unschedulable:
    """The node a room goes to, or why none can take it."""
    avoid = avoid or set()
    reasons: dict[str, str] = {}
    candidates = []
    for node_id, node in sorted(world.nodes.items()):
        why = "the node the room is leaving" if node_id in avoid else node_exclusion(
            node, world.sfunodes.get(node_id), world.taken_at, policy.limits
        )
        if why is None:
            candidates.append(node)
        else:
            reasons[node_id] = why
    if not candidates:
        if not world.nodes:
            return Unschedulable("NoNodes", "no media node is registered in Redis")
        detail = ", ".join(f"{node_id}: {why}" for node_id, why in reasons.items())
        return Unschedulable("NoEligibleNode", f"no SFUNode can take the room ({detail})")
    try:
        return select_node(candidates, world.taken_at, policy.limits, sort_by=policy.sort_by, region=region, rng=rng).id
    except NoNodeAvailable as exc:  # cannot happen for candidates that passed exclusion; kept honest
        return Unschedulable("NoEligibleNode", exc.message)


# -- SFUNode status ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """SFUNode.status as the operator writes it."""

    phase: str
    reason: str
    message: str
    rooms: int = 0
    participants: int = 0
    load: float = 0.0
    last_heartbeat_ms: int = 0
    grpc_port: int = 0
    udp_port: int = 0


def node_status(spec: SFUNodeSpec, node: node_pb2.Node | None, mapped_rooms: int, now: float, stale_timeout: float) -> NodeStatus:
    """The phase of one SFUNode from its entry in `nodes` (None: missing) and the rooms mapped to it."""
    if node is None:
        return NodeStatus(NOT_READY, "NotRegistered", "the media pod has no entry in Redis `nodes`", rooms=mapped_rooms)
    stats = node.stats
    numbers = dict(
        rooms=max(stats.num_rooms, mapped_rooms),
        participants=stats.num_clients,
        load=round(float(stats.sys_load), 3),
        last_heartbeat_ms=stats.updated_at,
        grpc_port=node.grpc_port,
        udp_port=node.udp_port,
    )
    if not is_alive(node, now, stale_timeout):
        age = now - stats.updated_at / 1000.0
        return NodeStatus(NOT_READY, "HeartbeatStale", f"last heartbeat {age:.1f} s ago (limit {stale_timeout:g} s)", **numbers)
    draining = spec.draining or node.state == node_pb2.DRAINING
    if draining and numbers["rooms"]:
        return NodeStatus(DRAINING, "Draining", f"no new rooms; {numbers['rooms']} room(s) still hosted", **numbers)
    if draining:
        return NodeStatus(DRAINED, "Drained", "no new rooms and none hosted", **numbers)
    if node.state != node_pb2.SERVING:
        return NodeStatus(NOT_READY, "Starting", "the media pod is starting", **numbers)
    return NodeStatus(READY, "Serving", "takes new rooms", **numbers)


# -- clean-up ----------------------------------------------------------------------


def parse_timestamp(value: object) -> float | None:
    """An RFC 3339 time from a status (``2026-01-02T03:04:05Z``) as unix seconds; None if absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def closed_room_expired(auto_created: bool, status: Mapping[str, object], now: float, retention: float) -> bool:
    """Whether a Room is one a join created, Closed for longer than ``retention`` (0: never), so it may be deleted.

    Rooms a person created are never deleted: they are desired state. The
    Closed time is the Scheduled condition's transition to False with reason
    Closed (written when the media pod closed the empty room).
    """
    if not auto_created or retention <= 0 or status.get("phase") != CLOSED:
        return False
    conditions = status.get("conditions")
    for c in conditions if isinstance(conditions, list) else []:
        if isinstance(c, Mapping) and c.get("type") == "Scheduled" and c.get("status") == "False" and c.get("reason") == "Closed":
            since = parse_timestamp(c.get("lastTransitionTime"))
            return since is not None and now - since > retention
    return False


def node_gone_for(node: node_pb2.Node | None, last_heartbeat: object, now: float) -> float | None:
    """Seconds since a node's last heartbeat: from its Redis entry, else from SFUNode status.lastHeartbeat; None if unknown."""
    if node is not None and node.stats.updated_at:
        return now - node.stats.updated_at / 1000.0
    since = parse_timestamp(last_heartbeat)
    return None if since is None else now - since


# -- names -----------------------------------------------------------------------


def resource_name_for_room(room: str) -> str | None:
    """The Room object name for a live room, or None when the room's name is not a valid object name."""
    return room if len(room) <= 253 and _DNS_SUBDOMAIN.match(room) else None
