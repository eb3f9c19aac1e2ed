"""Signal sessions and room calls for rooms hosted on another node, carried over Redis pub/sub.

A participant's gRPC stream may land on any node (the *edge*); its room lives
on one node (the *host*). The edge sends a SessionStart with the JoinRequest,
then every SignalRequest, to the host's channel; the host joins the
participant exactly as for a local stream (SignalServicer.host_session, with
a RelayContext in place of the gRPC context) and sends every SignalResponse
back. The SDP the host answers carries its own ICE candidate, so media goes
straight from the client to the host; only signaling takes the detour.

Either side ending sends a SessionEnd, and a side whose peer node stops
heartbeating ends the session itself, so neither is left with a half.
Messages of one session are published one after another by a single task,
which keeps them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import grpc

from mediapod import auth
from mediapod.protocol import relay_pb2, signal_pb2
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.signal.decoding import UndecodableRequest
from mediapod.signal.grpc_service import RoomServicer, SignalServicer, _verify, status_of

if TYPE_CHECKING:
    from mediapod.routing.redis_router import RedisRouter

log = logging.getLogger(__name__)
# A relayed session is ended only after its other node was silent for twice
# the stale timeout: rooms stop going to a silent node sooner, but ending a
# participant's session on a node that is merely slow would be worse.
SESSION_PATIENCE = 2.0

# The host has this long to answer a SessionStart or a RoomCall.
ANSWER_TIMEOUT = 5.0
# A SessionStart to a node that is not listening is retried this long.
START_PATIENCE = 3.0
# One message keeps being retried this long while Redis is unreachable.
SEND_PATIENCE = 10.0
# Time given to a session's last messages (a leave, its end) to go out.
FLUSH_TIMEOUT = 2.0

# RoomCall field -> (RoomServicer method, RoomReply field).
ROOM_CALLS = {
    "create_room": ("CreateRoom", "room"),
    "list_rooms": ("ListRooms", "rooms"),
    "delete_room": ("DeleteRoom", "deleted"),
    "list_participants": ("ListParticipants", "participants"),
    "remove_participant": ("RemoveParticipant", "removed"),
    "mute_published_track": ("MutePublishedTrack", "muted"),
}


def status_code(value: int) -> grpc.StatusCode:
    return next((c for c in grpc.StatusCode if c.value[0] == value), grpc.StatusCode.UNKNOWN)


class RelayAborted(Exception):
    """RelayContext.abort: the relayed call ends with this status."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class RelayContext:
    """What host_session and RoomServicer use of a grpc.aio.ServicerContext, for a call from another node."""

    def __init__(self, outbox: _Outbox | None = None, token: str = "") -> None:
        self.inbox: asyncio.Queue[signal_pb2.SignalRequest | None] = asyncio.Queue()
        self._outbox = outbox
        self._token = token

    async def read(self) -> Any:
        request = await self.inbox.get()
        return grpc.aio.EOF if request is None else request

    async def write(self, response: signal_pb2.SignalResponse) -> None:
        assert self._outbox is not None
        self._outbox.put(relay_pb2.RelayMessage(response=response))

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise RelayAborted(code, details)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self._token}"),)


