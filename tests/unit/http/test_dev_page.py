"""The dev demo page's routes: the page once its bundle is built, a build hint before, and dev tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from mediapod import auth
from mediapod.http.dev_page import DevPage
from mediapod.http.server import HttpServer

KEY, SECRET = "devkey", "secret-with-enough-bytes-for-hs256"


@pytest.fixture
def web_dir(tmp_path: Path) -> Path:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "index.html").write_text("<title>demo</title>")
    (tmp_path / "demo" / "demo.js").write_text("'use strict';")
    return tmp_path


@pytest.fixture
async def base_url(web_dir: Path) -> AsyncIterator[str]:
    server = HttpServer("127.0.0.1", 0)
    server.add_routes(DevPage(KEY, SECRET, web_dir).routes())
    port = await server.start()
    yield f"http://127.0.0.1:{port}"
    await server.stop()


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, response.content_type, await response.text()


async def test_without_the_bundle_the_page_says_how_to_build_it(base_url: str) -> None:
    status, _, text = await get(base_url + "/")
    assert status == 503 and "npm ci && npm run build" in text, (status, text)
    status, _, text = await get(base_url + "/livekit-client.js")
    assert status == 404 and "npm ci" in text


async def test_once_built_the_page_and_the_bundle_are_served(base_url: str, web_dir: Path) -> None:
    (web_dir / "dist").mkdir()
    (web_dir / "dist" / "livekit-client.js").write_text("var LivekitClient = {};")
    assert await get(base_url + "/") == (200, "text/html", "<title>demo</title>")
    assert await get(base_url + "/livekit-client.js") == (200, "text/javascript", "var LivekitClient = {};")
    assert await get(base_url + "/demo.js") == (200, "text/javascript", "'use strict';")


async def test_a_dev_token_joins_the_asked_room_as_the_asked_identity_with_default_grants(base_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.get(base_url + "/dev/token", params={"room": "r1", "identity": "ann"}) as response:
        assert response.status == 200
        token = (await response.json())["token"]
    claims = auth.TokenVerifier({KEY: SECRET}).verify(token)
    assert (claims.identity, claims.video.room, claims.video.room_join) == ("ann", "r1", True)
    assert (claims.video.can_publish, claims.video.can_subscribe, claims.video.room_admin) == (True, True, False)


@pytest.mark.parametrize("query", ["", "?room=r1", "?identity=ann", "?room=%20&identity=ann"])
async def test_a_token_request_without_room_or_identity_is_refused(base_url: str, query: str) -> None:
    status, _, text = await get(base_url + "/dev/token" + query)
    assert status == 400 and "room" in text
