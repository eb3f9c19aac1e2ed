"""Our media pod as a bench target: a `switchboard-media --dev` process, signaled over its gRPC Signal stream.

Congestion control is off: the generator's subscribers send no TWCC
feedback, and without it the estimator would hold video back, which is not
what is being measured; off, every subscriber gets every packet, as Janus
and mediasoup (no feedback negotiated) forward them.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile

import grpc

from bench.fanout.sdp import (
    LocalTransport,
    RemoteDescription,
    parse,
    publisher_offer,
    subscriber_answer,
)
from mediapod.protocol import models_pb2, signal_pb2
from tests.support.mediapod_process import MediaPodProcess
from tests.support.raw_signal import RawSignalStream

TIMEOUT = 20.0


class PodTarget:
    """Switchboard's media pod, one process."""

    name = "switchboard"

    def __init__(self) -> None:
        self._pod: MediaPodProcess | None = None
        self._log_dir = tempfile.TemporaryDirectory(prefix="fanout-pod-")
        self._streams: list[RawSignalStream] = []
        self._readers: list[asyncio.Task[None]] = []

    async def start(self, ip: str) -> None:
        env = {
            "SWITCHBOARD_RTC__BIND_IP": ip,
            "SWITCHBOARD_RTC__ADVERTISED_IP": ip,
            "SWITCHBOARD_RTC__CONGESTION_CONTROL": "false",
        }
        self._pod = await asyncio.to_thread(MediaPodProcess(node_id="fanout", env=env).start, self._log_dir.name)

    def pids(self) -> list[int]:
        assert self._pod is not None and self._pod.process is not None
        return [self._pod.process.pid]

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