class _Outbox:
    """Publishes one session's messages to one node, in order, riding out short Redis outages."""

    def __init__(self, router: RedisRouter, node_id: str, session_id: str) -> None:
        self._router = router
        self._node_id = node_id
        self._session_id = session_id
        self._queue: asyncio.Queue[relay_pb2.RelayMessage | None] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"relay-out-{session_id[:8]}")

    def put(self, message: relay_pb2.RelayMessage) -> None:
        message.session_id = self._session_id
        self._queue.put_nowait(message)

    async def close(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """Send what is queued (for at most timeout), then stop."""
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            message = await self._queue.get()
            if message is None:
                return
            deadline = time.monotonic() + SEND_PATIENCE
            while True:
                try:
                    await self._router.send(self._node_id, message)
                    break
                except RequestError as exc:
                    if time.monotonic() >= deadline:
                        log.warning("dropped a %s for node %s: %s", message.WhichOneof("message"), self._node_id, exc.message)
                        break
                await asyncio.sleep(0.2)


class _EdgeSession:
    """A client stream on this node whose room is hosted on another."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.inbox: asyncio.Queue[relay_pb2.RelayMessage] = asyncio.Queue()


class _HostedSession:
    """A participant in a room here whose stream is on another node."""

    def __init__(self, edge: str, context: RelayContext) -> None:
        self.edge = edge
        self.context = context


class SignalRelay:
    """Both halves of relayed signaling, and RoomService calls between nodes."""

    def __init__(
        self,
        router: RedisRouter,
        signal: SignalServicer,
        rooms: RoomServicer,
        verifier: auth.TokenVerifier,
        check_interval: float,
    ) -> None:
        self._router = router
        self._signal = signal
        self._rooms = rooms  # the local-only servicer: a relayed call never travels twice
        self._verifier = verifier
        self._edge: dict[str, _EdgeSession] = {}
        self._hosted: dict[tuple[str, str], _HostedSession] = {}
        self._calls: dict[str, asyncio.Future[relay_pb2.RoomReply]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._check_interval = check_interval
        self._watchdog = asyncio.get_running_loop().create_task(self._watch_peers(), name="relay-watchdog")
        router.on_message = self.handle

    @property
    def active_sessions(self) -> int:
        return len(self._edge) + len(self._hosted)

    async def close(self) -> None:
        self._watchdog.cancel()
        for session in self._edge.values():
            session.inbox.put_nowait(relay_pb2.RelayMessage(end=relay_pb2.SessionEnd()))
        for session in self._hosted.values():
            session.context.inbox.put_nowait(None)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=FLUSH_TIMEOUT)
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- incoming ------------------------------------------------------------------

    def handle(self, message: relay_pb2.RelayMessage) -> None:
        """Route one message from another node to the session or call it belongs to."""
        kind = message.WhichOneof("message")
        sid = message.session_id
        if kind == "start":
            # Registered before the task runs, so nothing that follows the start can miss it.
            outbox = _Outbox(self._router, message.from_node, sid)
            hosted = _HostedSession(message.from_node, RelayContext(outbox))
            self._hosted[(message.from_node, sid)] = hosted
            self._spawn(self._host(hosted, sid, outbox, message.start), f"relay-host-{sid[:8]}")
        elif kind == "request":
            hosted = self._hosted.get((message.from_node, sid))
            if hosted is not None:
                hosted.context.inbox.put_nowait(message.request)
            else:
                self._refuse(message.from_node, sid, "the hosting node has no such session (restarted?)")
        elif kind == "response":
            edge = self._edge.get(sid)
            if edge is not None:
                edge.inbox.put_nowait(message)
            else:
                self._refuse(message.from_node, sid, "the participant's stream is gone")
        elif kind == "end":
            edge = self._edge.get(sid)
            if edge is not None:
                edge.inbox.put_nowait(message)
            hosted = self._hosted.get((message.from_node, sid))
            if hosted is not None:
                hosted.context.inbox.put_nowait(None)
        elif kind == "call":
            self._spawn(self._answer_call(message.from_node, sid, message.call), f"relay-call-{sid[:8]}")
        elif kind == "reply":
            future = self._calls.get(sid)
            if future is not None and not future.done():
                future.set_result(message.reply)

    def _refuse(self, node_id: str, session_id: str, reason: str) -> None:
        """Tell a node that a session it still runs has no other half here, so it ends its own."""
        end = relay_pb2.SessionEnd(code=grpc.StatusCode.UNAVAILABLE.value[0], message=reason)
        message = relay_pb2.RelayMessage(session_id=session_id, end=end)
        self._spawn(self._send_quietly(node_id, message), f"relay-refuse-{session_id[:8]}")

    async def _send_quietly(self, node_id: str, message: relay_pb2.RelayMessage) -> None:
        with contextlib.suppress(RequestError):
            await self._router.send(node_id, message)

    # -- the edge: a client here, its room elsewhere ------------------------------------

    async def forward(
        self,
        host: str,
        join: signal_pb2.JoinRequest,
        claims: auth.Claims,
        room_name: str,
        context: grpc.aio.ServicerContext,
    ) -> None:
        """Relay the participant's session to the node hosting its room, until either side ends it."""
        first, session_id, outbox = await self._start(host, join, room_name, context)
        if first.WhichOneof("message") == "end":
            # The host is draining and does not have the room: map it elsewhere, once.
            try:
                host = await self._router.node_for_room(room_name, avoid=host)
            except RequestError as exc:
                await context.abort(status_of(exc.code), exc.message)
            if host == self._router.node_id:
                await self._signal.host_session(join, claims, room_name, context)
                return
            first, session_id, outbox = await self._start(host, join, room_name, context)
            if first.WhichOneof("message") == "end":
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"node {host!r} refused room {room_name!r}: {first.end.message}")
        session = self._edge[session_id]
        try:
            await context.write(first.response)
            upstream = asyncio.ensure_future(self._pump_requests(context, outbox))
            downstream = asyncio.ensure_future(self._pump_responses(session, context))
            try:
                await asyncio.wait({upstream, downstream}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                upstream.cancel()
                downstream.cancel()
            if downstream.done() and not downstream.cancelled() and downstream.exception() is None:
                end = downstream.result()
                if end is not None and end.code:
                    await context.abort(status_code(end.code), end.message)
        finally:
            self._edge.pop(session_id, None)
            # Handed to a task of ours: the client may have hung up, cancelling this one.
            outbox.put(relay_pb2.RelayMessage(end=relay_pb2.SessionEnd()))
            self._spawn(outbox.close(), f"relay-flush-{session_id[:8]}")

    async def _start(
        self, host: str, join: signal_pb2.JoinRequest, room_name: str, context: grpc.aio.ServicerContext
    ) -> tuple[relay_pb2.RelayMessage, str, _Outbox]:
        """Send SessionStart; return the host's first message (join response, or an end asking to retry elsewhere)."""
        session_id = uuid.uuid4().hex
        session = _EdgeSession(host)
        self._edge[session_id] = session
        outbox = _Outbox(self._router, host, session_id)
        try:
            start = relay_pb2.RelayMessage(session_id=session_id, start=relay_pb2.SessionStart(join=join, room=room_name))
            try:
                await self._send_patiently(host, start)
            except RequestError as exc:
                await context.abort(
                    grpc.StatusCode.UNAVAILABLE, f"room {room_name!r} is hosted on node {host!r}, which cannot be reached: {exc.message}"
                )
            try:
                first = await asyncio.wait_for(session.inbox.get(), ANSWER_TIMEOUT)
            except TimeoutError:
                await context.abort(
                    grpc.StatusCode.UNAVAILABLE,
                    f"node {host!r} hosting room {room_name!r} did not answer within {ANSWER_TIMEOUT:.0f} s",
                )
            if first.WhichOneof("message") == "end":
                end = first.end
                if not end.retry_elsewhere:
                    await context.abort(status_code(end.code) if end.code else grpc.StatusCode.UNAVAILABLE, end.message)
                self._edge.pop(session_id, None)
                self._spawn(outbox.close(0.1), f"relay-flush-{session_id[:8]}")
            return first, session_id, outbox
        except BaseException:
            self._edge.pop(session_id, None)
            self._spawn(outbox.close(0.1), f"relay-flush-{session_id[:8]}")
            raise

    async def _send_patiently(self, node_id: str, message: relay_pb2.RelayMessage) -> None:
        """Send, retrying briefly: a live node may be resubscribing after a Redis restart."""
        deadline = time.monotonic() + START_PATIENCE
        while True:
            try:
                await self._router.send(node_id, message)
                return
            except RequestError:
                if time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(0.2)

    async def _pump_requests(self, context: grpc.aio.ServicerContext, outbox: _Outbox) -> None:
        while True:
            request = await context.read()
            if request is grpc.aio.EOF:
                return
            if isinstance(request, UndecodableRequest):
                # Refused here, at the edge: the host only ever sees SignalRequests.
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.reason)
            outbox.put(relay_pb2.RelayMessage(request=request))
            if request.WhichOneof("message") == "leave":
                return

    async def _pump_responses(self, session: _EdgeSession, context: grpc.aio.ServicerContext) -> relay_pb2.SessionEnd | None:
        while True:
            message = await session.inbox.get()
            if message.WhichOneof("message") == "end":
                return message.end
            await context.write(message.response)

    # -- the host: the room here, the client elsewhere ------------------------------------

    async def _host(self, hosted: _HostedSession, session_id: str, outbox: _Outbox, start: relay_pb2.SessionStart) -> None:
        edge, context = hosted.edge, hosted.context
        key = (edge, session_id)
        end = relay_pb2.SessionEnd()
        try:
            if not self._router.accepts_room(start.room):
                end = relay_pb2.SessionEnd(
                    code=grpc.StatusCode.UNAVAILABLE.value[0],
                    message=f"node {self._router.node_id!r} is draining and does not host room {start.room!r}",
                    retry_elsewhere=True,
                )
                return
            claims = await _verify(self._verifier, start.join.token, context)  # type: ignore[arg-type]
            try:
                auth.require_room_join(claims, start.room)
            except auth.PermissionDenied as exc:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, exc.reason)
            log.info("hosting relayed session of %s from node %s in room %s", claims.identity, edge, start.room)
            await self._signal.host_session(start.join, claims, start.room, context)  # type: ignore[arg-type]
        except RelayAborted as exc:
            end = relay_pb2.SessionEnd(code=exc.code.value[0], message=exc.details)
        except Exception:
            log.exception("relayed session from node %s failed", edge)
            end = relay_pb2.SessionEnd(code=grpc.StatusCode.INTERNAL.value[0], message="the hosting node failed")
        finally:
            self._hosted.pop(key, None)
            outbox.put(relay_pb2.RelayMessage(end=end))
            await outbox.close()

    # -- room calls ------------------------------------------------------------------------

    async def call(self, node_id: str, call: relay_pb2.RoomCall) -> relay_pb2.RoomReply:
        """Run a RoomService call on the node hosting the room.

        Raises:
            RequestError: UNAVAILABLE if the node cannot be reached or does not answer.
        """
        session_id = uuid.uuid4().hex
        future: asyncio.Future[relay_pb2.RoomReply] = asyncio.get_running_loop().create_future()
        self._calls[session_id] = future
        try:
            await self._router.send(node_id, relay_pb2.RelayMessage(session_id=session_id, call=call))
            return await asyncio.wait_for(future, ANSWER_TIMEOUT)
        except TimeoutError:
            raise RequestError(ErrorCode.UNAVAILABLE, f"node {node_id!r} did not answer within {ANSWER_TIMEOUT:.0f} s") from None
        finally:
            self._calls.pop(session_id, None)

    async def _answer_call(self, edge: str, session_id: str, call: relay_pb2.RoomCall) -> None:
        kind = call.WhichOneof("call")
        if kind not in ROOM_CALLS:
            reply = relay_pb2.RoomReply(code=grpc.StatusCode.UNIMPLEMENTED.value[0], message=f"unknown room call {kind!r}")
        else:
            method, field = ROOM_CALLS[kind]
            try:
                result = await getattr(self._rooms, method)(getattr(call, kind), RelayContext(token=call.token))
                reply = relay_pb2.RoomReply(**{field: result})
            except RelayAborted as exc:
                reply = relay_pb2.RoomReply(code=exc.code.value[0], message=exc.details)
            except Exception:
                log.exception("relayed room call %s from node %s failed", kind, edge)
                reply = relay_pb2.RoomReply(code=grpc.StatusCode.INTERNAL.value[0], message="the hosting node failed")
        await self._send_quietly(edge, relay_pb2.RelayMessage(session_id=session_id, reply=reply))

    # -- peers that vanish -------------------------------------------------------------------

    async def _watch_peers(self) -> None:
        """End sessions whose other node stopped heartbeating (crashed, partitioned)."""
        while True:
            await asyncio.sleep(self._check_interval)
            for session in list(self._edge.values()):
                if self._router.is_gone(session.host, patience=SESSION_PATIENCE):
                    log.warning("node %s hosting a relayed session is gone; ending the session", session.host)
                    message = f"node {session.host!r} hosting the room is gone"
                    session.inbox.put_nowait(
                        relay_pb2.RelayMessage(end=relay_pb2.SessionEnd(code=grpc.StatusCode.UNAVAILABLE.value[0], message=message))
                    )
            for hosted in list(self._hosted.values()):
                if self._router.is_gone(hosted.edge, patience=SESSION_PATIENCE):
                    log.warning("node %s relaying a participant is gone; ending its session", hosted.edge)
                    hosted.context.inbox.put_nowait(None)
