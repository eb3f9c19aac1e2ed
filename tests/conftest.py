"""Fixtures shared by integration and acceptance tests."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator

import pytest
from livekit import api
from redis.asyncio import Redis

from mediapod.config import DEV_API_KEY, DEV_API_SECRET
from tests.support.mediapod_process import MediaPodProcess
from tests.support.redis_server import RedisServer


def pytest_configure(config: pytest.Config) -> None:
    """Let Ctrl-C reach the programs the tests start, as it does from a terminal.

    A suite started as a background job of a script (``.ci/run ... &``)
    inherits SIGINT ignored, and so would every program it starts: ``sbctl
    room join`` would then stay on the Ctrl-C the tests send it. A handler
    installed here becomes the default action in each child.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def media_pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaPodProcess]:
    """A dev media pod process with short room timeouts."""
    pod = MediaPodProcess(env={"SWITCHBOARD_ROOM__DEPARTURE_TIMEOUT": "1"})
    pod.start(str(tmp_path_factory.mktemp("mediapod")))
    yield pod
    pod.stop()


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A fresh redis-server process on a free loopback port."""
    server = RedisServer(str(tmp_path_factory.mktemp("redis"))).start()
    yield server
    server.stop()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """An asyncio client of the test's redis-server."""
    client = Redis.from_url(redis_server.url, socket_timeout=2)
    yield client
    await client.aclose()


@pytest.fixture
async def livekit_api(media_pod: MediaPodProcess) -> AsyncIterator[api.LiveKitAPI]:
    """LiveKit's own server SDK (livekit-api) pointed at the media pod, with the dev key."""
    lkapi = api.LiveKitAPI(media_pod.http_url, DEV_API_KEY, DEV_API_SECRET, failover=False)
    yield lkapi
    await lkapi.aclose()
