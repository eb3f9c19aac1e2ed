"""The operator across a Redis restart: rooms stay where they are, nothing is rescheduled.

Redis restarted empty loses `nodes` and `room_node_map` until every media
pod re-registers (within a heartbeat); an operator that took "missing" for
"lost" would move live rooms onto whichever pod came back first.
"""

from __future__ import annotations

import asyncio

from aiortc.mediastreams import VideoStreamTrack
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from mediapod import client
from tests.acceptance.test_kubernetes_operator import (  # noqa: F401  (fixtures)
    Setup,
    crds,
    k8s_cluster,
    pytestmark,
    ready_nodes,
    redis,
    redis_server,
    room_host,
    rooms_on,
    setup,
)
from tests.support.peers import eventually
from tests.support.redis_server import RedisServer


async def test_redis_restarted_empty_moves_no_room_and_keeps_participants(setup: Setup, redis: Redis, redis_server: RedisServer) -> None:  # noqa: F811
    a, b = setup.start_pods("a", "b")
    setup.start_operator()
    await ready_nodes(setup, a, b)
    names = ["one", "two", "three"]
    for name in names:
        setup.apply_room(name)
    await eventually(lambda: all(setup.status(n).get("phase") == "Scheduled" for n in names), timeout=5)
    placed = {n: setup.status(n)["node"] for n in names}
    # Straight to the hosting pod: a relayed signal stream needs Redis, which is about to go away.
    host = setup.pod(placed["one"])
    participant = await client.connect(host.grpc_target, host.token("one", "erin"))
    await participant.publish(VideoStreamTrack())
    await eventually(lambda: setup.status("one").get("phase") == "Active", timeout=5)

    redis_server.stop()
    await asyncio.sleep(2)
    redis_server.start()

    async def mapped_again() -> bool:
        try:
            return [await room_host(redis, n) for n in names] == [placed[n] for n in names]
        except RedisConnectionError:  # the test's own connection, reconnecting
            return False

    await eventually(mapped_again, timeout=10)
    await asyncio.sleep(3)  # a stale timeout: long enough for a wrong reschedule to show
    assert {n: setup.status(n)["node"] for n in names} == placed
    hosted = {p.node_id: await rooms_on(p) for p in (a, b)}
    for name in names:
        assert [node for node, rooms in hosted.items() if name in rooms] == [placed[name]]
        assert not [e for e in setup.events(name) if e.reason == "Rescheduled"]
    assert not participant.closed.is_set()
    assert setup.status("one")["phase"] == "Active"
    await participant.leave()
