"""The operator's decisions, from one snapshot of the world, with no cluster, Redis or media pod."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from mediapod.protocol import node_pb2
from mediapod.routing.selector import Limits
from sfu_operator.scheduler import (
    ACTIVE,
    CLOSED,
    DRAINED,
    DRAINING,
    NOT_READY,
    PENDING,
    READY,
    SCHEDULED,
    Capacity,
    Close,
    InvalidSpec,
    LiveRoom,
    Observe,
    RoomSpec,
    RoomView,
    Schedule,
    SchedulingPolicy,
    SFUNodeSpec,
    Unschedulable,
    Wait,
    World,
    decide_room,
    node_status,
    parse_room_spec,
    pick_node,
    resource_name_for_room,
)

ROOT = Path(__file__).resolve().parents[3]
NOW = 1_000_000.0
POLICY = SchedulingPolicy(Limits(stale_timeout=3.0), sort_by="rooms")


def node(node_id: str, *, age: float = 0.0, state: int = node_pb2.SERVING, region: str = "", **stats: float) -> node_pb2.Node:
    return node_pb2.Node(
        id=node_id, ip="127.0.0.1", grpc_port=7880, region=region, state=state,
        stats=node_pb2.NodeStats(updated_at=int((NOW - age) * 1000), **stats),
    )


def world(*nodes: node_pb2.Node, room_nodes: dict[str, str] | None = None, live: dict[str, dict[str, LiveRoom]] | None = None,
          sfunodes: list[SFUNodeSpec] = (), taken_at: float = NOW, last_seen: dict[str, float] | None = None,
          watching_since: float = 0.0) -> World:
    answered = live if live is not None else {n.id: {} for n in nodes if n.stats.updated_at / 1000 >= NOW - 3}
    return World(taken_at, {n.id: n for n in nodes}, room_nodes or {}, answered, {s.name: s for s in sfunodes},
                 last_seen or {}, watching_since)


def room(name: str = "r", phase: str = "", on: str = "", **spec: object) -> RoomView:
    return RoomView(name, RoomSpec(**spec), phase, on)  # type: ignore[arg-type]


# -- a new Room ---------------------------------------------------------------------


def test_new_room_is_scheduled_on_the_least_loaded_ready_node() -> None:
    decision = decide_room(room(), world(node("a", num_rooms=3), node("b", num_rooms=1)), POLICY)
    assert decision == Schedule("b", message="scheduled on b")


def test_new_room_skips_stale_starting_and_draining_nodes() -> None:
    nodes = world(node("stale", age=5), node("starting", state=node_pb2.STARTING), node("draining", state=node_pb2.DRAINING),
                  node("ok", num_rooms=9))
    assert decide_room(room(), nodes, POLICY).node == "ok"


def test_sfunode_spec_draining_keeps_new_rooms_off_a_node_redis_still_calls_serving() -> None:
    nodes = world(node("a"), node("b", num_rooms=5), sfunodes=[SFUNodeSpec("a", draining=True)])
    assert decide_room(room(), nodes, POLICY).node == "b"


def test_sfunode_capacity_is_a_limit_on_top_of_the_routers() -> None:
    full = SFUNodeSpec("a", capacity=Capacity(max_rooms=2))
    nodes = world(node("a", num_rooms=2), node("b", num_rooms=7), sfunodes=[full])
    assert decide_room(room(), nodes, POLICY).node == "b"
    bitrate = SFUNodeSpec("b", capacity=Capacity(max_bitrate=8000))
    decision = decide_room(room(), world(node("b", bytes_in_per_sec=1000), sfunodes=[bitrate]), POLICY)
    assert isinstance(decision, Unschedulable) and "bitrate 8000/8000" in decision.message


def test_room_prefers_its_region_and_falls_back_when_the_region_is_full() -> None:
    nodes = world(node("eu", region="eu", num_rooms=5), node("us", region="us"))
    assert decide_room(room(region="eu"), nodes, POLICY).node == "eu"
    full = world(node("eu", region="eu", state=node_pb2.DRAINING), node("us", region="us"))
    assert decide_room(room(region="eu"), full, POLICY).node == "us"


def test_unknown_region_is_unschedulable_with_a_reason_naming_the_known_ones() -> None:
    decision = decide_room(room(region="mars"), world(node("a", region="eu")), POLICY)
    assert decision == Unschedulable("UnknownRegion", "no SFUNode serves region 'mars' (known: eu)")


def test_no_node_at_all_is_pending_not_an_error() -> None:
    assert decide_room(room(), world(), POLICY) == Unschedulable("NoNodes", "no media node is registered in Redis")


def test_every_node_excluded_says_why_for_each() -> None:
    decision = decide_room(room(), world(node("a", age=9), node("b", state=node_pb2.DRAINING)), POLICY)
    assert isinstance(decision, Unschedulable) and decision.reason == "NoEligibleNode"
    assert "a: stale" in decision.message and "b: draining" in decision.message


def test_ties_are_broken_by_the_given_random_source() -> None:
    nodes = world(node("a"), node("b"))
    picks = {decide_room(room(), nodes, POLICY, rng=random.Random(seed)).node for seed in range(20)}
    assert picks == {"a", "b"}


# -- restart safety: adopt, never schedule twice ------------------------------------


def test_room_already_claimed_in_redis_is_adopted_not_scheduled_again() -> None:
    nodes = world(node("a"), node("b", num_rooms=0), room_nodes={"r": "a"})
    assert decide_room(room(), nodes, POLICY) == Schedule("a", reason="Adopted", message="room_node_map already maps the room to a")


def test_live_room_is_observed_with_its_stats() -> None:
    live = LiveRoom("a", participants=2, publishers=1, tracks=2)
    decision = decide_room(room(phase=SCHEDULED, on="a"), world(node("a"), live={"a": {"r": live}}), POLICY)
    assert decision == Observe(live) and decision.phase == ACTIVE
    assert Observe(LiveRoom("a")).phase == SCHEDULED


def test_room_live_on_two_nodes_is_observed_where_redis_maps_it() -> None:
    live = {"a": {"r": LiveRoom("a", participants=1)}, "b": {"r": LiveRoom("b", participants=2)}}
    assert decide_room(room(), world(node("a"), node("b"), room_nodes={"r": "b"}, live=live), POLICY) == Observe(live["b"]["r"])


def test_node_that_did_not_answer_is_not_taken_to_have_closed_its_rooms() -> None:
    nodes = world(node("a"), room_nodes={"r": "a"}, live={})
    assert decide_room(room(phase=ACTIVE, on="a"), nodes, POLICY) == Wait()


# -- closing ---------------------------------------------------------------------


def test_room_the_node_closed_moves_to_closed() -> None:
    nodes = world(node("a"))  # alive, answered, room neither live nor mapped
    assert decide_room(room(phase=ACTIVE, on="a"), nodes, POLICY, acted_at=NOW - 5) == Close()
    mapped = world(node("a"), room_nodes={"r": "a"})
    assert decide_room(room(phase=SCHEDULED, on="a"), mapped, POLICY, acted_at=NOW - 5) == Close(release="a")


def test_snapshot_older_than_the_scheduling_cannot_close_the_room() -> None:
    nodes = world(node("a"))
    assert decide_room(room(phase=SCHEDULED, on="a"), nodes, POLICY, acted_at=NOW + 0.1) == Wait()


def test_closed_room_stays_closed_until_a_join_brings_it_back() -> None:
    assert decide_room(room(phase=CLOSED, on="a"), world(node("a")), POLICY) == Wait()
    back = world(node("b"), live={"b": {"r": LiveRoom("b", participants=1)}})
    assert decide_room(room(phase=CLOSED, on="a"), back, POLICY) == Observe(LiveRoom("b", participants=1))


# -- lost nodes ------------------------------------------------------------------


def test_room_of_a_lost_node_is_rescheduled_elsewhere_replacing_the_mapping() -> None:
    nodes = world(node("a", age=10), node("b"), room_nodes={"r": "a"})
    decision = decide_room(room(phase=ACTIVE, on="a"), nodes, POLICY)
    assert decision == Schedule("b", replacing="a", reason="Rescheduled", message="node a is gone; moved to b")


def test_room_of_a_node_missing_from_redis_for_a_stale_timeout_is_rescheduled() -> None:
    nodes = world(node("b"), last_seen={"gone": NOW - 3.5}, watching_since=NOW - 60)
    decision = decide_room(room(phase=SCHEDULED, on="gone"), nodes, POLICY)
    assert isinstance(decision, Schedule) and decision.node == "b" and decision.reason == "Rescheduled"


def test_node_missing_right_after_a_redis_restart_is_not_taken_for_lost() -> None:
    # Redis came back empty: b re-registered first, a has not yet (it will within a heartbeat).
    just_missing = world(node("b"), last_seen={"a": NOW - 1}, watching_since=NOW - 60)
    assert decide_room(room(phase=ACTIVE, on="a"), just_missing, POLICY) == Wait()
    mapped_there = world(node("b"), room_nodes={"r": "a"}, last_seen={"a": NOW - 1}, watching_since=NOW - 60)
    assert decide_room(room(phase=ACTIVE, on="a"), mapped_there, POLICY) == Wait()
    # An operator that just started, or whose Redis just came back, has not missed it for long either.
    assert decide_room(room(phase=ACTIVE, on="a"), world(node("b"), watching_since=NOW - 1), POLICY) == Wait()
    long_outage = world(node("b"), last_seen={"a": NOW - 30}, watching_since=NOW - 1)
    assert decide_room(room(phase=ACTIVE, on="a"), long_outage, POLICY) == Wait()


def test_lost_node_is_never_the_new_home_even_if_it_looks_least_loaded() -> None:
    nodes = world(node("a", age=10), node("b", num_rooms=50), room_nodes={"r": "a"})
    assert decide_room(room(phase=ACTIVE, on="a"), nodes, POLICY).node == "b"


def test_room_on_a_draining_node_stays_there() -> None:
    live = {"a": {"r": LiveRoom("a", participants=1)}}
    nodes = world(node("a", state=node_pb2.DRAINING), node("b"), room_nodes={"r": "a"}, live=live)
    assert isinstance(decide_room(room(phase=ACTIVE, on="a"), nodes, POLICY), Observe)


# -- spec -----------------------------------------------------------------------


def test_spec_is_checked_again_behind_the_schema() -> None:
    assert parse_room_spec({"maxParticipants": 4, "emptyTimeout": 30, "region": "eu"}) == RoomSpec(4, 30, 0, "eu")
    with pytest.raises(InvalidSpec, match="maxParticipants must be at least 1"):
        parse_room_spec({"maxParticipants": 0})
    with pytest.raises(InvalidSpec, match="must be an integer"):
        parse_room_spec({"emptyTimeout": "ten"})
    with pytest.raises(InvalidSpec, match="must be an integer"):
        parse_room_spec({"maxParticipants": True})
    with pytest.raises(InvalidSpec, match="region must be a string"):
        parse_room_spec({"region": 7})


def test_only_valid_object_names_become_auto_created_rooms() -> None:
    assert resource_name_for_room("team-standup.eu") == "team-standup.eu"
    assert resource_name_for_room("Team Standup") is None
    assert resource_name_for_room("x" * 254) is None


# -- SFUNode status --------------------------------------------------------------


def test_sfunode_phases() -> None:
    spec = SFUNodeSpec("a")
    assert node_status(spec, node("a", num_rooms=2, sys_load=0.25), 2, NOW, 3).phase == READY
    assert node_status(spec, node("a", age=4), 0, NOW, 3).phase == NOT_READY
    assert node_status(spec, None, 0, NOW, 3).reason == "NotRegistered"
    assert node_status(spec, node("a", state=node_pb2.STARTING), 0, NOW, 3).reason == "Starting"


def test_draining_sfunode_is_draining_until_empty_then_drained() -> None:
    draining = SFUNodeSpec("a", draining=True)
    assert node_status(draining, node("a", num_rooms=1), 1, NOW, 3).phase == DRAINING
    assert node_status(draining, node("a", num_rooms=0), 1, NOW, 3).phase == DRAINING  # still mapped
    assert node_status(draining, node("a", num_rooms=0), 0, NOW, 3).phase == DRAINED


def test_sfunode_status_carries_the_heartbeat_numbers() -> None:
    status = node_status(SFUNodeSpec("a"), node("a", num_rooms=3, num_clients=7, sys_load=0.12345), 1, NOW, 3)
    assert (status.rooms, status.participants, status.load) == (3, 7, 0.123)
    assert status.last_heartbeat_ms == int(NOW * 1000)


def test_pick_node_avoids_named_nodes() -> None:
    assert pick_node(world(node("a"), node("b", num_rooms=4)), POLICY, avoid={"a"}) == "b"
    assert isinstance(pick_node(world(node("a")), POLICY, avoid={"a"}), Unschedulable)


def test_phases_are_the_ones_the_crds_allow() -> None:
    def enum(path: str) -> set[str]:
        crd = yaml.safe_load((ROOT / path).read_text())
        status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        return set(status["properties"]["phase"]["enum"])

    assert enum("crds/rooms.yaml") == {PENDING, SCHEDULED, ACTIVE, CLOSED}
    assert enum("crds/sfunodes.yaml") == {READY, DRAINING, DRAINED, NOT_READY}
