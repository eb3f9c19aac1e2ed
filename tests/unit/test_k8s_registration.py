"""The media pod's SFUNode registration: its settings, the spec it owns, and how it follows spec.draining."""

from __future__ import annotations

import pytest

from mediapod.config import ConfigError, load_config
from mediapod.k8s_registration import SFUNodeRegistration
from mediapod.protocol import node_pb2
from mediapod.workers.placement import worker_config


class FakeRouter:
    """The two RedisRouter calls the registration makes, recorded."""

    def __init__(self) -> None:
        self.state = node_pb2.SERVING
        self.grpc_port = 7880
        self.calls: list[str] = []

    @property
    def draining(self) -> bool:
        return self.state == node_pb2.DRAINING

    async def drain(self) -> None:
        self.calls.append("drain")
        self.state = node_pb2.DRAINING

    async def set_serving(self, grpc_port: int) -> None:
        self.calls.append(f"serve {grpc_port}")
        self.state = node_pb2.SERVING

    def describe(self) -> node_pb2.Node:
        return node_pb2.Node(id="node-a", ip="10.0.0.7")


ENV = {"SWITCHBOARD_REDIS__ADDRESS": "127.0.0.1:6379", "SWITCHBOARD_KUBERNETES__KUBECONFIG": "/etc/kubeconfig"}


def registration(router: FakeRouter, sigterm: bool = False, **env: str) -> SFUNodeRegistration:
    config = load_config(["--dev", "--node-id", "node-a"], env={**ENV, **env})
    return SFUNodeRegistration(config, router, lambda: sigterm)  # type: ignore[arg-type]


def test_kubeconfig_setting_comes_from_the_environment_and_needs_redis_and_a_dns_node_id() -> None:
    assert load_config(["--dev", "--node-id", "node-a"], env=ENV).kubernetes.kubeconfig == "/etc/kubeconfig"
    assert load_config(["--dev"], env={}).kubernetes.kubeconfig == ""
    with pytest.raises(ConfigError, match="needs redis.address"):
        load_config(["--dev"], env={"SWITCHBOARD_KUBERNETES__KUBECONFIG": "in-cluster"})
    with pytest.raises(ConfigError, match="lowercase DNS name"):
        load_config(["--dev", "--node-id", "Node_A"], env=ENV)


def test_spec_the_pod_owns_is_address_region_and_capacity_never_draining() -> None:
    spec = registration(FakeRouter(), SWITCHBOARD_REGION="eu-west", SWITCHBOARD_ROUTING__MAX_ROOMS="50").desired_spec()
    assert spec == {"address": "10.0.0.7", "region": "eu-west", "capacity": {"maxRooms": 50, "maxTracks": 0}, "pod": None}
    assert registration(FakeRouter()).desired_spec()["region"] is None  # absent, removed by a merge patch


def test_a_worker_process_names_its_pod_in_its_own_sfunode() -> None:
    config = load_config(["--dev", "--node-id", "node-a", "--workers", "2"], env=ENV)
    worker = SFUNodeRegistration(worker_config(config, 1), FakeRouter(), lambda: False)  # type: ignore[arg-type]
    assert worker.desired_spec()["pod"] == "node-a"


async def test_spec_draining_drains_the_router_once_and_serving_resumes_when_cleared() -> None:
    router = FakeRouter()
    pod = registration(router)
    await pod._follow(True)
    await pod._follow(True)
    assert router.calls == ["drain"]
    await pod._follow(False)
    assert router.calls == ["drain", "serve 7880"]
    await pod._follow(False)
    assert router.calls == ["drain", "serve 7880"]


async def test_clearing_spec_draining_does_not_undo_a_sigterm_drain() -> None:
    router = FakeRouter()
    pod = registration(router, sigterm=True)
    await pod._follow(True)
    await pod._follow(False)
    assert router.calls == ["drain"]


async def test_a_drain_the_pod_did_not_start_is_not_undone() -> None:
    router = FakeRouter()
    router.state = node_pb2.DRAINING  # SIGTERM came first
    await registration(router)._follow(False)
    assert router.calls == []
