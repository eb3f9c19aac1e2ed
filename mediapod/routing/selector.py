"""Which node hosts a new room: pure decisions over the `nodes` hash, tested without Redis.

Like LiveKit's node selectors: skip nodes whose heartbeat is stale or that
are not SERVING, skip nodes over a per-node limit, prefer the participant's
region, then take the least loaded by the configured metric (ties are broken
at random so simultaneous first joins spread out).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from mediapod.config import RoutingConfig
from mediapod.protocol import node_pb2
from mediapod.rtc.errors import ErrorCode, RequestError


class NoNodeAvailable(RequestError):
    """No node can take a new room; the message says why for each node."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What makes a node unselectable, besides its state."""

    stale_timeout: float = 10.0   # seconds
    sysload_limit: float = 0.0    # 0 = no limit
    cpuload_limit: float = 0.0
    max_rooms: int = 0            # 0 = unlimited
    max_participants: int = 0
    max_tracks: int = 0

    @classmethod
    def from_config(cls, config: RoutingConfig) -> Limits:
        return cls(
            stale_timeout=config.stale_timeout,
            sysload_limit=config.sysload_limit,
            cpuload_limit=config.cpuload_limit,
            max_rooms=config.max_rooms,
            max_participants=config.max_participants,
            max_tracks=config.max_tracks,
        )


def is_fresh(node: node_pb2.Node, now: float, stale_timeout: float) -> bool:
    """Its last heartbeat (unix ms) is at most stale_timeout seconds old."""
    return now - node.stats.updated_at / 1000.0 <= stale_timeout


def is_alive(node: node_pb2.Node | None, now: float, stale_timeout: float) -> bool:
    """The node can still host its rooms: it heartbeats (SERVING or DRAINING alike)."""
    return node is not None and is_fresh(node, now, stale_timeout)


def over_limit(node: node_pb2.Node, limits: Limits) -> str | None:
    """Why the node cannot take one more room, or None."""
    stats = node.stats
    checks = (
        (limits.max_rooms, stats.num_rooms, "rooms"),
        (limits.max_participants, stats.num_clients, "participants"),
        (limits.max_tracks, stats.num_tracks_in + stats.num_tracks_out, "tracks"),
    )
    for limit, value, what in checks:
        if limit and value >= limit:
            return f"over limit ({what} {value}/{limit})"
    if limits.sysload_limit and stats.sys_load >= limits.sysload_limit:
        return f"over limit (sysload {stats.sys_load:.2f}/{limits.sysload_limit:.2f})"
    if limits.cpuload_limit and stats.cpu_load >= limits.cpuload_limit:
        return f"over limit (cpuload {stats.cpu_load:.2f}/{limits.cpuload_limit:.2f})"
    return None


def exclusion(node: node_pb2.Node, now: float, limits: Limits) -> str | None:
    """Why the node cannot host a new room (stale, not serving, over a limit), or None."""
    if not is_fresh(node, now, limits.stale_timeout):
        age = now - node.stats.updated_at / 1000.0
        return f"stale (last heartbeat {age:.1f} s ago)"
    if node.state != node_pb2.SERVING:
        return node_pb2.NodeState.Name(node.state).lower()
    return over_limit(node, limits)


def load(node: node_pb2.Node, sort_by: str) -> float:
    """The node's load by one of config.SORT_BY; "random" weighs every node the same."""
    stats = node.stats
    if sort_by == "sysload":
        return stats.sys_load
    if sort_by == "cpuload":
        return stats.cpu_load
    if sort_by == "rooms":
        return stats.num_rooms
    if sort_by == "clients":
        return stats.num_clients
    if sort_by == "tracks":
        return stats.num_tracks_in + stats.num_tracks_out
    if sort_by == "bytespersec":
        return stats.bytes_in_per_sec + stats.bytes_out_per_sec
    return 0.0


def selectable(nodes: Iterable[node_pb2.Node], now: float, limits: Limits) -> list[node_pb2.Node]:
    """The nodes that may host a new room right now."""
    return [n for n in nodes if exclusion(n, now, limits) is None]


def select_node(
    nodes: Iterable[node_pb2.Node],
    now: float,
    limits: Limits,
    sort_by: str = "sysload",
    region: str = "",
    rng: random.Random | None = None,
) -> node_pb2.Node:
    """The node a new room goes to.

    Raises:
        NoNodeAvailable: RESOURCE_EXHAUSTED when some live node is over a
            limit, UNAVAILABLE when every node is gone, starting or draining.
    """
    nodes = list(nodes)
    candidates = selectable(nodes, now, limits)
    if not candidates:
        raise _no_node(nodes, now, limits)
    if region:
        local = [n for n in candidates if n.region == region]
        candidates = local or candidates
    lowest = min(load(n, sort_by) for n in candidates)
    tied = sorted((n for n in candidates if load(n, sort_by) == lowest), key=lambda n: n.id)
    return (rng or random).choice(tied)


def _no_node(nodes: list[node_pb2.Node], now: float, limits: Limits) -> NoNodeAvailable:
    if not nodes:
        return NoNodeAvailable(ErrorCode.UNAVAILABLE, "no media node is registered")
    reasons = {n.id: exclusion(n, now, limits) or "" for n in sorted(nodes, key=lambda n: n.id)}
    detail = ", ".join(f"{node_id} {why}" for node_id, why in reasons.items())
    if any(why.startswith("over limit") for why in reasons.values()):
        return NoNodeAvailable(ErrorCode.RESOURCE_EXHAUSTED, f"every media node is full or unavailable: {detail}")
    return NoNodeAvailable(ErrorCode.UNAVAILABLE, f"no media node can take a new room: {detail}")
