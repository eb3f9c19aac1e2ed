"""Signal sessions and room calls for rooms hosted on another node, carried over Redis pub/sub.

A participant's signal stream may land on any node (the *edge*); its room
lives on one node (the *host*). The edge sends a SessionStart with the
JoinRequest, then every SignalRequest, to the host's channel; the host runs
the same SessionHost as for a local stream, over a transport whose requests
come from the edge and whose responses go back to it. The SDP the host
answers carries its own ICE candidate, so media goes straight from the
client to the host; only signaling takes the detour.

The edge bounds its client exactly as a host bounds a local one
(stream.serve_stream: a byte budget on waiting responses, a deadline on each
write). When its client stalls or breaks the protocol, the edge's SessionEnd
says so, and the host removes the participant for that reason.

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
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from mediapod import auth
from mediapod.config import LimitsConfig
from mediapod.protocol import relay_pb2, signal_pb2
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.participant import LeaveReason
from mediapod.signal.access import authenticate, check_room_join
from mediapod.signal.decoding import UndecodableRequest
from mediapod.signal.room_admin import RoomAdmin
from mediapod.signal.session import SessionHost
from mediapod.signal.status import OK, error_code, status_number
from mediapod.signal.stream import (
    FLUSH_TIMEOUT,
    ClientStalled,
    ProtocolViolation,
    ResponseQueue,
    SignalTransport,
    StreamAbandoned,
    next_request,
    serve_stream,
)

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

# Requests of one relayed session waiting on the host; more is a flood.
MAX_PENDING_REQUESTS = 1024

# Each RoomCall field (a RoomService method of the same name) -> the RoomReply field of its answer.
_ROOM_CALL_REPLIES = {
    "create_room": "room",
    "list_rooms": "rooms",
    "delete_room": "deleted",
    "list_participants": "participants",
    "remove_participant": "removed",
    "mute_published_track": "muted",
    "get_participant": "participant",
    "update_participant": "participant",
    "update_subscriptions": "subscriptions_updated",
    "send_data": "data_sent",
    "update_room_metadata": "room",
}

# How the edge's SessionEnd tells the host why its client's stream ended,
# so the host removes the participant for the same reason as a local one.
_EDGE_END_CODES = {
    LeaveReason.PROTOCOL_VIOLATION: ErrorCode.INVALID_ARGUMENT,
    LeaveReason.SIGNAL_STALLED: ErrorCode.RESOURCE_EXHAUSTED,
}


class RelayRouter(Protocol):
    """What the relay needs of the router: node ids, the room map, and the nodes' channels.

    The router's owner hands it ``SignalRelay.handle`` for what arrives on this node's channel.
    """

    @property
    def node_id(self) -> str: ...

    async def node_for_room(self, room_name: str, avoid: str = "") -> str: ...

    def accepts_room(self, room_name: str) -> bool: ...

    def is_gone(self, node_id: str, patience: float = 1.0) -> bool: ...

    async def send(self, node_id: str, message: relay_pb2.RelayMessage) -> None:
        """Publish to node_id's channel. Raises RequestError (UNAVAILABLE) when it cannot."""
        ...


def _edge_end(reason: LeaveReason) -> relay_pb2.SessionEnd:
    code = _EDGE_END_CODES.get(reason)
    if code is None:
        return relay_pb2.SessionEnd()
    return relay_pb2.SessionEnd(code=status_number(code), message=f"the client's signal stream ended: {reason.value}")


class _Outbox:
    """Publishes one session's messages to one node, in order, riding out short Redis outages."""

    def __init__(self, router: RelayRouter, node_id: str, session_id: str) -> None:
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

    def __init__(self, host: str, queue: ResponseQueue) -> None:
        self.host = host
        self.queue = queue
        # The host's answer to SessionStart: the join response, or an end.
        self.first: asyncio.Future[relay_pb2.RelayMessage] = asyncio.get_running_loop().create_future()
        self.end: relay_pb2.SessionEnd | None = None  # set when the host ended the session

    def deliver(self, message: relay_pb2.RelayMessage) -> None:
        """A response or end from the host: the first answers the start, later ones go to the client."""
        if not self.first.done():
            self.first.set_result(message)
        elif message.WhichOneof("message") == "end":
            self.host_ended(message.end)
        else:
            self.queue.put(message.response)

    def host_ended(self, end: relay_pb2.SessionEnd) -> None:
        if self.end is None:
            self.end = end
        self.queue.end()


