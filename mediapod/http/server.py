"""The pod's HTTP port (7880, where LiveKit users expect it): LiveKit signaling, Twirp, health.

aiohttp serves it: a well-kept asyncio HTTP and WebSocket server in one
library (LiveKit's own Python server SDK, livekit-api, is built on it too), so
signaling over WebSocket and Twirp's plain POSTs share one listener. Front
ends add their routes before the server starts; this module owns only the
listener and the routes every pod has (health).
"""

from __future__ import annotations

import errno
from collections.abc import Iterable

from aiohttp import web

from mediapod.ports import PortInUse

# LiveKit's clients never send a signaling frame or Twirp body this large;
# anything bigger is refused before it is read (Twirp bodies carry metadata).
MAX_REQUEST_BYTES = 1024 * 1024


class HttpServer:
    """One aiohttp application on the pod's HTTP port."""

    def __init__(self, host: str, port: int, reuse_port: bool = False, name: str = "HTTP") -> None:
        """reuse_port: the port is shared with the pod's sibling worker processes (SO_REUSEPORT); name: the port's, in errors."""
        self._host = host
        self._port = port
        self._reuse_port = reuse_port
        self._name = name
        self.app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        self.app.router.add_get("/healthz", _healthy)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def add_routes(self, routes: Iterable[web.AbstractRouteDef]) -> None:
        self.app.add_routes(list(routes))

    async def start(self) -> int:
        """Listen; returns the bound port (the configured one, or an ephemeral one for port 0).

        Raises:
            PortInUse: another process holds the port.
        """
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_port=self._reuse_port or None)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(exc.errno, f"{self._name} port {self._host}:{self._port} is already in use") from None
            raise
        server = site._server  # aiohttp exposes the bound sockets only here
        assert server is not None and server.sockets
        self.port = int(server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def _healthy(request: web.Request) -> web.Response:
    return web.Response(text="OK")
