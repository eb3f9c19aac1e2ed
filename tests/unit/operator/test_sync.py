"""The Reconciler's side effects, with Redis and the media pods replaced by recording fakes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mediapod.protocol import node_pb2
from sfu_operator.config import OperatorConfig
from sfu_operator.media_rooms import MediaPodError
from sfu_operator.scheduler import LiveRoom, RoomSpec, SFUNodeSpec, World
from sfu_operator.sync import Reconciler


def node(node_id: str, age: float = 0.0, **stats: float) -> node_pb2.Node:
    updated = int((time.time() - age) * 1000)
    return node_pb2.Node(id=node_id, ip="127.0.0.1", grpc_port=1, state=node_pb2.SERVING,
                         stats=node_pb2.NodeStats(updated_at=updated, **stats))


class FakeRegistry:
    def __init__(self, nodes: dict[str, node_pb2.Node], mapping: dict[str, str] | None = None) -> None:
        self.nodes = nodes
        self.mapping = dict(mapping or {})
        self.released: list[tuple[str, str]] = []

    async def claim_room(self, room: str, node_id: str, replacing: str = "") -> str:
        current = self.mapping.get(room)
        if current is None or (replacing and current == replacing):
            self.mapping[room] = node_id
        return self.mapping[room]

    async def node(self, node_id: str) -> node_pb2.Node | None:
        return self.nodes.get(node_id)

    async def room_node(self, room: str) -> str | None:
        return self.mapping.get(room)

    async def release_room(self, room: str, node_id: str) -> bool:
        self.released.append((room, node_id))
        return self.mapping.pop(room, None) is not None


class FakeMedia:
    def __init__(self, fail: bool = False) -> None:
        self.created: list[tuple[str, str, RoomSpec]] = []
        self.deleted: list[tuple[str, str]] = []
        self.fail = fail

    async def create_room(self, target: node_pb2.Node, name: str, spec: RoomSpec) -> None:
        if self.fail:
            raise MediaPodError(f"CreateRoom {name} on node {target.id}: UNAVAILABLE")
        self.created.append((target.id, name, spec))

    async def delete_room(self, target: node_pb2.Node, name: str) -> bool:
        self.deleted.append((target.id, name))
        return True

    async def close(self) -> None:
        return None


def reconciler(nodes: list[node_pb2.Node], mapping: dict[str, str] | None = None, live: dict[str, Any] | None = None,
               fail: bool = False, sfunodes: list[SFUNodeSpec] = ()) -> Reconciler:
    config = OperatorConfig(redis_address="127.0.0.1:1", api_key="k", api_secret="s", stale_timeout=3.0, sort_by="rooms")
    r = Reconciler(config, media=FakeMedia(fail))  # type: ignore[arg-type]
    by_id = {n.id: n for n in nodes}
    r.registry = FakeRegistry(by_id, mapping)  # type: ignore[assignment]
    answered = live if live is not None else {n.id: {} for n in nodes}
    r.world = World(time.time(), by_id, dict(mapping or {}), answered, {s.name: s for s in sfunodes})
    r._world_ready.set()
    return r


async def test_new_room_is_claimed_created_on_its_node_and_reported_scheduled() -> None:
    r = reconciler([node("a", num_rooms=2), node("b")])
    outcome = await r.reconcile_room("r", {"maxParticipants": 4, "emptyTimeout": 30}, {})
    assert r.registry.mapping == {"r": "b"}  # type: ignore[attr-defined]
    assert r.media.created == [("b", "r", RoomSpec(max_participants=4, empty_timeout=30))]  # type: ignore[attr-defined]
    assert (outcome.status["phase"], outcome.status["node"]) == ("Scheduled", "b")
    assert outcome.status["conditions"][0]["status"] == "True"
    assert outcome.event == ("Normal", "Scheduled", "scheduled on b")


async def test_claim_lost_to_a_racing_join_adopts_the_winner() -> None:
    r = reconciler([node("a"), node("b", num_rooms=5)])
    r.registry.mapping["r"] = "b"  # type: ignore[attr-defined]  # mapped after the snapshot was taken
    outcome = await r.reconcile_room("r", {}, {})
    assert outcome.status["node"] == "b" and outcome.event is not None and outcome.event[1] == "Adopted"
    assert [c[0] for c in r.media.created] == ["b"]  # type: ignore[attr-defined]


async def test_failed_create_leaves_the_room_pending_with_the_reason_and_keeps_the_claim() -> None:
    r = reconciler([node("a")], fail=True)
    outcome = await r.reconcile_room("r", {}, {})
    assert outcome.status["phase"] == "Pending"
    assert outcome.event is not None and outcome.event[:2] == ("Warning", "CreateFailed")
    assert r.registry.mapping == {"r": "a"}  # type: ignore[attr-defined]


async def test_unschedulable_room_gets_one_warning_not_one_per_tick() -> None:
    r = reconciler([node("a")])
    first = await r.reconcile_room("r", {"region": "mars"}, {})
    assert first.event is not None and first.event[:2] == ("Warning", "UnknownRegion")
    again = await r.reconcile_room("r", {"region": "mars"}, first.status)
    assert again.event is None and again.status == {}


async def test_spec_the_schema_missed_is_marked_invalid_without_raising() -> None:
    outcome = await reconciler([node("a")]).reconcile_room("r", {"maxParticipants": "many"}, {})
    assert outcome.status["phase"] == "Pending"
    assert outcome.event is not None and outcome.event[1] == "InvalidSpec"


async def test_live_room_status_mirrors_the_node() -> None:
    live = {"a": {"r": LiveRoom("a", participants=3, publishers=1, tracks=2)}}
    outcome = await reconciler([node("a")], {"r": "a"}, live).reconcile_room("r", {}, {"phase": "Scheduled", "node": "a"})
    assert outcome.status == {"phase": "Active", "participants": 3, "publishers": 1, "tracks": 2}


async def test_a_status_just_written_is_not_decided_on_again_from_an_older_body() -> None:
    r = reconciler([node("a"), node("b")])
    await r.reconcile_room("r", {}, {})
    second = await r.reconcile_room("r", {}, {})  # kopf's body from before the first patch landed
    assert second.event is None
    assert len(r.media.created) == 1  # type: ignore[attr-defined]


async def test_finalizer_closes_the_room_on_its_live_node_and_releases_the_mapping() -> None:
    r = reconciler([node("a"), node("dead", age=60)], {"r": "a"})
    await r.finalize_room("r", {"node": "dead"})
    assert r.media.deleted == [("a", "r")]  # type: ignore[attr-defined]
    assert r.registry.released == [("r", "a")]  # type: ignore[attr-defined]


async def test_sfunode_phase_change_is_written_with_one_event() -> None:
    r = reconciler([node("a", age=10)])
    outcome = await r.reconcile_sfunode("a", {"phase": "Ready"})
    assert outcome.status["phase"] == "NotReady"
    assert outcome.event is not None and outcome.event[:2] == ("Warning", "HeartbeatStale")
    steady = await r.reconcile_sfunode("a", {**outcome.status})
    assert steady.event is None


async def test_sfunode_missing_from_redis_only_briefly_keeps_its_phase() -> None:
    r = reconciler([])
    r.world = World(time.time(), {}, {}, {}, last_seen={"a": time.time() - 1}, watching_since=time.time() - 60)
    assert (await r.reconcile_sfunode("a", {"phase": "Ready"})).status == {}
    r.world = World(time.time(), {}, {}, {}, last_seen={"a": time.time() - 5}, watching_since=time.time() - 60)
    assert (await r.reconcile_sfunode("a", {"phase": "Ready"})).status["phase"] == "NotReady"


@pytest.mark.parametrize("draining", [True, False])
async def test_sfunode_draining_spec_reaches_the_phase(draining: bool) -> None:
    r = reconciler([node("a")], sfunodes=[SFUNodeSpec("a", draining=draining)])
    outcome = await r.reconcile_sfunode("a", {})
    assert outcome.status["phase"] == ("Drained" if draining else "Ready")


async def test_without_any_snapshot_yet_nothing_is_decided_and_nothing_hangs() -> None:
    config = OperatorConfig(redis_address="127.0.0.1:1", api_key="k", api_secret="s", redis_timeout=0.05)
    r = Reconciler(config, media=FakeMedia())  # type: ignore[arg-type]
    assert (await r.reconcile_room("r", {}, {})).status == {}
    assert (await r.reconcile_sfunode("a", {})).status == {}


async def test_a_rooms_lifecycle_is_told_as_events_on_the_room() -> None:
    def observe(participants: int, status: dict[str, Any]):  # type: ignore[no-untyped-def]
        live = {"a": {"r": LiveRoom("a", participants=participants, publishers=0, tracks=participants)}}
        return reconciler([node("a")], {"r": "a"}, live).reconcile_room("r", {}, status)

    started = await observe(1, {"phase": "Scheduled", "node": "a"})
    assert started.event == ("Normal", "Started", "1 participant(s) joined on a")
    changed = await observe(2, {"phase": "Active", "node": "a", "participants": 1, "tracks": 1})
    assert changed.event is not None and changed.event[1] == "Changed"
    steady = await observe(2, {"phase": "Active", "node": "a", "participants": 2, "tracks": 2})
    assert steady.event is None
    emptied = await observe(0, {"phase": "Active", "node": "a", "participants": 2, "tracks": 2})
    assert emptied.event == ("Normal", "Emptied", "every participant left")
