"""Pacer: one subscriber's packets leave smoothed to its rate, stamped in wire order."""

from __future__ import annotations

import asyncio
import time

from mediapod.rtp.twcc import TwccFeedback
from mediapod.sfu.pacer import MAX_QUEUE_DELAY, Pacer
from mediapod.sfu.send_history import SendHistory

TWCC_AT = 17  # 12-byte header, 4-byte extension block header, 1 element byte: where the DownTrack leaves room


def packet(size: int = 1200, marker: int = 0) -> bytearray:
    out = bytearray(size)
    out[0] = 0x90
    out[20] = marker
    return out


class Wire:
    def __init__(self) -> None:
        self.sent: list[tuple[float, bytes]] = []

    def __call__(self, data: bytes) -> None:
        self.sent.append((time.monotonic(), data))

    def sequences(self) -> list[int]:
        return [int.from_bytes(data[TWCC_AT : TWCC_AT + 2], "big") for _, data in self.sent]


async def test_packets_within_the_budget_leave_at_once_numbered_one_after_another() -> None:
    wire, history = Wire(), SendHistory()
    pacer = Pacer(wire, history, rate_bps=2_000_000)
    for _ in range(3):
        pacer.send(packet(1000))

    assert wire.sequences() == [0, 1, 2]
    assert all(isinstance(data, bytes) and len(data) == 1000 for _, data in wire.sent)


async def test_a_burst_leaves_spread_at_the_rate_in_order() -> None:
    wire = Wire()
    pacer = Pacer(wire, SendHistory(), rate_bps=1_000_000)
    start = time.monotonic()
    for i in range(20):
        pacer.send(packet(1200, marker=i))
    immediately = len(wire.sent)
    await asyncio.sleep(0.3)

    # 20 ms of budget (2.5 kB) goes at once; the other 21.5 kB need about 170 ms at 125 kB/s.
    assert immediately <= 3
    assert [data[20] for _, data in wire.sent] == list(range(20))
    assert wire.sequences() == list(range(20))
    assert 0.13 <= wire.sent[-1][0] - start <= 0.23
    # Any 20 ms carries at most the saved-up burst plus 20 ms at the rate (2 x 2.5 kB), and one packet of overshoot.
    times = [at for at, _ in wire.sent]
    assert max(sum(1200 for t in times if s <= t < s + 0.02) for s in times) <= 2 * 2500 + 1200
    pacer.close()


async def test_immediate_packets_leave_at_once_even_behind_queued_video() -> None:
    wire = Wire()
    pacer = Pacer(wire, SendHistory(), rate_bps=100_000)
    for _ in range(5):
        pacer.send(packet(1200))
    queued = len(wire.sent)
    pacer.send(packet(100), immediate=True)

    assert len(wire.sent) == queued + 1 and len(wire.sent[-1][1]) == 100
    assert pacer.queued_bytes > 0
    pacer.close()


async def test_a_queue_older_than_its_limit_is_flushed() -> None:
    wire = Wire()
    pacer = Pacer(wire, SendHistory(), rate_bps=64_000)
    for _ in range(10):
        pacer.send(packet(1200))
    await asyncio.sleep(MAX_QUEUE_DELAY + 0.1)

    # 12 kB at 8 kB/s would need 1.5 s; the queue's age limit sends it all sooner.
    assert len(wire.sent) == 10 and pacer.queued_bytes == 0


async def test_without_history_or_without_an_extension_block_nothing_is_stamped() -> None:
    marked = packet(500)
    marked[TWCC_AT : TWCC_AT + 2] = b"\xab\xcd"
    plain = bytearray(marked)
    plain[0] = 0x80
    wire = Wire()
    Pacer(wire, None, rate_bps=1_000_000).send(marked)
    Pacer(wire, SendHistory(), rate_bps=1_000_000).send(plain)

    assert wire.sequences() == [0xABCD, 0xABCD]


async def test_bytes_are_stamped_too_and_what_leaves_is_bytes() -> None:
    wire = Wire()
    pacer = Pacer(wire, SendHistory(), rate_bps=1_000_000)
    pacer.send(bytes(packet(300)))
    pacer.send(bytes(packet(300)))

    assert wire.sequences() == [0, 1]
    assert all(type(data) is bytes for _, data in wire.sent)


async def test_the_sent_rate_counts_what_left() -> None:
    pacer = Pacer(Wire(), None, rate_bps=10_000_000)
    start = time.monotonic()
    for _ in range(10):
        pacer.send(packet(1000))
    await asyncio.sleep(0.1)

    rate = pacer.sent_bps(time.monotonic(), window=1.0)
    assert 8 * 10_000 / 0.2 <= rate <= 8 * 10_000 / (time.monotonic() - start) * 1.01


async def test_the_history_remembers_each_stamp_with_its_size_and_time() -> None:
    wire, history = Wire(), SendHistory()
    pacer = Pacer(wire, history, rate_bps=10_000_000)
    for size in (300, 400, 500):
        pacer.send(packet(size))

    results = history.results(TwccFeedback(base_sequence=0, reference_time=1, feedback_count=0, arrivals=[1000, None, 3000]))
    assert [(r.sequence, r.size, r.arrival) for r in results] == [(0, 300, 0.065), (1, 400, None), (2, 500, 0.067)]
    assert all(abs(r.send_time - at) < 0.001 for r, (at, _) in zip(results, wire.sent, strict=True))
