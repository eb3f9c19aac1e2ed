"""Posting webhook events: a bounded queue per URL, drained in order by one task, retried with backoff.

The room only enqueues (``post`` never waits), so a receiver that is slow,
down or never answers costs media and signaling nothing: its queue fills,
and what cannot wait is dropped and counted. Each URL has its own queue and
task, so one bad receiver does not delay another. Events are sent one at a
time per URL, so a receiver sees them in the order they happened (LiveKit's
order), even across retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiohttp
from google.protobuf.json_format import MessageToJson
from livekit.protocol.webhook import WebhookEvent

from mediapod.config import WebhookConfig
from mediapod.metrics import MediaCounters
from mediapod.webhook.signature import authorization

log = logging.getLogger(__name__)

# Posts one body with its headers to a URL; returns the HTTP status, raises OSError/TimeoutError/aiohttp errors on failure.
Poster = Callable[[str, bytes, dict[str, str]], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class _Queued:
    body: bytes
    queued_at: float  # loop time


class AiohttpPoster:
    """Posts with one aiohttp session, each request bounded by ``timeout`` seconds."""

    def __init__(self, timeout: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.post(url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class _UrlQueue:
    """One receiver's queue and the task that drains it."""

    def __init__(self, url: str, config: WebhookConfig, sign: Callable[[bytes], str], post: Poster, counters: MediaCounters) -> None:
        self.url = url
        self._config = config
        self._sign = sign
        self._post = post
        self._counters = counters
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue(config.queue_size)
        self._overflowing = False
        self._task = asyncio.get_running_loop().create_task(self._drain(), name=f"webhook {url}")

    def put(self, body: bytes) -> None:
        try:
            self._queue.put_nowait(_Queued(body, asyncio.get_running_loop().time()))
            self._overflowing = False
        except asyncio.QueueFull:
            self._counters.webhooks["dropped"] += 1
            if not self._overflowing:  # once per overflow, not once per event
                log.warning("webhook queue for %s is full (%d events); dropping events", self.url, self._config.queue_size)
            self._overflowing = True

    async def _drain(self) -> None:
        while True:
            item = await self._queue.get()
            await self._deliver(item)

    async def _deliver(self, item: _Queued) -> None:
        """Post until it is taken (2xx) or the retry window closes; back off between tries."""
        loop = asyncio.get_running_loop()
        backoff = self._config.initial_backoff
        deadline = item.queued_at + self._config.retry_window
        while True:
            headers = {"Authorization": self._sign(item.body), "Content-Type": "application/webhook+json"}
            try:
                status = await asyncio.wait_for(self._post(self.url, item.body, headers), self._config.request_timeout)
                if 200 <= status < 300:
                    self._counters.webhooks["sent"] += 1
                    return
                why = f"HTTP {status}"
            except (OSError, asyncio.TimeoutError, aiohttp.ClientError) as exc:
                why = f"{type(exc).__name__}: {exc}"
            if loop.time() + backoff > deadline:
                self._counters.webhooks["dropped"] += 1
                log.warning("webhook to %s dropped after %.0f s of retries (%s)", self.url, self._config.retry_window, why)
                return
            self._counters.webhooks["retried"] += 1
            log.debug("webhook to %s failed (%s); retrying in %.1f s", self.url, why, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._config.max_backoff)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


class WebhookNotifier:
    """Serialises each event once (LiveKit's protobuf JSON) and queues it for every configured URL."""

    def __init__(
        self, config: WebhookConfig, api_key: str, api_secret: str, counters: MediaCounters, post: Poster | None = None
    ) -> None:
        self._http = AiohttpPoster(config.request_timeout) if post is None else None
        poster: Poster = post or self._http  # type: ignore[assignment]
        sign = lambda body: authorization(body, api_key, api_secret)  # noqa: E731
        self._queues: Sequence[_UrlQueue] = [_UrlQueue(url, config, sign, poster, counters) for url in config.urls]

    def post(self, event: WebhookEvent) -> None:
        """Queue the event for every URL; never waits."""
        body = MessageToJson(event, indent=None).encode()
        for queue in self._queues:
            queue.put(body)

    async def close(self) -> None:
        for queue in self._queues:
            await queue.close()
        if self._http is not None:
            await self._http.close()
