"""Our media pod as a bench target: a `switchboard-media --dev` process, signaled over its gRPC Signal stream.

Congestion control is off: the generator's subscribers send no TWCC
feedback, and without it the estimator would hold video back, which is not
what is being measured; off, every subscriber gets every packet, as Janus
and mediasoup (no feedback negotiated) forward them.

With ``workers`` > 1 the pod is a supervisor and that many worker
processes (mediapod/workers/) on a redis-server of the bench's own; the
selector places each new room on the worker with the fewest, and the bench
waits for the routing table to count a room before it opens the next, so
the rooms alternate between workers (a heartbeat later, not by chance).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from redis.asyncio import Redis

from bench.fanout.sdp import (
    LocalTransport,
    RemoteDescription,
    parse,
    publisher_offer,
    subscriber_answer,
)
from mediapod.protocol import models_pb2, node_pb2, signal_pb2
from mediapod.routing import registry
from tests.support.mediapod_process import MediaPodProcess
from tests.support.raw_signal import RawSignalStream
from tests.support.redis_server import RedisServer
from tests.support.routing_table import registered_nodes

TIMEOUT = 20.0
# Workers refresh their rooms in the routing table this often; the selector
# reads the table, so a short one lets the bench place rooms quickly.
HEARTBEAT = 0.25


class PodTarget:
    """Switchboard's media pod: one process, or (workers > 1) a supervisor and its workers on a Redis of our own."""

    name = "switchboard"

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._pod: MediaPodProcess | None = None
        self._log_dir = tempfile.TemporaryDirectory(prefix="fanout-pod-")
        self._redis_server: RedisServer | None = None
        self._redis: Redis | None = None
        self._streams: list[RawSignalStream] = []
        self._readers: list[asyncio.Task[None]] = []
        self._rooms: set[int] = set()

    async def start(self, ip: str) -> None:
        env = {
            "SWITCHBOARD_RTC__BIND_IP": ip,
            "SWITCHBOARD_RTC__ADVERTISED_IP": ip,
            "SWITCHBOARD_RTC__CONGESTION_CONTROL": "false",
        }
        args: list[str] = []
        if self.workers > 1:
            self._redis_server = await asyncio.to_thread(RedisServer(self._log_dir.name).start)
            self._redis = Redis.from_url(self._redis_server.url)
            env |= {
                "SWITCHBOARD_REDIS__ADDRESS": self._redis_server.address,
                "SWITCHBOARD_ROUTING__HEARTBEAT_INTERVAL": str(HEARTBEAT),
                "SWITCHBOARD_ROUTING__SORT_BY": "rooms",
            }
            args = ["--workers", str(self.workers)]
        self._pod = await asyncio.to_thread(MediaPodProcess(node_id="fanout", env=env, args=args).start, self._log_dir.name)
        if self._redis is not None:
            await self._wait_for_table(lambda nodes: sum(n.state == node_pb2.SERVING for n in nodes) == self.workers,
                                       f"{self.workers} workers serving")

    def pids(self) -> list[int]:
        """The pod's process and, with workers, its children (the workers; a restarted one under its new pid)."""
        assert self._pod is not None and self._pod.process is not None
        pid = self._pod.process.pid
        if self.workers == 1:
            return [pid]
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [pid, *map(int, children)]

    async def rooms_per_worker(self) -> dict[str, int]:
        """Worker node id -> rooms the routing table places on it (empty for one process)."""
        if self._redis is None:
            return {}
        hosts = [value.decode() for value in (await self._redis.hgetall(registry.ROOM_NODE_MAP)).values()]
        return {node: hosts.count(node) for node in sorted(await registered_nodes(self._redis))}

    async def _wait_for_table(self, ready: Callable[[list[node_pb2.Node]], bool], what: str) -> None:
        assert self._redis is not None
        deadline = time.monotonic() + TIMEOUT
        while not ready(list((await registered_nodes(self._redis)).values())):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the routing table did not show {what} within {TIMEOUT:.0f} s")
            await asyncio.sleep(HEARTBEAT / 5)

    async def _join(self, room: int, identity: str) -> RawSignalStream:
        assert self._pod is not None
        stream = RawSignalStream(self._pod.grpc_target)
        self._streams.append(stream)
        await asyncio.wait_for(stream.join(self._pod.token(f"fanout-{room}", identity)), TIMEOUT)
        return stream

    async def publish(self, room: int, local: LocalTransport, audio_ssrc: int, video_ssrc: int) -> RemoteDescription:
        stream = await self._join(room, "publisher")
        for cid, kind in (("audio", models_pb2.AUDIO), ("video", models_pb2.VIDEO)):
            await stream.write(signal_pb2.SignalRequest(add_track=signal_pb2.AddTrackRequest(cid=cid, name=cid, type=kind)))
            await _read_until(stream, "track_published")
        offer = publisher_offer(local, audio_ssrc, video_ssrc, f"room{room}", "audio", "video")
        await stream.write(signal_pb2.SignalRequest(offer=signal_pb2.SessionDescription(type="offer", sdp=offer)))
        answer = await _read_until(stream, "answer")
        self._readers.append(asyncio.create_task(_answer_offers(stream, local)))
        if self._redis is not None:
            # The selector counts rooms from the workers' heartbeats: the next room is placed once this one counts.
            self._rooms.add(room)
            opened = len(self._rooms)
            await self._wait_for_table(lambda nodes: sum(n.stats.num_rooms for n in nodes) >= opened, f"{opened} rooms")
        return parse(answer.answer.sdp)

    async def subscribe(self, room: int, local: LocalTransport) -> RemoteDescription:
        stream = await self._join(room, f"sub-{len(self._streams)}")
        # Auto-subscribe: the pod offers both tracks as soon as we are in.
        while True:
            offer = await _read_until(stream, "offer")
            if offer.offer.sdp.count("a=ssrc:") and offer.offer.sdp.count("m=audio") and offer.offer.sdp.count("m=video"):
                break
            await _answer(stream, offer.offer.sdp, local)
        await _answer(stream, offer.offer.sdp, local)
        self._readers.append(asyncio.create_task(_answer_offers(stream, local)))
        return parse(offer.offer.sdp)

    async def stop(self) -> None:
        for task in self._readers:
            task.cancel()
        for stream in self._streams:
            with contextlib.suppress(Exception):
                await stream.close()
        if self._pod is not None:
            await asyncio.to_thread(self._pod.stop)
        if self._redis is not None:
            await self._redis.aclose()
        if self._redis_server is not None:
            self._redis_server.stop()
        self._log_dir.cleanup()


async def _read_until(stream: RawSignalStream, kind: str) -> signal_pb2.SignalResponse:
    async with asyncio.timeout(TIMEOUT):
        while True:
            response = await stream.call.read()
            if response is grpc.aio.EOF:
                raise ConnectionError(f"the pod ended the signal stream while we waited for {kind}")
            if response.WhichOneof("message") == kind:
                return response


async def _answer(stream: RawSignalStream, offer: str, local: LocalTransport) -> None:
    answer = subscriber_answer(offer, local)
    await stream.write(signal_pb2.SignalRequest(answer=signal_pb2.SessionDescription(type="answer", sdp=answer)))


async def _answer_offers(stream: RawSignalStream, local: LocalTransport) -> None:
    """Keep reading (participant updates would otherwise fill the pod's signal queue); answer renegotiations."""
    with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
        while (response := await stream.call.read()) is not grpc.aio.EOF:
            if response.WhichOneof("message") == "offer":
                await _answer(stream, response.offer.sdp, local)
