"""One client's signal stream, whatever carries it: bounded responses out, requests in.

A session reads requests from its client and writes responses to it through
a SignalTransport: a gRPC stream, a relay channel to another node, later a
LiveKit WebSocket. The transport may make a write wait (HTTP/2 flow control
waits on a client that does not read), so responses go through a
ResponseQueue with a byte budget and each write has a deadline: a client that
does not take its responses ends as stalled instead of growing the pod's
memory. serve_stream runs that loop for the node hosting the session and for
the node relaying it alike, so both bound a client the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from mediapod.protocol import signal_pb2
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.participant import LeaveReason
from mediapod.signal.decoding import UndecodableRequest

log = logging.getLogger(__name__)

# Time given to a stream's last responses (a leave, say) to go out.
FLUSH_TIMEOUT = 2.0


class ClientStalled(Exception):
    """The client stopped taking its responses (seen by the node its stream is on)."""


class ProtocolViolation(RequestError):
    """The client sent something that is not the protocol; its session ends with INVALID_ARGUMENT."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_ARGUMENT, message)


class StreamAbandoned(Exception):
    """The client is not reading: nothing more, not even a status, can reach it.

    The front end drops the stream without a status (gRPC: the call ends as
    cancelled), since sending one would wait on the client forever.
    """


class SignalTransport(Protocol):
    """What a signal session needs of the wire under it."""

    async def read(self) -> signal_pb2.SignalRequest | UndecodableRequest | None:
        """The client's next request; None once it has hung up.

        Raises:
            ClientStalled: the client's stream, on another node, stopped taking responses.
            ProtocolViolation: the client's stream, on another node, broke the protocol.
        """
        ...

    async def write(self, response: signal_pb2.SignalResponse) -> None:
        """Send one response; may wait for the client, the caller bounds how long."""
        ...


async def next_request(transport: SignalTransport) -> signal_pb2.SignalRequest | None:
    """The client's next request, None once it hung up.

    Raises:
        ProtocolViolation: bytes that are no SignalRequest.
    """
    request = await transport.read()
    if isinstance(request, UndecodableRequest):
        raise ProtocolViolation(request.reason)
    return request


class ResponseQueue:
    """Responses waiting for a client, in order, within a byte budget.

    Past ``max_bytes`` the queue takes nothing more and is stalled: the
    stream ends with SIGNAL_STALLED rather than grow without bound.
    """

    def __init__(self, max_bytes: int) -> None:
        self._queue: asyncio.Queue[tuple[signal_pb2.SignalResponse, int] | None] = asyncio.Queue()
        self._max_bytes = max_bytes
        self._queued_bytes = 0
        # Set when nothing more will be queued: a leave was sent, the stream is over, or it stalled.
        self.ended = asyncio.Event()
        self.stalled = False

    def put(self, response: signal_pb2.SignalResponse) -> None:
        if self.ended.is_set():
            return
        size = response.ByteSize()
        if self._queued_bytes + size > self._max_bytes:
            self.stall()
            return
        self._queued_bytes += size
        self._queue.put_nowait((response, size))

    async def next(self) -> signal_pb2.SignalResponse | None:
        """The next response to write; None once the queue has ended and everything before was taken."""
        item = await self._queue.get()
        if item is None:
            return None
        response, size = item
        self._queued_bytes -= size
        return response

    def stall(self) -> None:
        """The client is not taking its responses: queue nothing more."""
        self.stalled = True
        self.end()

    def end(self) -> None:
        if not self.ended.is_set():
            self.ended.set()
            self._queue.put_nowait(None)


async def write_responses(queue: ResponseQueue, transport: SignalTransport, timeout: float) -> None:
    """Write queued responses in order; one the client does not take within timeout stalls the queue."""
    while (response := await queue.next()) is not None:
        try:
            await asyncio.wait_for(transport.write(response), timeout)
        except TimeoutError:
            queue.stall()
            return


async def serve_stream(
    transport: SignalTransport,
    queue: ResponseQueue,
    write_timeout: float,
    read_requests: Callable[[], Awaitable[None]],
    on_end: Callable[[LeaveReason], None],
    who: str,
) -> None:
    """Write the queue's responses and run read_requests until the client leaves, stalls or breaks the protocol, or the queue ends.

    on_end is told why, before the last responses are flushed, so what it
    queues (a leave) still goes out. who names the client in the log.

    Raises:
        ProtocolViolation: read_requests met one; the last responses went out first.
        StreamAbandoned: the client is not reading.
    """
    loop = asyncio.get_running_loop()
    writer = loop.create_task(write_responses(queue, transport, write_timeout))
    reader = loop.create_task(read_requests())
    # Whoever ends the queue (the room removing the participant, the host
    # ending a relayed session) ends the stream: stop reading the client then.
    ended = loop.create_task(queue.ended.wait())
    violation: ProtocolViolation | None = None
    try:
        done, _ = await asyncio.wait({reader, writer, ended}, return_when=asyncio.FIRST_COMPLETED)
        for task in done & {reader, writer}:
            error = None if task.cancelled() else task.exception()
            if isinstance(error, ProtocolViolation):
                violation = error
            elif isinstance(error, ClientStalled):
                queue.stall()
            elif error is not None:
                # A bug, not bad input (that becomes an ErrorResponse):
                # end this stream loudly and keep the pod serving.
                log.error("signal stream of %s failed", who, exc_info=error)
    finally:
        reader.cancel()
        ended.cancel()
        if queue.stalled:
            reason = LeaveReason.SIGNAL_STALLED
        elif violation is not None:
            reason = LeaveReason.PROTOCOL_VIOLATION
        else:
            reason = LeaveReason.CLIENT_INITIATED
        on_end(reason)
        queue.end()
        if queue.stalled:
            writer.cancel()  # the client takes nothing: no leave can reach it
            flushed = False
        else:
            flushed = await _flush(writer, FLUSH_TIMEOUT)
    if not flushed:
        log.info("%s: its client is not reading; the stream is abandoned", who)
        raise StreamAbandoned(who)
    if violation is not None:
        log.info("%s ended for a protocol violation: %s", who, violation.message)
        raise violation


async def _flush(writer: asyncio.Task[None], timeout: float) -> bool:
    """Let the writer send what is queued (a leave, say); False if the stream did not take it in time."""
    try:
        await asyncio.wait_for(writer, timeout)
        return True
    except (asyncio.CancelledError, Exception):  # a timeout, or the transport failing under the write
        writer.cancel()
        return False
