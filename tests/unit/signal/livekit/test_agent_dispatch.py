"""Agent dispatch decisions: who is asked, what the chosen worker gets, and what happens when a worker goes.

The dispatcher is real; workers are AgentWorker records whose outbox the
test reads and answers, as the /agent route would carry it.
"""

from __future__ import annotations

import asyncio

import pytest
from livekit import api
from livekit.protocol import agent as lka
from livekit.protocol import models as lk

from mediapod.rtc.room_state import RoomState
from mediapod.signal.livekit.agent_dispatch import AgentDispatcher
from mediapod.signal.livekit.agent_worker import AgentWorker

KEY, SECRET = "agentkey", "an-agent-secret-long-enough-for-hs256"


def room(name: str = "call") -> RoomState:
    return RoomState(sid=f"RM_{name}", name=name, node_id="n", metadata="", empty_timeout=1, departure_timeout=1,
                     max_participants=0, created_at=0.0, num_participants=0, num_publishers=0)


def worker(worker_id: str, agent_name: str = "", load: float = 0.0) -> AgentWorker:
    permissions = lk.ParticipantPermission(can_publish=True, can_subscribe=True, can_publish_data=True, agent=True)
    return AgentWorker(worker_id, agent_name, KEY, permissions, load=load)


async def next_message(w: AgentWorker) -> lka.ServerMessage:
    return await asyncio.wait_for(w.outbox.get(), 1.0)


async def accept(w: AgentWorker, identity: str = "") -> lka.JobAssignment:
    """Answer the worker's availability request with yes; return the assignment it then gets."""
    request = await next_message(w)
    assert request.WhichOneof("message") == "availability"
    w.answer(lka.AvailabilityResponse(job_id=request.availability.job.id, available=True, participant_identity=identity))
    assignment = await next_message(w)
    assert assignment.WhichOneof("message") == "assignment"
    return assignment.assignment


@pytest.fixture
async def dispatcher() -> AgentDispatcher:
    d = AgentDispatcher({KEY: SECRET}, availability_timeout=0.2)
    yield d  # type: ignore[misc]
    await d.close()


async def test_a_room_that_starts_is_offered_to_an_automatic_worker_who_gets_a_token_for_it(dispatcher: AgentDispatcher) -> None:
    w = worker("AW_1")
    dispatcher.register(w)
    dispatcher.room_started(room("call"))
    assignment = await accept(w, identity="agent-echo")

    claims = api.TokenVerifier(KEY, SECRET).verify(assignment.token)
    assert claims.identity == "agent-echo"
    assert claims.video.room_join and claims.video.room == "call" and claims.video.agent
    assert assignment.job.room.name == "call" and assignment.job.type == lka.JT_ROOM
    assert w.jobs == {assignment.job.id}


async def test_named_workers_get_no_automatic_job_only_an_explicit_dispatch(dispatcher: AgentDispatcher) -> None:
    named = worker("AW_named", agent_name="receptionist")
    dispatcher.register(named)
    dispatcher.room_started(room("call"))
    await asyncio.sleep(0.05)
    assert named.outbox.empty()

    job = dispatcher.dispatch("call", "receptionist", metadata="vip")
    assert job is not None
    assignment = await accept(named)
    assert assignment.job.agent_name == "receptionist" and assignment.job.metadata == "vip"
    assert dispatcher.dispatch("no-such-room", "receptionist") is None


async def test_jobs_go_to_the_least_loaded_worker_and_spread_by_job_count(dispatcher: AgentDispatcher) -> None:
    busy, idle = worker("AW_busy", load=0.6), worker("AW_idle", load=0.1)
    for w in (busy, idle):
        dispatcher.register(w)
    dispatcher.room_started(room("one"))
    await accept(idle)
    busy.load = idle.load = 0.0
    dispatcher.room_started(room("two"))
    await accept(busy)  # equal load: the one with fewer jobs
    assert len(busy.jobs) == len(idle.jobs) == 1


async def test_a_worker_that_declines_or_stays_silent_is_passed_over(dispatcher: AgentDispatcher) -> None:
    silent, declining, willing = worker("AW_a"), worker("AW_b", load=0.1), worker("AW_c", load=0.2)
    for w in (silent, declining, willing):
        dispatcher.register(w)
    dispatcher.room_started(room("call"))
    assert (await next_message(silent)).WhichOneof("message") == "availability"  # and never answers
    request = await next_message(declining)
    declining.answer(lka.AvailabilityResponse(job_id=request.availability.job.id, available=False))
    await accept(willing)
    assert not silent.jobs and not declining.jobs


async def test_a_worker_lost_mid_job_has_its_job_offered_to_another(dispatcher: AgentDispatcher) -> None:
    first, second = worker("AW_1"), worker("AW_2", load=0.5)
    dispatcher.register(first)
    dispatcher.register(second)
    dispatcher.room_started(room("call"))
    job_id = (await accept(first)).job.id

    dispatcher.unregister(first)
    assignment = await accept(second)
    assert assignment.job.id == job_id and assignment.job.room.name == "call"
    assert dispatcher.jobs[job_id].worker is second


async def test_a_finished_room_terminates_its_jobs(dispatcher: AgentDispatcher) -> None:
    w = worker("AW_1")
    dispatcher.register(w)
    dispatcher.room_started(room("call"))
    job_id = (await accept(w)).job.id
    dispatcher.room_finished(room("call"))

    message = await next_message(w)
    assert message.WhichOneof("message") == "termination" and message.termination.job_id == job_id
    assert not w.jobs and not dispatcher.jobs


async def test_an_answer_nobody_asked_for_is_ignored() -> None:
    w = worker("AW_1")
    assert not w.answer(lka.AvailabilityResponse(job_id="AJ_made_up", available=True))


async def test_agents_named_in_the_creating_tokens_room_configuration_are_dispatched_as_the_room_starts(
    dispatcher: AgentDispatcher,
) -> None:
    named = worker("AW_named", agent_name="receptionist")
    dispatcher.register(named)
    started = RoomState(sid="RM_c", name="call", node_id="n", metadata="", empty_timeout=1, departure_timeout=1,
                        max_participants=0, created_at=0.0, num_participants=0, num_publishers=0,
                        agents=(("receptionist", "vip"),))
    dispatcher.room_started(started)
    assignment = await accept(named)
    assert assignment.job.agent_name == "receptionist" and assignment.job.metadata == "vip"
