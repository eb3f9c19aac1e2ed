"""A client's stream: responses in order within a byte budget and a write deadline; how each ending is reported."""

from __future__ import annotations

import asyncio
import time

import pytest

from mediapod.protocol import signal_pb2
from mediapod.rtc.participant import LeaveReason
from mediapod.signal.decoding import UndecodableRequest
from mediapod.signal.stream import (
    ClientStalled,
    ProtocolViolation,
    ResponseQueue,
    StreamAbandoned,
    next_request,
    serve_stream,
    write_responses,
)
from tests.support.fake_signal import FakeTransport


def pong(timestamp: int) -> signal_pb2.SignalResponse:
    return signal_pb2.SignalResponse(pong=signal_pb2.Pong(last_ping_timestamp=timestamp, timestamp=int(time.time() * 1000)))


def pong_size() -> int:
    """Wire size of the pongs below (a millisecond timestamp has the same varint length all day)."""
    return pong(1).ByteSize()


async def test_responses_come_out_in_order_and_end_with_none() -> None:
    queue = ResponseQueue(max_bytes=1 << 20)
    queue.put(pong(1))
    queue.put(pong(2))
    queue.end()
    queue.put(pong(3))  # after the end: dropped
    first, second, last = await queue.next(), await queue.next(), await queue.next()
    assert [first.pong.last_ping_timestamp, second.pong.last_ping_timestamp] == [1, 2]  # type: ignore[union-attr]
    assert last is None and not queue.stalled


async def test_a_response_past_the_byte_budget_stalls_the_queue() -> None:
    queue = ResponseQueue(max_bytes=2 * pong_size())
    queue.put(pong(1))
    queue.put(pong(2))
    assert not queue.ended.is_set()
    queue.put(pong(3))
    assert queue.stalled and queue.ended.is_set()


async def test_taken_responses_free_their_bytes() -> None:
    queue = ResponseQueue(max_bytes=pong_size())
    for timestamp in range(5):
        queue.put(pong(timestamp))
        assert (await queue.next()) is not None
    assert not queue.stalled


async def test_a_write_the_client_does_not_take_within_the_deadline_stalls_the_queue() -> None:
    transport = FakeTransport(reading=False)
    queue = ResponseQueue(max_bytes=1 << 20)
    queue.put(pong(1))
    await asyncio.wait_for(write_responses(queue, transport, timeout=0.05), 1)
    assert queue.stalled and transport.taken == []


async def test_undecodable_bytes_are_a_protocol_violation() -> None:
    transport = FakeTransport()
    transport.send(UndecodableRequest("a SignalRequest of 3 bytes could not be decoded (bad)"))
    with pytest.raises(ProtocolViolation, match="could not be decoded"):
        await next_request(transport)


async def test_a_hang_up_ends_the_stream_as_client_initiated_and_flushes_what_was_queued() -> None:
    transport, queue, reasons = FakeTransport(), ResponseQueue(1 << 20), []
    queue.put(pong(1))
    transport.hang_up()

    async def read() -> None:
        while await next_request(transport) is not None:
            pass

    await serve_stream(transport, queue, 1.0, read, reasons.append, "test client")
    assert reasons == [LeaveReason.CLIENT_INITIATED] and transport.kinds() == ["pong"]


async def test_a_violation_ends_the_stream_after_flushing_what_on_end_queued() -> None:
    transport, queue = FakeTransport(), ResponseQueue(1 << 20)
    transport.send(UndecodableRequest("garbage"))

    async def read() -> None:
        await next_request(transport)

    with pytest.raises(ProtocolViolation, match="garbage"):
        await serve_stream(transport, queue, 1.0, read, lambda reason: queue.put(pong(7)), "test client")
    assert [r.pong.last_ping_timestamp for r in transport.taken] == [7]


async def test_a_client_that_stops_reading_is_stalled_and_abandoned_without_more_writes() -> None:
    transport, queue, reasons = FakeTransport(reading=False), ResponseQueue(1 << 20), []
    queue.put(pong(1))

    async def read() -> None:
        await asyncio.Event().wait()  # a client that says nothing either

    with pytest.raises(StreamAbandoned):
        await asyncio.wait_for(serve_stream(transport, queue, 0.05, read, reasons.append, "test client"), 2)
    assert reasons == [LeaveReason.SIGNAL_STALLED] and transport.taken == []


async def test_a_stall_reported_by_the_transport_ends_the_stream_as_stalled() -> None:
    transport, queue, reasons = FakeTransport(), ResponseQueue(1 << 20), []
    transport.send(ClientStalled("the edge saw it stall"))

    async def read() -> None:
        await next_request(transport)

    with pytest.raises(StreamAbandoned):
        await serve_stream(transport, queue, 1.0, read, reasons.append, "test client")
    assert reasons == [LeaveReason.SIGNAL_STALLED]


async def test_whoever_ends_the_queue_ends_the_stream_and_its_last_responses_go_out() -> None:
    transport, queue, reasons = FakeTransport(), ResponseQueue(1 << 20), []

    async def read() -> None:
        await asyncio.Event().wait()

    asyncio.get_running_loop().call_later(0.01, lambda: (queue.put(pong(9)), queue.end()))
    await asyncio.wait_for(serve_stream(transport, queue, 1.0, read, reasons.append, "test client"), 2)
    assert reasons == [LeaveReason.CLIENT_INITIATED] and transport.kinds() == ["pong"]
