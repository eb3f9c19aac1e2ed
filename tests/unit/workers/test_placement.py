"""Each worker's config: its node id and UDP port, the pod's shared ports made concrete and checked free."""

from __future__ import annotations

import socket

import pytest

from mediapod.config import load_config
from mediapod.http.server import PortInUse
from mediapod.workers.placement import claim_shared_ports, worker_config


def test_worker_i_is_node_pod_wi_on_udp_port_plus_i_with_its_advertised_port_likewise() -> None:
    pod = load_config(["--dev", "--node-id", "pod", "--redis-address", "r:1", "--workers", "2", "--udp-port", "7882"], env={
        "SWITCHBOARD_RTC__ADVERTISED_PORT": "30000",
    })
    second = worker_config(pod, 1)
    assert (second.node_id, second.rtc.udp_port, second.rtc.advertised_port) == ("pod-w1", 7883, 30001)
    assert (second.worker.pod, second.worker.index, second.worker.shares_ports) == ("pod", 1, True)
    assert (second.metrics_host, second.metrics_port) == ("127.0.0.1", 0)  # only the supervisor's /metrics is public
    assert (second.http_port, second.grpc_port) == (pod.http_port, pod.grpc_port)
    assert pod.rtc.udp_port == 7882 and not pod.worker.shares_ports  # the pod's own config is left alone


def test_an_ephemeral_udp_port_stays_ephemeral_for_every_worker() -> None:
    pod = load_config(["--dev", "--redis-address", "r:1", "--workers", "2", "--udp-port", "0"], env={})
    assert [worker_config(pod, i).rtc.udp_port for i in range(2)] == [0, 0]


def test_shared_ports_become_concrete_and_a_taken_one_fails_like_a_single_process() -> None:
    pod = load_config(["--dev", "--redis-address", "r:1", "--workers", "2", "--http-port", "0", "--grpc-port", "0"], env={})
    claimed = claim_shared_ports(pod)
    assert claimed.http_port > 0 and claimed.grpc_port > 0
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        taken = holder.getsockname()[1]
        pod.grpc_port = taken
        with pytest.raises(PortInUse, match=f"gRPC port 127.0.0.1:{taken} is already in use"):
            claim_shared_ports(pod)
