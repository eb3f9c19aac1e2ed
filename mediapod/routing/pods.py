"""A pod's workers seen together: the `nodes` entries that name the same pod, summed.

A pod running several worker processes registers each as a node (the
selector places rooms on workers); what the pod as a whole offers and
carries is the sum of its workers' entries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mediapod.protocol import node_pb2


@dataclass(frozen=True)
class PodCapacity:
    """One pod's registered workers, the cores they count for, and what they host."""

    pod: str
    workers: tuple[str, ...]  # node ids, by worker index
    cpus: int
    rooms: int
    clients: int


def pod_of(node: node_pb2.Node) -> str:
    """The pod a node belongs to (a node registered before workers existed is its own pod)."""
    return node.pod or node.id


def pods(nodes: Iterable[node_pb2.Node]) -> dict[str, PodCapacity]:
    """pod -> its capacity, from the entries of `nodes`."""
    grouped: dict[str, list[node_pb2.Node]] = {}
    for node in nodes:
        grouped.setdefault(pod_of(node), []).append(node)
    return {
        pod: PodCapacity(
            pod=pod,
            workers=tuple(n.id for n in sorted(members, key=lambda n: (n.worker, n.id))),
            cpus=sum(n.stats.num_cpus for n in members),
            rooms=sum(n.stats.num_rooms for n in members),
            clients=sum(n.stats.num_clients for n in members),
        )
        for pod, members in grouped.items()
    }
