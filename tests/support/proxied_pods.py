"""Media pods sharing one Redis behind one address, the way LiveKit SDK clients reach pods through a Kubernetes Service.

The SDKs reconnect to the URL they were given, so a pod failing is only
survivable behind an address that outlives it: a TcpProxy whose new
connections go to a pod that is alive.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from redis.asyncio import Redis

from mediapod.routing import registry
from tests.support.mediapod_process import MediaPodProcess
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy


class ProxiedPods:
    """``switchboard-media --dev`` processes on one Redis, and a TcpProxy in front of their HTTP ports."""

    def __init__(self, redis_server: RedisServer, log_dir: Path, node_ids: list[str], env: dict[str, str]) -> None:
        self.redis_server = redis_server
        self.pods = [
            MediaPodProcess(node_id=node_id, env={"SWITCHBOARD_REDIS__ADDRESS": redis_server.address, **env})
            for node_id in node_ids
        ]
        self._log_dir = str(log_dir)
        self.proxy = TcpProxy([])
        self.url = ""

    async def __aenter__(self) -> Self:
        with ThreadPoolExecutor(len(self.pods)) as pool:
            list(pool.map(lambda pod: pod.start(self._log_dir), self.pods))
        self.proxy.backends = [self.backend(pod.node_id) for pod in self.pods]
        self.url = f"http://127.0.0.1:{await self.proxy.start()}"
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        await self.proxy.close()
        for pod in self.pods:
            pod.stop()

    def pod(self, node_id: str) -> MediaPodProcess:
        return next(pod for pod in self.pods if pod.node_id == node_id)

    def backend(self, node_id: str) -> tuple[str, int]:
        """The (host, port) of a pod's HTTP listener, as the proxy names it."""
        url = urlsplit(self.pod(node_id).http_url)
        assert url.hostname and url.port
        return url.hostname, url.port

    def node_of(self, backend: tuple[str, int]) -> str:
        return next(pod.node_id for pod in self.pods if self.backend(pod.node_id) == backend)

    async def host_of(self, room: str) -> str:
        """The node room_node_map maps room to (the pods' shared truth, read straight from Redis)."""
        async with Redis.from_url(self.redis_server.url) as redis:
            node = await redis.hget(registry.ROOM_NODE_MAP, room)
        return node.decode() if node else ""
