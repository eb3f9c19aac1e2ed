"""LinkShaper: the test relay's slow link delivers at its rate and drops what overflows its queue."""

from __future__ import annotations

import asyncio
import time

from tests.support.link_shaper import LinkShaper


async def test_a_burst_beyond_burst_and_queue_is_dropped_and_the_rest_leaves_at_the_rate() -> None:
    delivered: list[tuple[float, int]] = []
    shaper = LinkShaper(lambda d: delivered.append((time.monotonic(), len(d))), rate_bps=400_000, burst_bytes=2000, queue_bytes=5000)
    start = time.monotonic()
    for _ in range(20):
        shaper.send(bytes(1000))
    await asyncio.sleep(0.2)

    # 2 leave on the burst's tokens at once, 5 wait in the queue, 13 find it full.
    assert shaper.stats.dropped_packets == 13
    assert len(delivered) == 7
    # The queued five need 5000 bytes of tokens at 50 kB/s: 100 ms.
    assert 0.08 <= delivered[-1][0] - start <= 0.18
    assert shaper.stats.loss(start, time.monotonic()) == 13 / 20


async def test_lifting_the_cap_drains_the_queue_at_once_and_passes_everything_after() -> None:
    delivered: list[int] = []
    shaper = LinkShaper(lambda d: delivered.append(len(d)), rate_bps=8_000, burst_bytes=1000, queue_bytes=3000)
    for _ in range(4):
        shaper.send(bytes(1000))
    assert len(delivered) == 1

    shaper.set_rate(None)
    for _ in range(50):
        shaper.send(bytes(1000))

    assert len(delivered) == 54 and shaper.stats.dropped_packets == 0
    shaper.close()
