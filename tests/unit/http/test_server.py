"""The pod's HTTP listener: health, routes added by front ends, a busy port named in the error."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp import web

from mediapod.http.server import HttpServer, PortInUse


async def test_health_and_added_routes_are_served_on_an_ephemeral_port() -> None:
    server = HttpServer("127.0.0.1", 0)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    server.add_routes([web.get("/hello", hello)])
    port = await server.start()
    try:
        assert port > 0
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert (response.status, await response.text()) == (200, "OK")
            async with http.get(f"http://127.0.0.1:{port}/hello") as response:
                assert await response.text() == "hello"
            async with http.get(f"http://127.0.0.1:{port}/nothing-here") as response:
                assert response.status == 404
    finally:
        await server.stop()


async def test_a_busy_port_is_named_in_the_error() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(PortInUse) as refused:
            await HttpServer("127.0.0.1", port).start()
        assert refused.value.strerror == f"HTTP port 127.0.0.1:{port} is already in use"
    finally:
        holder.close()
