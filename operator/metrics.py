"""Every Prometheus metric the operator exports, named in one place, and its /metrics + /healthz endpoint.

Labels are closed sets: the kind of object, the result of one reconcile, a
phase from the CRDs. No Room or node names (unbounded).
"""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest

from sfu_operator.scheduler import ACTIVE, CLOSED, DRAINED, DRAINING, NOT_READY, PENDING, READY, SCHEDULED

log = logging.getLogger(__name__)

ROOM_PHASES = (PENDING, SCHEDULED, ACTIVE, CLOSED)
NODE_PHASES = (READY, DRAINING, DRAINED, NOT_READY)
# What one reconcile did: the only values of the `result` label.
ROOM_RESULTS = ("scheduled", "observed", "unschedulable", "closed", "waited", "invalid", "deleted", "error")
SFUNODE_RESULTS = ("updated", "unchanged", "removed", "error")


class OperatorMetrics:
    """The operator's series on a registry of its own, plus the process's CPU and memory."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.reconciles = Counter(
            "switchboard_operator_reconciles", "Reconciles of one Room or SFUNode, by kind and result",
            ["kind", "result"], registry=self.registry,
        )
        self.scheduling_latency = Histogram(
            "switchboard_operator_scheduling_latency_seconds",
            "From the operator first finding a Room without a node to the room created on one",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300), registry=self.registry,
        )
        self.pending_rooms = Gauge("switchboard_operator_pending_rooms", "Rooms in phase Pending", registry=self.registry)
        self.rooms = Gauge("switchboard_operator_rooms", "Rooms by phase", ["phase"], registry=self.registry)
        self.nodes = Gauge("switchboard_operator_nodes", "SFUNodes by phase", ["phase"], registry=self.registry)
        self.leader = Gauge("switchboard_operator_leader", "1 while this replica holds the Lease and acts, else 0",
                            registry=self.registry)
        # Every series exists from the start (at 0), so dashboards and rate() see it before the first event.
        for result in ROOM_RESULTS:
            self.reconciles.labels("room", result)
        for result in SFUNODE_RESULTS:
            self.reconciles.labels("sfunode", result)
        self.count_phases({}, {})

    def count_phases(self, rooms: dict[str, str], nodes: dict[str, str]) -> None:
        """Set the per-phase gauges from name -> phase maps (names never reach a label)."""
        for phase in ROOM_PHASES:
            self.rooms.labels(phase).set(sum(1 for p in rooms.values() if p == phase))
        for phase in NODE_PHASES:
            self.nodes.labels(phase).set(sum(1 for p in nodes.values() if p == phase))
        self.pending_rooms.set(sum(1 for p in rooms.values() if p == PENDING))


class MetricsServer:
    """GET /metrics (Prometheus text) and GET /healthz (the process answers) on one port."""

    def __init__(self, metrics: OperatorMetrics, host: str, port: int) -> None:
        self._metrics = metrics
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/metrics", self._serve_metrics)
        app.router.add_get("/healthz", self._serve_health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]  # the bound port when 0 was asked
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _serve_health(self, request: web.Request) -> web.Response:
        return web.Response(text="OK")