class _RelayedClient:
    """SignalTransport on the host for a client whose stream is on another node."""

    def __init__(self, outbox: _Outbox) -> None:
        self._outbox = outbox
        self._inbox: asyncio.Queue[signal_pb2.SignalRequest | relay_pb2.SessionEnd] = asyncio.Queue()
        self._flooded = False

    def deliver(self, request: signal_pb2.SignalRequest) -> None:
        """Queue a request from the edge; past MAX_PENDING_REQUESTS the session ends as a flood.

        A local stream is read one request at a time, so HTTP/2 flow control
        holds back a client that sends faster than its requests are handled;
        the edge reads its client without that pushback, so the bound is here.
        """
        if self._flooded:
            return
        if self._inbox.qsize() >= MAX_PENDING_REQUESTS:
            self._flooded = True
            message = f"more than {MAX_PENDING_REQUESTS} requests were waiting to be handled"
            self._inbox.put_nowait(relay_pb2.SessionEnd(code=status_number(ErrorCode.INVALID_ARGUMENT), message=message))
            return
        self._inbox.put_nowait(request)

    def end(self, end: relay_pb2.SessionEnd) -> None:
        self._inbox.put_nowait(end)

    async def read(self) -> signal_pb2.SignalRequest | UndecodableRequest | None:
        item = await self._inbox.get()
        if isinstance(item, signal_pb2.SignalRequest):
            return item
        self._inbox.put_nowait(item)  # an ended stream stays ended for any later read
        if item.code == status_number(ErrorCode.INVALID_ARGUMENT):
            raise ProtocolViolation(item.message)
        if item.code == status_number(ErrorCode.RESOURCE_EXHAUSTED):
            raise ClientStalled(item.message)
        return None

    async def write(self, response: signal_pb2.SignalResponse) -> None:
        # Never waits: the edge bounds what its client has not taken.
        self._outbox.put(relay_pb2.RelayMessage(response=response))


class _HostedSession:
    """A participant in a room here whose stream is on another node."""

    def __init__(self, edge: str, client: _RelayedClient) -> None:
        self.edge = edge
        self.client = client


