"""One media process wired together: the media node, signaling front ends, routing, metrics, webhooks and agents.

``switchboard-media`` (main.py) runs it once, or once per worker process
(workers/); it is its own module so a supervisor of workers, which serves
no media, does not import what serving needs.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import grpc
from livekit.protocol import models as lk_models
from prometheus_client import CollectorRegistry, ProcessCollector

from mediapod import auth
from mediapod.banner import Serving, print_banner
from mediapod.config import MediaConfig
from mediapod.http.dev_page import DevPage
from mediapod.http.server import HttpServer
from mediapod.metrics import (
    MediaCollector,
    MediaCounters,
    computed_on_loop,
    serve_metrics,
)
from mediapod.ports import PortInUse, claim_tcp_port
from mediapod.protocol import room_service_pb2_grpc
from mediapod.routing.local import LocalRouter
from mediapod.rtc.events import RoomListener, RoomListeners
from mediapod.rtc.node import MediaNode
from mediapod.signal.gateway import SignalGateway
from mediapod.signal.grpc_service import (
    RoomServicer,
    SignalServicer,
    add_signal_service,
)
from mediapod.signal.livekit.agent_bus import AgentBus
from mediapod.signal.livekit.agent_dispatch import AgentDispatcher
from mediapod.signal.livekit.agent_routes import AgentWorkerService
from mediapod.signal.livekit.data_codec import FORMAT as LIVEKIT_DATA_FORMAT
from mediapod.signal.livekit.data_codec import LiveKitDataCodec
from mediapod.signal.livekit.routes import LiveKitSignaling
from mediapod.signal.livekit.translate import ServerSettings
from mediapod.signal.livekit.twirp import TwirpRoomService
from mediapod.signal.livekit.twirp_agents import TwirpAgentDispatch
from mediapod.signal.room_admin import RoomAdmin
from mediapod.signal.session import SERVER_VERSION, SessionHost
from mediapod.webhook.events import WebhookEvents
from mediapod.webhook.notifier import WebhookNotifier

if TYPE_CHECKING:
    from mediapod.cluster import Cluster

log = logging.getLogger("mediapod")

# Time given to participants to receive their leave before the process exits.
SHUTDOWN_GRACE = 2.0


async def serve(config: MediaConfig, on_ready: Callable[[Serving], None] | None = None) -> None:
    """Run the media pod (or one worker of it, see workers/) until cancelled or signalled.

    on_ready gets the bound ports once everything listens; by default the
    banner tells the user what to connect to.

    Raises:
        PortInUse: one of the configured ports is taken (the message names it).
    """
    counters = MediaCounters()
    # In a cluster, jobs no worker here takes go to other pods' workers, and ours take theirs.
    agent_bus = AgentBus() if config.redis.address else None
    agents = AgentDispatcher(config.keys, remote=agent_bus)
    listeners: list[RoomListener] = [agents]
    webhooks = _webhook_notifier(config, counters)
    if webhooks is not None:
        listeners.append(WebhookEvents(webhooks.post))
    try:
        node = await MediaNode.start(config, RoomListeners(listeners), counters)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(exc.errno, f"UDP port {config.rtc.bind_ip}:{config.rtc.udp_port} is already in use") from None
        raise
    verifier = auth.TokenVerifier(config.keys)
    sessions = SessionHost(node, data_codecs={LIVEKIT_DATA_FORMAT: LiveKitDataCodec()})
    local_rooms = RoomAdmin(node)
    # With a Redis address the pod is one node of a cluster; without, it hosts every room itself
    # (and never imports Redis's client: 4 MiB of an idle --dev pod).
    cluster: Cluster | None = None
    if agent_bus is not None:
        from mediapod.cluster import Cluster

        cluster = await Cluster.start(config, node, verifier, sessions, local_rooms, agent_bus, agents)
    router = cluster.router if cluster else LocalRouter(config.node_id)
    gateway = SignalGateway(sessions, router, verifier, forwarder=cluster.relay if cluster else None)
    if not config.dev:
        for key in auth.weak_secrets(config.keys):
            log.warning("API key %r has a secret shorter than %d bytes; tokens signed with it are easy to forge", key, auth.MIN_SECRET_BYTES)

    registry = CollectorRegistry()
    gauges = computed_on_loop(asyncio.get_running_loop(), node.gauges)
    registry.register(MediaCollector(config.node_id, node.context.counters, gauges))
    ProcessCollector(registry=registry)  # process_cpu_seconds_total etc.: the node overview's CPU panel
    try:
        metrics_port = serve_metrics(registry, config.metrics_host, config.metrics_port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(exc.errno, f"metrics port {config.metrics_host}:{config.metrics_port} is already in use") from None
        raise

    # Worker processes of one pod share the HTTP and gRPC ports (the supervisor checked they were free).
    shared = config.worker.shares_ports
    http = HttpServer(config.http_host, config.http_port, reuse_port=shared)
    livekit = LiveKitSignaling(gateway, verifier, node.context.counters, ServerSettings(SERVER_VERSION, region=config.region))
    http.add_routes(livekit.routes())
    server_info = lk_models.ServerInfo(version=SERVER_VERSION, node_id=config.node_id, region=config.region)
    http.add_routes(AgentWorkerService(agents, verifier, node.context.counters, server_info).routes())
    http.add_routes(TwirpAgentDispatch(agents, verifier).routes())  # before the RoomService's catch-all /twirp/ route
    http.add_routes(TwirpRoomService(cluster.rooms if cluster else local_rooms, verifier, node.context.counters).routes())
    if config.dev:  # the demo page mints tokens for anyone: never outside --dev
        http.add_routes(DevPage(*next(iter(config.keys.items()))).routes())
    http_port = await http.start()

    # SO_REUSEPORT only between one pod's workers: with it (gRPC's default on
    # Linux) a second pod on the same port would start and share the first one's connections.
    server = grpc.aio.server(options=[("grpc.so_reuseport", int(shared))])
    add_signal_service(SignalServicer(gateway).Connect, server)
    room_servicer = RoomServicer(cluster.rooms if cluster else local_rooms, verifier)
    room_service_pb2_grpc.add_RoomServiceServicer_to_server(room_servicer, server)
    try:
        if not shared:  # so gRPC's core never logs its own multi-line bind failure
            claim_tcp_port("gRPC", config.grpc_host, config.grpc_port)
        grpc_port = server.add_insecure_port(f"{config.grpc_host}:{config.grpc_port}")
    except (RuntimeError, PortInUse):
        await http.stop()
        raise PortInUse(errno.EADDRINUSE, f"gRPC port {config.grpc_host}:{config.grpc_port} is already in use") from None
    await server.start()
    if cluster:
        await cluster.serving(grpc_port)

    serving = Serving(http_port, grpc_port, node.context.mux.local_address[1], metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    # In a cluster SIGTERM drains (a second one stops at once); alone it stops.
    loop.add_signal_handler(signal.SIGTERM, cluster.request_drain(stop) if cluster else stop.set)
    (on_ready or partial(print_banner, config))(serving)
    try:
        if cluster:
            await cluster.run_until_drained(stop)
        else:
            await stop.wait()
    finally:
        log.info("shutting down")
        node.close()
        await server.stop(SHUTDOWN_GRACE)
        await http.stop()
        if cluster:
            await cluster.close()
        await agents.close()
        if webhooks is not None:
            await webhooks.close()


def _webhook_notifier(config: MediaConfig, counters: MediaCounters) -> WebhookNotifier | None:
    """The notifier for ``webhook.urls``, signing with ``webhook.api_key`` (the first key if unset); None without URLs."""
    if not config.webhook.urls:
        return None
    key = config.webhook.api_key or next(iter(config.keys))
    return WebhookNotifier(config.webhook, key, config.keys[key], counters)
