"""The supervisor against real child processes: start, restart after a SIGKILL (the cluster told), stop on a signal."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from multiprocessing.connection import Connection

import pytest
from redis.asyncio import Redis

from mediapod.banner import Serving
from mediapod.config import MediaConfig, load_config
from mediapod.protocol import node_pb2, relay_pb2
from mediapod.routing import registry
from mediapod.workers.gone import WorkerObituary
from mediapod.workers.metrics_proxy import MetricsProxy
from mediapod.workers.supervisor import Supervisor, WorkerFailed
from tests.support.peers import eventually


def idle_worker(config: MediaConfig, report: Connection) -> None:
    """A worker that serves nothing: reports ports, then waits for a signal (SIGTERM and SIGINT end it)."""
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    report.send(Serving(http_port=1, grpc_port=2, udp_port=3, metrics_port=4))
    while True:
        time.sleep(1)


def failing_worker(config: MediaConfig, report: Connection) -> None:
    """A worker that cannot start (say, its UDP port is taken)."""
    raise SystemExit(1)


def _pod() -> MediaConfig:
    return load_config(
        ["--dev", "--node-id", "pod", "--redis-address", "127.0.0.1:1", "--workers", "2",
         "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0"],
        env={},
    )


async def test_a_killed_worker_is_reported_gone_then_restarted_and_sigterm_stops_them_all(redis: Redis) -> None:
    table = registry.Registry(redis)
    await table.put_node(node_pb2.Node(id="pod-w1", pod="pod", worker=1))
    await table.put_node(node_pb2.Node(id="elsewhere"))
    await table.claim_room("room", "pod-w1")
    pubsub = redis.pubsub()
    await pubsub.subscribe(registry.channel("elsewhere"))

    supervisor = Supervisor(_pod(), idle_worker, WorkerObituary(table, "pod", 2.0), MetricsProxy("127.0.0.1", 0))
    running = asyncio.create_task(supervisor.run())
    await eventually(lambda: len(supervisor.processes()) == 2, timeout=30)
    first = supervisor.processes()["pod-w1"]

    os.kill(first, signal.SIGKILL)
    await eventually(lambda: supervisor.processes().get("pod-w1") not in (None, first), timeout=30)
    assert await table.room_nodes() == {}
    assert list(await table.nodes()) == ["elsewhere"]
    message = None
    while message is None or message["type"] != "message":
        message = await pubsub.get_message(timeout=2)
    assert relay_pb2.RelayMessage.FromString(message["data"]).node_gone.node == "pod-w1"
    await pubsub.aclose()

    supervisor.pass_on(signal.SIGTERM)
    await asyncio.wait_for(running, 10)
    assert supervisor.processes() == {}


async def test_a_worker_that_fails_at_start_fails_the_pod_and_stops_its_siblings(redis: Redis) -> None:
    obituary = WorkerObituary(registry.Registry(redis), "pod", 2.0)
    supervisor = Supervisor(_pod(), failing_worker, obituary, MetricsProxy("127.0.0.1", 0))
    with pytest.raises(WorkerFailed, match=r"worker pod-w\d exited before serving \(exit code 1\)"):
        await asyncio.wait_for(supervisor.run(), 30)
    assert supervisor.processes() == {}
