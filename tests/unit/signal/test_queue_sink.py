"""QueueSink: responses in order within a byte budget; past it the session is stalled."""

from __future__ import annotations

import time

from mediapod.protocol import signal_pb2
from mediapod.signal.grpc_service import QueueSink


def pong_size() -> int:
    """Wire size of the pongs below (a millisecond timestamp has the same varint length all day)."""
    pong = signal_pb2.Pong(last_ping_timestamp=1, timestamp=int(time.time() * 1000))
    return signal_pb2.SignalResponse(pong=pong).ByteSize()


async def test_responses_come_out_in_order_and_end_with_none() -> None:
    sink = QueueSink(max_bytes=1 << 20)
    sink.send_pong(1)
    sink.send_pong(2)
    sink.end()
    sink.send_pong(3)  # after the end: dropped
    first, second, last = await sink.next(), await sink.next(), await sink.next()
    assert [first.pong.last_ping_timestamp, second.pong.last_ping_timestamp] == [1, 2]  # type: ignore[union-attr]
    assert last is None and not sink.stalled


async def test_a_response_past_the_byte_budget_stalls_the_sink() -> None:
    size = pong_size()
    sink = QueueSink(max_bytes=2 * size)
    sink.send_pong(1)
    sink.send_pong(2)
    assert not sink.ended.is_set()
    sink.send_pong(3)
    assert sink.stalled and sink.ended.is_set()


async def test_taken_responses_free_their_bytes() -> None:
    size = pong_size()
    sink = QueueSink(max_bytes=size)
    for timestamp in range(5):
        sink.send_pong(timestamp)
        response = await sink.next()
        assert isinstance(response, signal_pb2.SignalResponse)
    assert not sink.stalled