class SignalRelay:
    """Both halves of relayed signaling, and RoomService calls between nodes."""

    def __init__(
        self,
        router: RelayRouter,
        sessions: SessionHost,
        rooms: RoomAdmin,
        verifier: auth.TokenVerifier,
        limits: LimitsConfig,
        check_interval: float,
    ) -> None:
        """rooms answers calls from other nodes; it is this node's own, so a relayed call never travels twice."""
        self._router = router
        self._sessions = sessions
        self._rooms = rooms
        self._verifier = verifier
        self._limits = limits
        self._edge: dict[str, _EdgeSession] = {}
        self._hosted: dict[tuple[str, str], _HostedSession] = {}
        self._calls: dict[str, asyncio.Future[relay_pb2.RoomReply]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._check_interval = check_interval
        self._watchdog = asyncio.get_running_loop().create_task(self._watch_peers(), name="relay-watchdog")

    @property
    def active_sessions(self) -> int:
        return len(self._edge) + len(self._hosted)

    async def close(self) -> None:
        self._watchdog.cancel()
        for session in self._edge.values():
            session.deliver(relay_pb2.RelayMessage(end=relay_pb2.SessionEnd()))
        for hosted in self._hosted.values():
            hosted.client.end(relay_pb2.SessionEnd())
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=FLUSH_TIMEOUT)
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
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
            hosted = _HostedSession(message.from_node, _RelayedClient(outbox))
            self._hosted[(message.from_node, sid)] = hosted
            self._spawn(self._host(hosted, sid, outbox, message.start), f"relay-host-{sid[:8]}")
        elif kind == "request":
            hosted = self._hosted.get((message.from_node, sid))
            if hosted is not None:
                hosted.client.deliver(message.request)
            else:
                self._refuse(message.from_node, sid, "the hosting node has no such session (restarted?)")
        elif kind == "response":
            edge = self._edge.get(sid)
            if edge is not None:
                edge.deliver(message)
            else:
                self._refuse(message.from_node, sid, "the participant's stream is gone")
        elif kind == "end":
            edge = self._edge.get(sid)
            if edge is not None:
                edge.deliver(message)
            hosted = self._hosted.get((message.from_node, sid))
            if hosted is not None:
                hosted.client.end(message.end)
        elif kind == "call":
            self._spawn(self._answer_call(message.from_node, sid, message.call), f"relay-call-{sid[:8]}")
        elif kind == "reply":
            future = self._calls.get(sid)
            if future is not None and not future.done():
                future.set_result(message.reply)
        elif kind == "node_gone":
            self.node_gone(message.node_gone.node)

    def _refuse(self, node_id: str, session_id: str, reason: str) -> None:
        """Tell a node that a session it still runs has no other half here, so it ends its own."""
        end = relay_pb2.SessionEnd(code=status_number(ErrorCode.UNAVAILABLE), message=reason)
        message = relay_pb2.RelayMessage(session_id=session_id, end=end)
        self._spawn(self._send_quietly(node_id, message), f"relay-refuse-{session_id[:8]}")

    async def _send_quietly(self, node_id: str, message: relay_pb2.RelayMessage) -> None:
        with contextlib.suppress(RequestError):
            await self._router.send(node_id, message)

    # -- the edge: a client here, its room elsewhere ------------------------------------

    async def forward(
        self, host: str, join: signal_pb2.JoinRequest, claims: auth.Claims, room_name: str, transport: SignalTransport
    ) -> None:
        """Relay the participant's session to the node hosting its room, until either side ends it.

        Raises:
            RequestError: the host could not be reached or refused the join, or ended the session with a status.
            ProtocolViolation: the client broke the protocol (refused here: the host only ever sees SignalRequests).
            StreamAbandoned: the client is not reading.
        """
        session_id, session, outbox, first = await self._start(host, join, room_name)
        if first.WhichOneof("message") == "end":
            # The host is draining and does not have the room: map it elsewhere, once.
            host = await self._router.node_for_room(room_name, avoid=host)
            if host == self._router.node_id:
                await self._sessions.serve(join, claims, room_name, transport)
                return
            session_id, session, outbox, first = await self._start(host, join, room_name)
            if first.WhichOneof("message") == "end":
                raise RequestError(ErrorCode.UNAVAILABLE, f"node {host!r} refused room {room_name!r}: {first.end.message}")
        try:
            await self._relay_stream(session, outbox, first.response, transport, f"relayed participant {claims.identity}")
        finally:
            self._edge.pop(session_id, None)
            # Handed to a task of ours: the client may have hung up, cancelling this one.
            self._spawn(outbox.close(), f"relay-flush-{session_id[:8]}")

    async def _start(
        self, host: str, join: signal_pb2.JoinRequest, room_name: str
    ) -> tuple[str, _EdgeSession, _Outbox, relay_pb2.RelayMessage]:
        """Send SessionStart; return the host's first message (join response, or an end asking to retry elsewhere)."""
        session_id = uuid.uuid4().hex
        session = _EdgeSession(host, ResponseQueue(self._limits.signal_queue_size))
        self._edge[session_id] = session
        outbox = _Outbox(self._router, host, session_id)
        try:
            start = relay_pb2.RelayMessage(session_id=session_id, start=relay_pb2.SessionStart(join=join, room=room_name))
            try:
                await self._send_patiently(host, start)
            except RequestError as exc:
                raise RequestError(
                    ErrorCode.UNAVAILABLE, f"room {room_name!r} is hosted on node {host!r}, which cannot be reached: {exc.message}"
                ) from None
            try:
                first = await asyncio.wait_for(session.first, ANSWER_TIMEOUT)
            except TimeoutError:
                raise RequestError(
                    ErrorCode.UNAVAILABLE, f"node {host!r} hosting room {room_name!r} did not answer within {ANSWER_TIMEOUT:.0f} s"
                ) from None
            if first.WhichOneof("message") == "end":
                end = first.end
                if not end.retry_elsewhere:
                    raise RequestError(error_code(end.code) if end.code else ErrorCode.UNAVAILABLE, end.message)
                self._edge.pop(session_id, None)
                self._spawn(outbox.close(0.1), f"relay-flush-{session_id[:8]}")
            return session_id, session, outbox, first
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

    async def _relay_stream(
        self,
        session: _EdgeSession,
        outbox: _Outbox,
        join_response: signal_pb2.SignalResponse,
        transport: SignalTransport,
        who: str,
    ) -> None:
        """Carry requests to the host and its responses to the client, bounded as a local session is."""
        told_host = False

        def tell_host(reason: LeaveReason) -> None:
            nonlocal told_host
            if not told_host:
                told_host = True
                outbox.put(relay_pb2.RelayMessage(end=_edge_end(reason)))

        async def pump_requests() -> None:
            while (request := await next_request(transport)) is not None:
                outbox.put(relay_pb2.RelayMessage(request=request))
                if request.WhichOneof("message") == "leave":
                    return

        timeout = self._limits.signal_write_timeout
        try:
            try:
                await asyncio.wait_for(transport.write(join_response), timeout)
            except TimeoutError:
                tell_host(LeaveReason.SIGNAL_STALLED)
                raise StreamAbandoned(who) from None
            await serve_stream(transport, session.queue, timeout, pump_requests, tell_host, who)
        finally:
            tell_host(LeaveReason.CLIENT_INITIATED)
        if session.end is not None and session.end.code != OK:
            raise RequestError(error_code(session.end.code), session.end.message)

    # -- the host: the room here, the client elsewhere ------------------------------------

    async def _host(self, hosted: _HostedSession, session_id: str, outbox: _Outbox, start: relay_pb2.SessionStart) -> None:
        end = relay_pb2.SessionEnd()
        try:
            if not self._router.accepts_room(start.room):
                end = relay_pb2.SessionEnd(
                    code=status_number(ErrorCode.UNAVAILABLE),
                    message=f"node {self._router.node_id!r} is draining and does not host room {start.room!r}",
                    retry_elsewhere=True,
                )
                return
            claims = authenticate(self._verifier, start.join.token).claims
            check_room_join(claims, start.room)
            log.info("hosting relayed session of %s from node %s in room %s", claims.identity, hosted.edge, start.room)
            await self._sessions.serve(start.join, claims, start.room, hosted.client)
        except RequestError as exc:
            end = relay_pb2.SessionEnd(code=status_number(exc.code), message=exc.message)
        except StreamAbandoned:
            pass  # the edge saw its client stall and has gone
        except Exception:
            log.exception("relayed session from node %s failed", hosted.edge)
            end = relay_pb2.SessionEnd(code=status_number(ErrorCode.INTERNAL), message="the hosting node failed")
        finally:
            self._hosted.pop((hosted.edge, session_id), None)
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
        try:
            reply = await self._run_call(call)
        except RequestError as exc:
            reply = relay_pb2.RoomReply(code=status_number(exc.code), message=exc.message)
        except Exception:
            log.exception("relayed room call %s from node %s failed", call.WhichOneof("call"), edge)
            reply = relay_pb2.RoomReply(code=status_number(ErrorCode.INTERNAL), message="the hosting node failed")
        await self._send_quietly(edge, relay_pb2.RelayMessage(session_id=session_id, reply=reply))

    async def _run_call(self, call: relay_pb2.RoomCall) -> relay_pb2.RoomReply:
        """Run one call on this node's rooms, checking the caller's token again."""
        caller = authenticate(self._verifier, call.token)
        kind = call.WhichOneof("call")
        if kind is None or kind not in _ROOM_CALL_REPLIES:
            raise RequestError(ErrorCode.UNIMPLEMENTED, f"unknown room call {kind!r}")
        # RoomCall's fields are named after the RoomService methods they run.
        result = await getattr(self._rooms, kind)(caller, getattr(call, kind))
        return relay_pb2.RoomReply(**{_ROOM_CALL_REPLIES[kind]: result})

    # -- peers that vanish -------------------------------------------------------------------

    def node_gone(self, node_id: str) -> None:
        """End every session relayed to or from node_id now: its pod's supervisor saw it die."""
        self._end_sessions_with(lambda peer: peer == node_id)

    async def _watch_peers(self) -> None:
        """End sessions whose other node stopped heartbeating (crashed, partitioned)."""
        while True:
            await asyncio.sleep(self._check_interval)
            self._end_sessions_with(lambda peer: self._router.is_gone(peer, patience=SESSION_PATIENCE))

    def _end_sessions_with(self, gone: Callable[[str], bool]) -> None:
        for session in list(self._edge.values()):
            if gone(session.host):
                log.warning("node %s hosting a relayed session is gone; ending the session", session.host)
                message = f"node {session.host!r} hosting the room is gone"
                end = relay_pb2.SessionEnd(code=status_number(ErrorCode.UNAVAILABLE), message=message)
                session.deliver(relay_pb2.RelayMessage(end=end))
        for hosted in list(self._hosted.values()):
            if gone(hosted.edge):
                log.warning("node %s relaying a participant is gone; ending its session", hosted.edge)
                hosted.client.end(relay_pb2.SessionEnd())
