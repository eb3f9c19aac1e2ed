"""The dev-mode demo page at ``/`` and the token endpoint it joins with, ``/dev/token``.

Only a ``--dev`` pod adds these routes: a page that mints a token for any
room and identity would let anyone in, so a production pod has neither
(``/`` and ``/dev/token`` are 404 there). The page's one dependency,
``livekit-client``, comes from npm through ``web/package-lock.json`` and is
bundled by ``npm run build`` into ``web/dist/``; the bundle is never
committed. It is looked up when a request comes, so a pod started before the
build serves it once it exists, and until then ``/`` says how to build it
rather than failing to start.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from aiohttp import web

from mediapod import auth

# The checkout's web/ folder: mediapod/http/dev_page.py -> the repository root.
WEB_DIR = Path(__file__).resolve().parents[2] / "web"
BUNDLE = "livekit-client.js"
TOKEN_TTL = timedelta(hours=6)
# The page's own files (committed, served as they are) and the built bundle.
_PAGE_FILES = {"demo.js": "text/javascript", "demo.css": "text/css"}
_BUILD_HINT = (
    "The demo page needs livekit-client, bundled from npm:\n\n"
    "    cd web && npm ci && npm run build\n\n"
    "(scripts/dev does this when web/node_modules is missing). Reload this page afterwards."
)


class DevPage:
    """Serves the demo page, the livekit-client bundle, and dev tokens signed with the pod's key."""

    def __init__(self, api_key: str, api_secret: str, web_dir: Path = WEB_DIR) -> None:
        self._api_key = api_key
        self._api_secret = api_secret
        self._page_dir = web_dir / "demo"
        self._dist_dir = web_dir / "dist"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self._index),
            web.get("/dev/token", self._token),
            web.get(f"/{BUNDLE}", self._bundle),
            *(web.get(f"/{name}", self._page_file) for name in _PAGE_FILES),
        ]

    async def _index(self, request: web.Request) -> web.StreamResponse:
        if not (self._dist_dir / BUNDLE).is_file():
            return web.Response(status=503, text=_BUILD_HINT)
        return web.FileResponse(self._page_dir / "index.html", headers={"Cache-Control": "no-cache"})

    async def _page_file(self, request: web.Request) -> web.StreamResponse:
        name = request.path.lstrip("/")
        return web.FileResponse(self._page_dir / name, headers={"Content-Type": _PAGE_FILES[name], "Cache-Control": "no-cache"})

    async def _bundle(self, request: web.Request) -> web.StreamResponse:
        path = self._dist_dir / BUNDLE
        if not path.is_file():
            return web.Response(status=404, text=_BUILD_HINT)
        return web.FileResponse(path, headers={"Content-Type": "text/javascript", "Cache-Control": "no-cache"})

    async def _token(self, request: web.Request) -> web.Response:
        """A token for ``room`` and ``identity`` with LiveKit's default grants (join, publish, subscribe, data)."""
        room, identity = request.query.get("room", "").strip(), request.query.get("identity", "").strip()
        if not room or not identity:
            return web.Response(status=400, text="GET /dev/token?room=<room>&identity=<name>: both are required")
        grant = auth.VideoGrant(room_join=True, room=room)
        token = auth.AccessToken(self._api_key, self._api_secret).with_identity(identity).with_grant(grant).with_ttl(TOKEN_TTL)
        return web.Response(text=json.dumps({"token": token.to_jwt()}), content_type="application/json")
