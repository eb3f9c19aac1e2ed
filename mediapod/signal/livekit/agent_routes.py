"""/agent on the pod's HTTP port: the WebSocket livekit-agents workers register on.

As LiveKit serves it: the upgrade carries ``Authorization: Bearer <token>``
signed with an API key, granting ``agent``; refused otherwise (401, no
socket). Frames are binary protobuf: WorkerMessage in, ServerMessage out.
The first message must be a RegisterWorkerRequest (answered with the
worker's id and the server's info); after it come availability answers,
status and load updates, job status updates and pings. A frame that is not
a WorkerMessage, or a session that does not start with a registration, ends
the connection with a policy violation; the worker's jobs then go to others.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import WSCloseCode, WSMsgType, web
from google.protobuf.message import DecodeError
from livekit.protocol import agent as lka
from livekit.protocol import models as lk

from mediapod import auth
from mediapod.metrics import MediaCounters
from mediapod.signal.livekit.agent_dispatch import AgentDispatcher, new_id
from mediapod.signal.livekit.agent_worker import AgentWorker
from mediapod.signal.livekit.transport import MAX_FRAME_BYTES

log = logging.getLogger(__name__)

FRONTEND = "livekit"  # the `frontend` label of switchboard_signal_errors
REGISTER_TIMEOUT = 10.0  # seconds a new connection has to register


class AgentWorkerService:
    """Serves livekit-agents workers: registration, then their messages, handed to the AgentDispatcher."""

    def __init__(
        self, dispatcher: AgentDispatcher, verifier: auth.TokenVerifier, counters: MediaCounters, server: lk.ServerInfo
    ) -> None:
        self._dispatcher = dispatcher
        self._verifier = verifier
        self._counters = counters
        self._server = server

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/agent", self._connect)]

    def _count(self, reason: str) -> None:
        self._counters.signal_errors[(FRONTEND, reason)] += 1

    def _claims(self, request: web.Request) -> auth.Claims | web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else request.query.get("access_token", "")
        try:
            claims = self._verifier.verify(token)
        except auth.AuthError as exc:
            self._count("unauthorized")
            return web.Response(status=401, text=exc.reason)
        if not claims.video.agent:
            self._count("unauthorized")
            return web.Response(status=401, text="token does not grant agent: an agent worker needs it")
        return claims

    async def _connect(self, request: web.Request) -> web.StreamResponse:
        claims = self._claims(request)
        if isinstance(claims, web.Response):
            return claims
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="/agent takes a WebSocket upgrade")
        await ws.prepare(request)
        worker = await self._register(ws, claims.api_key)
        if worker is None:
            return ws
        self._dispatcher.register(worker)
        sender = asyncio.get_running_loop().create_task(_send(ws, worker), name=f"agent worker {worker.id}")
        try:
            await self._serve(ws, worker)
        finally:
            sender.cancel()
            self._dispatcher.unregister(worker)
            await ws.close()
        return ws

    async def _register(self, ws: web.WebSocketResponse, api_key: str) -> AgentWorker | None:
        try:
            first = await asyncio.wait_for(ws.receive(), REGISTER_TIMEOUT)
        except asyncio.TimeoutError:
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"no RegisterWorkerRequest in time")
            return None
        message = self._decode(first)
        if message is None or not message.HasField("register"):
            self._count("malformed_message")
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"the first message must be a RegisterWorkerRequest")
            return None
        register = message.register
        if register.type != lka.JT_ROOM:
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"only room workers (JT_ROOM) are served")
            return None
        worker = AgentWorker(new_id("AW_"), register.agent_name, api_key, register.allowed_permissions)
        response = lka.RegisterWorkerResponse(worker_id=worker.id, server_info=self._server)
        await ws.send_bytes(lka.ServerMessage(register=response).SerializeToString())
        return worker

    def _decode(self, frame: object) -> lka.WorkerMessage | None:
        if getattr(frame, "type", None) != WSMsgType.BINARY:
            return None
        message = lka.WorkerMessage()
        try:
            message.ParseFromString(frame.data)  # type: ignore[attr-defined]
        except (DecodeError, RuntimeWarning):
            return None
        return message

    async def _serve(self, ws: web.WebSocketResponse, worker: AgentWorker) -> None:
        async for frame in ws:
            if frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return
            message = self._decode(frame)
            if message is None:
                self._count("malformed_message" if frame.type == WSMsgType.BINARY else "text_frame")
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"frames must be binary WorkerMessages")
                return
            self._handle(worker, message)

    def _handle(self, worker: AgentWorker, message: lka.WorkerMessage) -> None:
        which = message.WhichOneof("message")
        if which == "availability":
            worker.answer(message.availability)
        elif which == "update_worker":
            worker.update(message.update_worker)
        elif which == "update_job":
            self._dispatcher.job_status(worker, message.update_job)
        elif which == "ping":
            pong = lka.WorkerPong(last_timestamp=message.ping.timestamp, timestamp=_now_ms())
            worker.send(lka.ServerMessage(pong=pong))
        else:  # register again, simulate_job, migrate_job: not acted on
            self._count("unsupported_request")


async def _send(ws: web.WebSocketResponse, worker: AgentWorker) -> None:
    while True:
        message = await worker.outbox.get()
        await ws.send_bytes(message.SerializeToString())


def _now_ms() -> int:
    return int(time.time() * 1000)
