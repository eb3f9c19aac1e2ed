"""livekit-client in headless Chromium, driven with Playwright, as a test peer.

The SDK is the project's own build of it (web/dist/livekit-client.js, from
npm through web/package-lock.json by scripts/web), the one the demo page
loads. Each page is a blank document on the media pod's origin (Playwright
answers that one path; everything else, /rtc/validate included, reaches the
pod), so livekit-client's same-origin fallback from /rtc/v1 to /rtc works as
it would on a page the pod served. tests/support/livekit_page.js holds the
page-side helpers; what the browser measured (getStats, element sizes) is
the oracle.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright

from mediapod.http.dev_page import BUNDLE, WEB_DIR
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS

BUNDLE_PATH = WEB_DIR / "dist" / BUNDLE
PAGE_HELPERS = Path(__file__).with_name("livekit_page.js")
# Received audio plays without a user gesture.
_ARGS = [*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]


class LiveKitPage:
    """One page (its own browser context: its own camera, cookies and connections) running livekit-client."""

    def __init__(self, page: Page, context: BrowserContext) -> None:
        self.page = page
        self.context = context
        self.console: list[str] = []
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))

    async def join(self, ws_url: str, token: str, *, adaptive_stream: bool = False) -> dict[str, Any]:
        options = {"adaptiveStream": adaptive_stream, "dynacast": False}
        return await asyncio.wait_for(self.page.evaluate("([u, t, o]) => lk.join(u, t, o)", [ws_url, token, options]), 20)

    async def publish(self, width: int = 640, height: int = 360) -> list[str]:
        """Publish the fake microphone and camera (simulcast); returns the camera sender's rids."""
        resolution = {"width": width, "height": height}
        return await asyncio.wait_for(self.page.evaluate("(r) => lk.publish(r)", resolution), 20)

    async def received_kinds(self) -> list[str]:
        """The tracks this page plays, as "identity/kind"."""
        return await self.page.evaluate("() => lk.receivedKinds()")

    async def inbound(self, identity: str, kind: str) -> dict[str, float] | None:
        """The inbound-rtp stats of identity's track of kind, plus the element's videoWidth; None before it arrives."""
        return await self.page.evaluate("([i, k]) => lk.inbound(i, k)", [identity, kind])

    async def wait_for_inbound(self, identity: str, kind: str, key: str, minimum: float, within: float) -> dict[str, float]:
        """Poll the stats until stats[key] >= minimum or within seconds pass; the last stats seen (empty if none)."""
        deadline, stats = time.monotonic() + within, None
        while time.monotonic() < deadline:
            stats = await self.inbound(identity, kind)
            if stats is not None and stats[key] >= minimum:
                break
            await asyncio.sleep(0.2)
        return stats or {}

    async def resize(self, identity: str, width: int, height: int) -> None:
        await self.page.evaluate("([i, w, h]) => lk.resize(i, w, h)", [identity, width, height])

    async def publish_data(self, text: str, *, reliable: bool, topic: str, destinations: list[str]) -> None:
        options = {"reliable": reliable, "topic": topic, "destinationIdentities": destinations}
        await asyncio.wait_for(self.page.evaluate("([t, o]) => lk.publishData(t, o)", [text, options]), 5)

    async def inbox(self) -> list[dict[str, Any]]:
        """Every data packet received so far: payload (text), sender, reliable, topic."""
        return await self.page.evaluate("() => lk.inbox")

    async def perform_rpc(self, destination: str, method: str, payload: str) -> str:
        return await asyncio.wait_for(self.page.evaluate("([d, m, p]) => lk.performRpc(d, m, p)", [destination, method, payload]), 10)

    async def leave(self) -> None:
        await asyncio.wait_for(self.page.evaluate("() => lk.leave()"), 5)


class LiveKitBrowser:
    """One headless Chromium; each page() is a separate browser context on the pod's origin."""

    def __init__(self, http_url: str) -> None:
        if not BUNDLE_PATH.is_file():
            raise FileNotFoundError(f"{BUNDLE_PATH} is missing: run scripts/web (npm ci and the bundle build)")
        self._http_url = http_url
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None

    async def __aenter__(self) -> LiveKitBrowser:
        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=_ARGS)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._browser is not None:
            await self._browser.close()
        if self._playwright is not None:
            await self._playwright.stop()

    async def page(self, viewport: tuple[int, int] = (1400, 900)) -> LiveKitPage:
        assert self._browser is not None
        context = await self._browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        page = await context.new_page()
        # A document the pod itself served, so Chromium files the page under the loopback address space
        # (Local Network Access blocks a page Playwright made up from opening sockets to 127.0.0.1).
        await page.goto(self._http_url + "/healthz")
        await page.set_content("<!doctype html><body></body>")
        await page.add_script_tag(path=str(BUNDLE_PATH))
        await page.add_script_tag(path=str(PAGE_HELPERS))
        return LiveKitPage(page, context)

    async def open(self, url: str, viewport: tuple[int, int] = (1400, 900)) -> Page:
        """A plain page at url (the demo page), in a context of its own."""
        assert self._browser is not None
        context = await self._browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        page = await context.new_page()
        await page.goto(url)
        return page
