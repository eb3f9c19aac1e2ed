"""The node selector: which node a new room goes to, decided from `nodes` alone."""

from __future__ import annotations

import random

import pytest

from mediapod.protocol import node_pb2
from mediapod.routing.selector import Limits, NoNodeAvailable, exclusion, is_alive, load, select_node, selectable
from mediapod.rtc.errors import ErrorCode

NOW = 1_000_000.0


def node(node_id: str, *, age: float = 0.0, state: int = node_pb2.SERVING, region: str = "", **stats: float) -> node_pb2.Node:
    return node_pb2.Node(
        id=node_id,
        region=region,
        state=state,
        stats=node_pb2.NodeStats(updated_at=int((NOW - age) * 1000), **stats),
    )


def test_stale_node_is_not_selectable() -> None:
    fresh, stale = node("fresh", age=2.9), node("stale", age=3.1)
    assert [n.id for n in selectable([fresh, stale], NOW, Limits(stale_timeout=3))] == ["fresh"]
    assert exclusion(stale, NOW, Limits(stale_timeout=3)).startswith("stale")


def test_draining_and_starting_nodes_get_no_new_rooms() -> None:
    nodes = [node("a", state=node_pb2.DRAINING), node("b", state=node_pb2.STARTING), node("c")]
    assert select_node(nodes, NOW, Limits()).id == "c"
    assert exclusion(nodes[0], NOW, Limits()) == "draining"


def test_draining_node_that_heartbeats_is_still_alive_for_its_rooms() -> None:
    assert is_alive(node("a", state=node_pb2.DRAINING), NOW, 3)
    assert not is_alive(node("a", age=5), NOW, 3)
    assert not is_alive(None, NOW, 3)


@pytest.mark.parametrize(
    ("limits", "stats", "what"),
    [
        (Limits(max_rooms=2), {"num_rooms": 2}, "rooms 2/2"),
        (Limits(max_participants=10), {"num_clients": 11}, "participants 11/10"),
        (Limits(max_tracks=4), {"num_tracks_in": 1, "num_tracks_out": 3}, "tracks 4/4"),
        (Limits(sysload_limit=0.8), {"sys_load": 0.9}, "sysload"),
        (Limits(cpuload_limit=0.5), {"cpu_load": 0.75}, "cpuload"),
    ],
)
def test_node_over_a_per_node_limit_is_skipped(limits: Limits, stats: dict[str, float], what: str) -> None:
    full, spare = node("full", **stats), node("spare")
    assert select_node([full, spare], NOW, limits).id == "spare"
    assert what in (exclusion(full, NOW, limits) or "")


@pytest.mark.parametrize(
    ("sort_by", "busy", "idle"),
    [
        ("sysload", {"sys_load": 0.7}, {"sys_load": 0.1}),
        ("cpuload", {"cpu_load": 0.7}, {"cpu_load": 0.2}),
        ("rooms", {"num_rooms": 5}, {"num_rooms": 1}),
        ("clients", {"num_clients": 50}, {"num_clients": 3}),
        ("tracks", {"num_tracks_in": 2, "num_tracks_out": 9}, {"num_tracks_in": 1, "num_tracks_out": 1}),
        ("bytespersec", {"bytes_in_per_sec": 9e6}, {"bytes_out_per_sec": 1e3}),
    ],
)
def test_least_loaded_node_wins_by_the_configured_metric(sort_by: str, busy: dict[str, float], idle: dict[str, float]) -> None:
    nodes = [node("busy", **busy), node("idle", **idle)]
    for seed in range(5):
        assert select_node(nodes, NOW, Limits(), sort_by=sort_by, rng=random.Random(seed)).id == "idle"
    assert load(nodes[0], sort_by) > load(nodes[1], sort_by)


def test_ties_are_broken_at_random_so_first_joins_spread() -> None:
    nodes = [node("a"), node("b"), node("c")]
    chosen = {select_node(nodes, NOW, Limits(), sort_by="rooms", rng=random.Random(seed)).id for seed in range(40)}
    assert chosen == {"a", "b", "c"}


def test_random_sort_ignores_load() -> None:
    nodes = [node("a", num_rooms=100), node("b")]
    chosen = {select_node(nodes, NOW, Limits(), sort_by="random", rng=random.Random(seed)).id for seed in range(40)}
    assert chosen == {"a", "b"}


def test_participants_region_is_preferred_even_when_busier() -> None:
    nodes = [node("eu", region="eu", sys_load=0.6), node("us", region="us", sys_load=0.1)]
    assert select_node(nodes, NOW, Limits(), region="eu").id == "eu"


def test_other_regions_are_used_when_the_preferred_one_has_no_selectable_node() -> None:
    nodes = [node("eu", region="eu", state=node_pb2.DRAINING), node("us", region="us")]
    assert select_node(nodes, NOW, Limits(), region="eu").id == "us"


def test_every_node_draining_is_unavailable_with_a_reason_per_node() -> None:
    nodes = [node("a", state=node_pb2.DRAINING), node("b", age=60)]
    with pytest.raises(NoNodeAvailable) as error:
        select_node(nodes, NOW, Limits(stale_timeout=3))
    assert error.value.code == ErrorCode.UNAVAILABLE
    assert "a draining" in error.value.message and "b stale" in error.value.message


def test_every_node_draining_or_full_is_resource_exhausted() -> None:
    nodes = [node("a", state=node_pb2.DRAINING), node("b", num_rooms=1)]
    with pytest.raises(NoNodeAvailable) as error:
        select_node(nodes, NOW, Limits(max_rooms=1))
    assert error.value.code == ErrorCode.RESOURCE_EXHAUSTED
    assert "b over limit (rooms 1/1)" in error.value.message


def test_no_registered_node_is_unavailable() -> None:
    with pytest.raises(NoNodeAvailable) as error:
        select_node([], NOW, Limits())
    assert error.value.code == ErrorCode.UNAVAILABLE
    assert "no media node is registered" in error.value.message
