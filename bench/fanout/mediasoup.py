"""mediasoup 3.8.4 as a bench target: bench/peers/mediasoup_server.js drives one worker for us.

mediasoup has no SDP: its WebRTC transports hand out ICE and DTLS
parameters, which become a RemoteDescription; producers and consumers are
made from the SSRCs the bench chose. A room is one producer pair on its own
transport; every subscriber is a transport with two consumers. The worker
(one process, one thread) is what forwards; the Node process beside it is
counted too, since mediasoup needs both.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any

from bench.fanout.sdp import OPUS_PT, VP8_PT, LocalTransport, RemoteDescription
from bench.fanout.target import Unavailable

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "bench" / "peers" / "mediasoup_server.js"
CACHE = Path(os.environ.get("BENCH_PEERS_CACHE", Path.home() / ".cache" / "switchboard-bench")) / "mediasoup"
WORKER = CACHE / "node_modules" / "mediasoup" / "worker" / "out" / "Release" / "mediasoup-worker"
TIMEOUT = 20.0


class MediasoupTarget:
    """mediasoup 3.8.4: one worker, one router."""

    name = "mediasoup"

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._worker_pid = 0
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._producers: dict[int, list[str]] = {}

    async def start(self, ip: str) -> None:
        node = shutil.which("node")
        if node is None or not WORKER.exists():
            raise Unavailable(f"mediasoup 3.8.4 is not built in {CACHE} (bench/peers/setup mediasoup, about 150 s)")
        self._process = await asyncio.create_subprocess_exec(
            node, str(SERVER), str(CACHE), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        self._reader = asyncio.create_task(self._read_replies())
        self._worker_pid = (await self._call("start", ip=ip))["workerPid"]

    def pids(self) -> list[int]:
        assert self._process is not None
        return [self._process.pid, self._worker_pid]

    async def _call(self, method: str, **params: Any) -> Any:
        assert self._process is not None and self._process.stdin is not None
        request_id = next(self._ids)
        reply = self._replies[request_id] = asyncio.get_running_loop().create_future()
        self._process.stdin.write(json.dumps({"id": request_id, "method": method, "params": params}).encode() + b"\n")
        await self._process.stdin.drain()
        return await asyncio.wait_for(reply, TIMEOUT)

    async def _read_replies(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        while line := await self._process.stdout.readline():
            message = json.loads(line)
            future = self._replies.pop(message["id"], None)
            if future is None or future.done():
                continue
            if "error" in message:
                future.set_exception(RuntimeError(f"mediasoup: {message['error']}"))
            else:
                future.set_result(message["result"])

    async def _transport(self, local: LocalTransport) -> tuple[str, RemoteDescription]:
        transport = await self._call("transport")
        await self._call("connect", transportId=transport["id"], fingerprint=local.fingerprint)
        candidate = next(c for c in transport["iceCandidates"] if c["protocol"] == "udp")
        fingerprint = next(f for f in transport["dtlsParameters"]["fingerprints"] if f["algorithm"] == "sha-256")
        remote = RemoteDescription(
            ufrag=transport["iceParameters"]["usernameFragment"],
            pwd=transport["iceParameters"]["password"],
            fingerprint=fingerprint["value"],
            setup="passive",  # we told it we are the client
            address=(candidate["ip"], int(candidate["port"])),
            ice_lite=True,
        )
        return transport["id"], remote

    async def publish(self, room: int, local: LocalTransport, audio_ssrc: int, video_ssrc: int) -> RemoteDescription:
        transport_id, remote = await self._transport(local)
        audio = await self._call("produce", transportId=transport_id, kind="audio", ssrc=audio_ssrc, payloadType=OPUS_PT)
        video = await self._call("produce", transportId=transport_id, kind="video", ssrc=video_ssrc, payloadType=VP8_PT)
        self._producers[room] = [audio["id"], video["id"]]
        return remote

    async def subscribe(self, room: int, local: LocalTransport) -> RemoteDescription:
        transport_id, remote = await self._transport(local)
        for producer_id in self._producers[room]:
            await self._call("consume", transportId=transport_id, producerId=producer_id)
        return remote

    async def stop(self) -> None:
        if self._process is None:
            return
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), 10)
        except TimeoutError:
            self._process.kill()
        if self._reader is not None:
            self._reader.cancel()
