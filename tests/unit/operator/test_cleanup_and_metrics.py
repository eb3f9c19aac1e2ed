"""Operability: closed auto-created Rooms and gone nodes are cleaned up; every reconcile is counted; flags explain themselves."""

from __future__ import annotations

import io
import time
from contextlib import redirect_stdout
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sfu_operator.config import ConfigError, build_parser, load_config
from sfu_operator.metrics import MetricsServer, OperatorMetrics
from sfu_operator.scheduler import LiveRoom, World, closed_room_expired, node_gone_for
from sfu_operator.sync import now_iso
from tests.unit.operator.test_sync import node, reconciler

ENV = {"SWITCHBOARD_REDIS__ADDRESS": "r:1", "SWITCHBOARD_API_KEY": "key", "SWITCHBOARD_API_SECRET": "topsecret-value"}


def closed(ago: float) -> dict[str, Any]:
    return {"phase": "Closed", "conditions": [
        {"type": "Scheduled", "status": "False", "reason": "Closed", "lastTransitionTime": now_iso(time.time() - ago)}]}


def sample(metrics: OperatorMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


# -- pure decisions ---------------------------------------------------------------------


def test_only_auto_created_rooms_closed_longer_than_the_retention_expire() -> None:
    now = time.time()
    assert closed_room_expired(True, closed(301), now, 300)
    assert not closed_room_expired(True, closed(299), now, 300)
    assert not closed_room_expired(False, closed(10_000), now, 300)  # a person's Room is desired state
    assert not closed_room_expired(True, closed(10_000), now, 0)      # 0 = keep forever
    assert not closed_room_expired(True, {**closed(10_000), "phase": "Active"}, now, 300)


@pytest.mark.parametrize("conditions", [None, "garbage", [{"type": "Scheduled", "status": "False", "reason": "Closed",
                                                            "lastTransitionTime": "yesterday"}], [42]])
def test_a_closed_room_with_a_malformed_condition_is_kept(conditions: Any) -> None:
    assert not closed_room_expired(True, {"phase": "Closed", "conditions": conditions}, time.time(), 1)


def test_node_gone_time_comes_from_redis_else_from_the_sfunode_status() -> None:
    now = time.time()
    assert node_gone_for(node("a", age=42), None, now) == pytest.approx(42, abs=1)
    assert node_gone_for(None, now_iso(now - 600), now) == pytest.approx(600, abs=1)
    assert node_gone_for(None, None, now) is None
    assert node_gone_for(None, "not a time", now) is None


# -- the Reconciler acts on them ---------------------------------------------------------


class Deleted:
    def __init__(self) -> None:
        self.rooms: list[tuple[str, str]] = []
        self.sfunodes: list[str] = []

    async def room(self, namespace: str, name: str) -> bool:
        self.rooms.append((namespace, name))
        return True

    async def sfunode(self, name: str) -> bool:
        self.sfunodes.append(name)
        return True


async def test_expired_auto_created_room_is_deleted_and_a_persons_is_kept() -> None:
    r = reconciler([node("a")])
    r.config.closed_room_retention = 60
    deleted = Deleted()
    r.delete_room_object = deleted.room
    assert (await r.reconcile_room("walk-in", {}, closed(61), auto_created=True)).result == "deleted"
    assert (await r.reconcile_room("meeting", {}, closed(61), auto_created=False)).result == "waited"
    assert deleted.rooms == []  # never from inside the handler: kopf could keep its finalizer on the object
    await r.clean_up()
    await r.clean_up()
    assert deleted.rooms == [("default", "walk-in")]
    assert sample(r.metrics, "switchboard_operator_reconciles_total", kind="room", result="deleted") == 1


async def test_node_gone_longer_than_the_grace_loses_its_redis_entry_and_sfunode() -> None:
    r = reconciler([node("gone", age=700), node("late", age=30)])
    r.config.node_gone_grace = 600
    removed: list[str] = []

    async def remove_node(node_id: str) -> None:
        removed.append(node_id)

    r.registry.remove_node = remove_node  # type: ignore[attr-defined]
    deleted = Deleted()
    r.delete_sfunode_object = deleted.sfunode
    outcome = await r.reconcile_sfunode("gone", {"phase": "NotReady"})
    assert outcome.result == "removed" and outcome.event is not None and outcome.event[1] == "Removed"
    assert (await r.reconcile_sfunode("late", {"phase": "NotReady"})).result != "removed"
    assert removed == deleted.sfunodes == []
    await r.clean_up()
    await r.clean_up()
    assert removed == deleted.sfunodes == ["gone"]
    assert sample(r.metrics, "switchboard_operator_reconciles_total", kind="sfunode", result="removed") == 1


async def test_a_room_or_node_back_before_the_clean_up_is_kept() -> None:
    r = reconciler([node("a", age=700)], live={"a": {}})
    r.config.closed_room_retention, r.config.node_gone_grace = 60, 600
    deleted = Deleted()
    r.delete_room_object, r.delete_sfunode_object = deleted.room, deleted.sfunode
    await r.reconcile_room("walk-in", {}, closed(61), auto_created=True)
    await r.reconcile_sfunode("a", {"phase": "NotReady"})
    # The next snapshot: a join reopened the room, and the node heartbeats again.
    r.world = World(time.time(), {"a": node("a")}, {"walk-in": "a"}, {"a": {"walk-in": LiveRoom("a", participants=1)}})
    await r.clean_up()
    assert deleted.rooms == deleted.sfunodes == []


async def test_redis_restarted_empty_is_not_a_gone_node() -> None:
    r = reconciler([])
    r.config.node_gone_grace = 600
    deleted = Deleted()
    r.delete_sfunode_object = deleted.sfunode
    # Missing from `nodes` for 1 s only: its old lastHeartbeat does not make it gone.
    r.world = World(time.time(), {}, {}, {}, last_seen={}, watching_since=time.time() - 1)
    await r.reconcile_sfunode("a", {"phase": "Ready", "lastHeartbeat": now_iso(time.time() - 10_000)})
    assert deleted.sfunodes == []


async def test_reconciles_phases_and_scheduling_latency_are_counted() -> None:
    r = reconciler([node("a")])
    scheduled = await r.reconcile_room("standup", {}, {})
    assert scheduled.result == "scheduled"
    await r.reconcile_room("invalid", {"maxParticipants": "many"}, {})
    await r.reconcile_sfunode("a", {})
    m = r.metrics
    assert sample(m, "switchboard_operator_reconciles_total", kind="room", result="scheduled") == 1
    assert sample(m, "switchboard_operator_reconciles_total", kind="room", result="invalid") == 1
    assert sample(m, "switchboard_operator_reconciles_total", kind="sfunode", result="updated") == 1
    assert sample(m, "switchboard_operator_scheduling_latency_seconds_count") == 1
    assert sample(m, "switchboard_operator_rooms", phase="Scheduled") == 1
    assert sample(m, "switchboard_operator_rooms", phase="Pending") == sample(m, "switchboard_operator_pending_rooms") == 1
    assert sample(m, "switchboard_operator_nodes", phase="Ready") == 1
    r.note_room("invalid", deleted=True)
    assert sample(m, "switchboard_operator_pending_rooms") == 0


async def test_metrics_endpoint_serves_prometheus_text_and_health_and_nothing_else() -> None:
    metrics = OperatorMetrics()
    metrics.leader.set(1)
    server = MetricsServer(metrics, "127.0.0.1", 0)
    port = await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as answer:
                text = await answer.text()
            families = {f.name: f for f in text_string_to_metric_families(text)}
            assert families["switchboard_operator_leader"].samples[0].value == 1
            assert {"switchboard_operator_reconciles", "switchboard_operator_scheduling_latency_seconds",
                    "switchboard_operator_pending_rooms", "switchboard_operator_rooms", "switchboard_operator_nodes"} <= set(families)
            for family in families.values():  # closed label sets: no names of rooms or nodes
                for s in family.samples:
                    assert set(s.labels) <= {"kind", "result", "phase", "le"}, s
            async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                assert answer.status == 200
            async with http.get(f"http://127.0.0.1:{port}/../etc/passwd") as answer:
                assert answer.status == 404
            async with http.post(f"http://127.0.0.1:{port}/metrics", data=b"x" * 10_000) as answer:
                assert answer.status == 405
    finally:
        await server.stop()


# -- flags ------------------------------------------------------------------------------


def test_every_flag_has_help_text_and_shows_its_default_but_never_a_secret() -> None:
    parser = build_parser(ENV)
    for action in parser._actions:
        if action.dest != "help":
            assert action.help and len(action.help) > 10, action.dest
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = out.getvalue()
    assert "--kubeconfig" in text and "(default: 300.0)" in text and "(default: 600.0)" in text
    assert "topsecret-value" not in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--closed-room-retention", "-1"], "must not be negative"),
        (["--node-gone-grace", "5", "--stale-timeout", "10"], "must exceed --stale-timeout"),
        (["--metrics-port", "70000"], "must be a port number"),
        (["--log-level", "chatty"], "--log-level must be one of"),
        (["--kubeconfig", "/nonexistent/kubeconfig"], "is not a readable file"),
    ],
)
def test_bad_operability_flags_are_refused_with_a_reason(args: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(args, env=ENV)


def test_secrets_come_from_the_environment_and_flags_win() -> None:
    assert load_config([], env=ENV).api_secret == "topsecret-value"
    assert load_config(["--api-secret", "other"], env=ENV).api_secret == "other"
    assert load_config([], env={**ENV, "SWITCHBOARD_REDIS__PASSWORD": "pw"}).redis_password == "pw"
