"""A pod's capacity: the `nodes` entries of its workers, summed."""

from __future__ import annotations

from mediapod.protocol import node_pb2
from mediapod.routing.pods import PodCapacity, pods


def _node(node_id: str, pod: str = "", worker: int = 0, rooms: int = 0, cpus: int = 1) -> node_pb2.Node:
    return node_pb2.Node(id=node_id, pod=pod, worker=worker, stats=node_pb2.NodeStats(num_rooms=rooms, num_clients=2 * rooms, num_cpus=cpus))


def test_a_pods_workers_are_summed_and_a_node_without_a_pod_is_its_own() -> None:
    table = [_node("a-w1", "a", 1, rooms=2), _node("a-w0", "a", 0, rooms=1), _node("old", rooms=3, cpus=4)]
    assert pods(table) == {
        "a": PodCapacity(pod="a", workers=("a-w0", "a-w1"), cpus=2, rooms=3, clients=6),
        "old": PodCapacity(pod="old", workers=("old",), cpus=4, rooms=3, clients=6),
    }
