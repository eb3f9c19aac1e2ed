"""Agent jobs across pods: two real dispatchers and buses, their relay channel a fake that delivers in process.

The host pod has no worker; the other pod has one. The job is offered
across, the worker there gets it, and the room's end reaches it.
"""

from __future__ import annotations

import asyncio

from livekit.protocol import agent as lka
from livekit.protocol import models as lk

from mediapod.protocol import relay_pb2
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.room_state import RoomState
from mediapod.signal.livekit.agent_bus import AgentBus
from mediapod.signal.livekit.agent_dispatch import AgentDispatcher
from mediapod.signal.livekit.agent_worker import AgentWorker

KEY, SECRET = "agentkey", "an-agent-secret-long-enough-for-hs256"


class Channels:
    """Every node's channel, in process: what RedisRouter.send publishes arrives at the node's bus."""

    def __init__(self) -> None:
        self.buses: dict[str, AgentBus] = {}


class FakeRouter:
    def __init__(self, node_id: str, channels: Channels) -> None:
        self._node_id = node_id
        self._channels = channels

    @property
    def node_id(self) -> str:
        return self._node_id

    def peers(self) -> list[str]:
        return sorted(n for n in self._channels.buses if n != self._node_id)

    async def send(self, node_id: str, message: relay_pb2.RelayMessage) -> None:
        bus = self._channels.buses.get(node_id)
        if bus is None:
            raise RequestError(ErrorCode.UNAVAILABLE, f"node {node_id!r} is not listening")
        message.from_node = self._node_id
        copy = relay_pb2.RelayMessage.FromString(message.SerializeToString())
        asyncio.get_running_loop().call_soon(bus.handle, copy)


def pod(node_id: str, channels: Channels) -> AgentDispatcher:
    bus = AgentBus(offer_timeout=1.0)
    dispatcher = AgentDispatcher({KEY: SECRET}, availability_timeout=0.5, remote=bus)
    bus.start(FakeRouter(node_id, channels), dispatcher)
    channels.buses[node_id] = bus
    return dispatcher


def room(name: str) -> RoomState:
    return RoomState(sid="RM_1", name=name, node_id="b", metadata="", empty_timeout=1, departure_timeout=1,
                     max_participants=0, created_at=0.0, num_participants=0, num_publishers=0)


async def test_a_room_on_b_gets_the_agent_of_a_worker_connected_to_a_and_its_end_reaches_it() -> None:
    channels = Channels()
    a, b = pod("a", channels), pod("b", channels)
    worker = AgentWorker("AW_a", "", KEY, lk.ParticipantPermission(can_publish=True, can_subscribe=True))
    a.register(worker)

    b.room_started(room("on-b"))
    request = await asyncio.wait_for(worker.outbox.get(), 2)
    job_id = request.availability.job.id
    assert request.availability.job.room.name == "on-b"
    worker.answer(lka.AvailabilityResponse(job_id=job_id, available=True))
    assignment = await asyncio.wait_for(worker.outbox.get(), 2)
    assert assignment.assignment.job.id == job_id and assignment.assignment.token
    for _ in range(100):
        if b.jobs.get(job_id) is not None and b.jobs[job_id].remote_node == "a":
            break
        await asyncio.sleep(0.01)
    assert b.jobs[job_id].remote_node == "a"

    b.room_finished(room("on-b"))
    termination = await asyncio.wait_for(worker.outbox.get(), 2)
    assert termination.termination.job_id == job_id
    assert not a.jobs and not b.jobs and not worker.jobs
    for d in (a, b):
        await d.close()


async def test_when_no_pod_has_a_worker_the_job_fails_fast_and_malformed_messages_are_dropped() -> None:
    channels = Channels()
    a, b = pod("a", channels), pod("b", channels)
    job = b.dispatch("nowhere", "")
    assert job is None  # not open on b
    b.room_started(room("lonely"))
    for _ in range(100):
        jobs = list(b.jobs.values())
        if jobs and jobs[0].job.state.status == lka.JS_FAILED:
            break
        await asyncio.sleep(0.01)
    assert [j.job.state.status for j in b.jobs.values()] == [lka.JS_FAILED]
    assert channels.buses["a"].handle(relay_pb2.RelayMessage(from_node="b", agent_offer=b"\xff\xff"))  # taken, dropped
    assert not channels.buses["a"].handle(relay_pb2.RelayMessage(from_node="b", call=relay_pb2.RoomCall()))  # the relay's
    for d in (a, b):
        await d.close()
