"""Janus (Debian's package) as a bench target: the videoroom plugin over Janus's HTTP API.

Janus is started with its own configuration folder holding only the HTTP
transport and the videoroom plugin, its ICE gathering limited to the bench's
veth end, and otherwise Debian's defaults (one thread per handle; no
event loops configured). Janus answers a publisher's offer itself as the DTLS
client (``a=setup:active``); endpoint.py follows whichever role the SDP says.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.fanout.sdp import (
    LocalTransport,
    RemoteDescription,
    parse,
    publisher_offer,
    subscriber_answer,
)
from bench.fanout.target import Unavailable

LIBRARIES = Path("/usr/lib/x86_64-linux-gnu/janus")
PORT = 8088
TIMEOUT = 20.0
ROOM_BASE = 1000


def _configuration(folder: Path, interface_ip: str) -> None:
    for kind, keep in (("plugins", "libjanus_videoroom.so"), ("transports", "libjanus_http.so")):
        (folder / kind).mkdir()
        (folder / kind / keep).symlink_to(LIBRARIES / kind / keep)
    (folder / "janus.jcfg").write_text(
        "general: {\n"
        f'  configs_folder = "{folder}"\n  plugins_folder = "{folder}/plugins"\n'
        f'  transports_folder = "{folder}/transports"\n  debug_level = 2\n  session_timeout = 0\n'
        "}\n"
        'media: { rtp_port_range = "20000-40000" }\n'
        f'nat: {{ ice_enforce_list = "{interface_ip}" }}\n'
    )
    (folder / "janus.transport.http.jcfg").write_text(
        f'general: {{ json = "plain", base_path = "/janus", http = true, port = {PORT}, ip = "{interface_ip}" }}\n'
        "admin: { admin_http = false }\n"
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: { }\n")


def _launch(executable: str, folder: Path) -> subprocess.Popen[bytes]:
    with open(folder / "janus.log", "wb") as log:
        return subprocess.Popen([executable, "-F", str(folder), "-C", str(folder / "janus.jcfg")], stdout=log, stderr=log)


class JanusTarget:
    """Janus 1.1 from Debian, one process (many threads), videoroom rooms created over HTTP."""

    name = "janus"

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="fanout-janus-")
        self._process: subprocess.Popen[bytes] | None = None
        self._url = ""
        self._session = 0
        self._transactions = itertools.count(1)
        self._events: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._publishers: dict[int, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._polling = threading.Event()

    async def start(self, ip: str) -> None:
        executable = shutil.which("janus")
        if executable is None or not (LIBRARIES / "plugins" / "libjanus_videoroom.so").exists():
            raise Unavailable("Janus is not installed (bench/peers/setup janus, or apt-get install janus)")
        folder = Path(self._folder.name)
        _configuration(folder, ip)
        self._process = await asyncio.to_thread(_launch, executable, folder)
        self._url = f"http://{ip}:{PORT}/janus"
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                created = await self._post(self._url, {"janus": "create"})
                break
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError(f"Janus did not start; see {folder / 'janus.log'}:\n{(folder / 'janus.log').read_text()[-2000:]}")
                await asyncio.sleep(0.1)
        self._session = created["data"]["id"]
        self._loop = asyncio.get_running_loop()
        self._polling.set()
        threading.Thread(target=self._poll_events, name="janus-events", daemon=True).start()

    def pids(self) -> list[int]:
        assert self._process is not None
        return [self._process.pid]

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {"transaction": str(next(self._transactions)), **body}
        request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})

        def send() -> dict[str, Any]:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return json.loads(response.read())  # type: ignore[no-any-return]

        reply = await asyncio.to_thread(send)
        if reply.get("janus") == "error":
            raise RuntimeError(f"Janus refused {body}: {reply['error']}")
        return reply

    def _poll_events(self) -> None:
        """Janus's long poll: asynchronous plugin events, handed to whoever awaits their transaction."""
        while self._polling.is_set():
            try:
                with urllib.request.urlopen(f"{self._url}/{self._session}?maxev=50", timeout=40) as response:
                    events = json.loads(response.read())
            except OSError:
                continue
            for event in events if isinstance(events, list) else [events]:
                future = self._events.pop(str(event.get("transaction")), None)
                if future is not None and event.get("janus") == "event" and self._loop is not None:
                    self._loop.call_soon_threadsafe(future.set_result, event)

    async def _attach(self) -> int:
        reply = await self._post(f"{self._url}/{self._session}", {"janus": "attach", "plugin": "janus.plugin.videoroom"})
        return int(reply["data"]["id"])

    async def _message(self, handle: int, body: dict[str, Any], jsep: dict[str, str] | None = None) -> dict[str, Any]:
        """A plugin request whose answer comes as an event (with its JSEP) on the long poll."""
        transaction = str(next(self._transactions))
        assert self._loop is not None
        future = self._events[transaction] = self._loop.create_future()
        message: dict[str, Any] = {"janus": "message", "transaction": transaction, "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        request = urllib.request.Request(f"{self._url}/{self._session}/{handle}", json.dumps(message).encode())
        await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=TIMEOUT).read())
        event = await asyncio.wait_for(future, TIMEOUT)
        data = event["plugindata"]["data"]
        if "error" in data:
            raise RuntimeError(f"videoroom refused {body}: {data['error']}")
        return event

    async def publish(self, room: int, local: LocalTransport, audio_ssrc: int, video_ssrc: int) -> RemoteDescription:
        handle = await self._attach()
        created = await self._post(f"{self._url}/{self._session}/{handle}", {"janus": "message", "body": {
            "request": "create", "room": ROOM_BASE + room, "publishers": 1, "audiocodec": "opus", "videocodec": "vp8",
            "bitrate": 0, "fir_freq": 0, "notify_joining": False}})
        assert created["plugindata"]["data"].get("videoroom") == "created", created
        offer = publisher_offer(local, audio_ssrc, video_ssrc, f"room{room}", "audio", "video")
        event = await self._message(handle, {"request": "joinandconfigure", "ptype": "publisher", "room": ROOM_BASE + room,
                                             "audio": True, "video": True}, {"type": "offer", "sdp": offer})
        self._publishers[room] = int(event["plugindata"]["data"]["id"])
        return parse(event["jsep"]["sdp"])

    async def subscribe(self, room: int, local: LocalTransport) -> RemoteDescription:
        handle = await self._attach()
        event = await self._message(handle, {"request": "join", "ptype": "subscriber", "room": ROOM_BASE + room,
                                             "streams": [{"feed": self._publishers[room]}]})
        offer = event["jsep"]["sdp"]
        await self._message(handle, {"request": "start"}, {"type": "answer", "sdp": subscriber_answer(offer, local)})
        return parse(offer)

    async def stop(self) -> None:
        self._polling.clear()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                await asyncio.to_thread(self._process.wait, 10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._folder.cleanup()
