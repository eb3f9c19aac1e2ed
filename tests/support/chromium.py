"""Headless Chromium as a real browser publisher, driven with Playwright.

The page is a blank localhost document (a secure context, so getUserMedia
exists) with Chromium's fake camera. Its RTCPeerConnection is the publisher
connection of a Switchboard session whose signaling runs in Python: the page
makes the offer, the test's client session carries it to the media pod and
hands the answer back. Everything between the browser and the pod (ICE,
DTLS-SRTP, RTP) is Chromium's own WebRTC stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from playwright.async_api import Browser, Page, Playwright, async_playwright

from mediapod import client
from mediapod.protocol import models_pb2, signal_pb2

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]

# Offer a camera track with the given simulcast encodings and wait for ICE
# gathering, since the pod's signaling has no trickle toward it.
_OFFER = """
async ({width, height, encodings}) => {
  const stream = await navigator.mediaDevices.getUserMedia({video: {width, height}, audio: false});
  const pc = new RTCPeerConnection({iceServers: []});
  window.publisher = pc;
  const track = stream.getVideoTracks()[0];
  pc.addTransceiver(track, {direction: 'sendonly', sendEncodings: encodings});
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise(done => pc.addEventListener('icegatheringstatechange',
      () => pc.iceGatheringState === 'complete' && done()));
  }
  return {sdp: pc.localDescription.sdp, trackId: track.id};
}
"""


@dataclass(frozen=True)
class Encoding:
    """One simulcast encoding as RTCRtpEncodingParameters has it, plus its size for the announcement."""

    rid: str
    scale_down_by: float
    max_bitrate: int
    width: int
    height: int


class ChromiumPublisher:
    """A Chromium page publishing its fake camera, in simulcast, into a session."""

    def __init__(self) -> None:
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._page: Page | None = None

    async def launch(self, *extra_args: str) -> ChromiumPublisher:
        """Start Chromium (extra_args after ours, e.g. --use-file-for-fake-video-capture) on a blank localhost page."""
        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra_args]
        )
        self._page = await self._browser.new_page()
        await self._page.route(
            "http://localhost/**", lambda route: route.fulfill(body="<html><body></body></html>", content_type="text/html")
        )
        await self._page.goto("http://localhost/")
        return self

    async def publish(self, session: client.Session, width: int, height: int, encodings: list[Encoding]) -> str:
        """Announce and negotiate the camera track; returns its track sid once the answer is applied."""
        assert self._page is not None
        offer = await self._page.evaluate(
            _OFFER,
            {
                "width": width,
                "height": height,
                "encodings": [
                    {"rid": e.rid, "scaleResolutionDownBy": e.scale_down_by, "maxBitrate": e.max_bitrate} for e in encodings
                ],
            },
        )
        published = await session.request(
            signal_pb2.SignalRequest(
                add_track=signal_pb2.AddTrackRequest(
                    cid=offer["trackId"],
                    name="chromium-camera",
                    type=models_pb2.VIDEO,
                    source=models_pb2.CAMERA,
                    layers=[models_pb2.SimulcastLayer(rid=e.rid, width=e.width, height=e.height) for e in encodings],
                )
            ),
            expect="track_published",
        )
        answer = await session.request(
            signal_pb2.SignalRequest(offer=signal_pb2.SessionDescription(type="offer", sdp=offer["sdp"])),
            expect="answer",
        )
        await self._page.evaluate(
            "async (sdp) => { await window.publisher.setRemoteDescription({type: 'answer', sdp}); }", answer.answer.sdp
        )
        return published.track_published.track.sid

    async def connection_state(self) -> str:
        assert self._page is not None
        return str(await self._page.evaluate("() => window.publisher.connectionState"))

    async def close(self) -> None:
        if self._browser is not None:
            await self._browser.close()
        if self._playwright is not None:
            await self._playwright.stop()
