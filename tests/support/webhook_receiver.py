"""A real HTTP webhook receiver on loopback: records every post, or takes posts and never answers.

The oracle is livekit-api's WebhookReceiver (LiveKit's own verifier): each
recorded post is checked with it, so a wrong signature, digest or JSON shape
fails the test, not just a wrong event name.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web
from livekit import api
from livekit.protocol.webhook import WebhookEvent

from mediapod.config import DEV_API_KEY, DEV_API_SECRET
from tests.support.redis_server import free_port


@dataclass
class WebhookReceiver:
    """Listens on ``port`` (a free one if 0) and keeps (body, Authorization header) of each post, in arrival order.

    With ``hang`` it accepts each request and never answers, as a stuck backend does.
    """

    port: int = 0
    hang: bool = False
    posts: list[tuple[str, str]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def reserve(self) -> WebhookReceiver:
        """Pick the port now and listen later (a receiver that is down until start)."""
        if not self.port:
            self.port = free_port()
        return self

    async def start(self) -> WebhookReceiver:
        self.reserve()
        app = web.Application()
        app.router.add_post("/hooks", self._take)
        # A stuck handler never returns: do not wait for it at shutdown.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def _take(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.posts.append((body, request.headers.get("Authorization", "")))
        if self.hang:
            await asyncio.Event().wait()
        return web.Response(text="ok")

    def events(self) -> list[WebhookEvent]:
        """Every post verified and parsed by livekit-api's WebhookReceiver (raises on a bad one)."""
        verifier = api.WebhookReceiver(api.TokenVerifier(DEV_API_KEY, DEV_API_SECRET))
        return [verifier.receive(body, auth) for body, auth in self.posts]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.shutdown()
            await self._runner.cleanup()
            self._runner = None
