"""The pod's one /metrics on ``metrics_port``: every worker's exposition, scraped on request and merged.

Prometheus scrapes one target per pod, as it does without workers. Workers
serve their own metrics on ephemeral loopback ports; their samples already
carry ``switchboard_node`` (the worker's node id), and samples without it
(the process collector's) get it here, so no two workers' samples share a
label set. The text format allows each family once, so families are merged:
one HELP and TYPE, then every worker's samples.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import aiohttp
from aiohttp import web

from mediapod.http.server import HttpServer
from mediapod.workers.placement import WORKER_METRICS_HOST

log = logging.getLogger(__name__)

NODE_LABEL = "switchboard_node"
SCRAPE_TIMEOUT = 3.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def label_sample(line: str, node: str) -> str:
    """One sample line with ``switchboard_node="node"`` added if it has no such label."""
    name_end = len(line)
    for i, char in enumerate(line):
        if char in "{ ":
            name_end = i
            break
    name, rest = line[:name_end], line[name_end:]
    if rest.startswith("{"):
        labels = rest[1:]
        if labels.startswith(f"{NODE_LABEL}=") or f",{NODE_LABEL}=" in labels.split("}", 1)[0]:
            return line
        separator = "" if labels.startswith("}") else ","
        return f'{name}{{{NODE_LABEL}="{node}"{separator}{labels}'
    return f'{name}{{{NODE_LABEL}="{node}"}}{rest}'


def merge_expositions(expositions: Iterable[tuple[str, str]]) -> str:
    """(node id, text exposition) pairs -> one exposition with each family's HELP and TYPE once."""
    headers: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    for node, text in expositions:
        family = ""
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    family = parts[2]
                    header = headers.setdefault(family, [])
                    samples.setdefault(family, [])
                    if not any(h.split(" ", 2)[1] == parts[1] for h in header):
                        header.append(line)
                continue
            samples.setdefault(family, []).append(label_sample(line, node))
            headers.setdefault(family, [])
    lines: list[str] = []
    for family, header in headers.items():
        lines += header
        lines += samples[family]
    return "\n".join(lines) + "\n" if lines else ""


class MetricsProxy:
    """Serves the merged /metrics of the workers in ``targets`` (node id -> loopback metrics port)."""

    def __init__(self, host: str, port: int) -> None:
        self._http = HttpServer(host, port, name="metrics")
        self._http.add_routes([web.get("/metrics", self._metrics)])
        self.targets: dict[str, int] = {}  # kept current by the supervisor as workers (re)start
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> int:
        """Listen; returns the bound port.

        Raises:
            PortInUse: the metrics port is taken.
        """
        port = await self._http.start()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT))
        return port

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self._http.stop()

    async def _metrics(self, request: web.Request) -> web.Response:
        targets = sorted(self.targets.items())
        texts = await asyncio.gather(*(self._scrape(port) for _, port in targets))
        merged = merge_expositions((node, text) for (node, _), text in zip(targets, texts) if text is not None)
        return web.Response(body=merged.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def _scrape(self, port: int) -> str | None:
        """One worker's exposition; None (skipped this time) if it is down or restarting."""
        assert self._session is not None
        try:
            async with self._session.get(f"http://{WORKER_METRICS_HOST}:{port}/metrics") as response:
                return await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.debug("worker metrics on port %d unavailable: %s", port, exc)
            return None
