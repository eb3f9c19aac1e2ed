"""Agent dispatch as LiveKit does it: a room's jobs offered to registered livekit-agents workers.

A job is one agent in one room. Rooms that start get a job for the workers
registered without an agent name (automatic dispatch); named agents are
dispatched explicitly (the AgentDispatchService, or a token's room
configuration). For each job the least loaded available worker is asked
(AvailabilityRequest); the first to accept gets a JobAssignment with a
token for the room, signed with the key that worker registered with. A
worker that declines or does not answer in time is passed over; a worker
that disconnects has its jobs offered to the others. When the room finishes
its jobs are terminated. In a cluster, a job no local worker takes is offered
to the workers of other pods (``RemoteAgents``, the AgentBus), and this pod's
workers take jobs of rooms hosted elsewhere (``take``).

As a RoomListener it only records and starts tasks: it never waits on the
room's path.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from livekit.protocol import agent as lka
from livekit.protocol import models as lk

from mediapod import auth
from mediapod.rtc.participant import Participant
from mediapod.rtc.room_state import RoomState
from mediapod.rtc.track import PublishedTrack
from mediapod.signal import convert
from mediapod.signal.livekit import models
from mediapod.signal.livekit.agent_worker import AgentWorker

log = logging.getLogger(__name__)

AVAILABILITY_TIMEOUT = 5.0  # seconds a worker has to accept or decline a job (LiveKit waits as long)


def new_id(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(9).replace("-", "x").replace("_", "y")


class RemoteAgents(Protocol):
    """The workers of other pods (the AgentBus in a cluster)."""

    async def offer(self, job: lka.Job) -> str | None: ...

    def terminate(self, node_id: str, job_id: str) -> None: ...


@dataclass(eq=False)
class AgentJob:
    """One agent in one room, and the worker running it (if any)."""

    job: lka.Job
    worker: AgentWorker | None = None
    tried: set[str] = field(default_factory=set)  # workers that declined, failed or vanished
    hosted_elsewhere: bool = False  # a job another pod offered: its room is not here
    remote_node: str = ""  # a job of a room here that a worker of that pod runs


class AgentDispatcher:
    """Registered workers, the jobs they run, and the decisions of who runs what."""

    def __init__(
        self, keys: Mapping[str, str], availability_timeout: float = AVAILABILITY_TIMEOUT, remote: RemoteAgents | None = None
    ) -> None:
        self._keys = dict(keys)
        self._availability_timeout = availability_timeout
        self._remote = remote
        self.workers: dict[str, AgentWorker] = {}
        self.jobs: dict[str, AgentJob] = {}
        self._rooms: dict[str, lk.Room] = {}  # open rooms of this node, by name
        self._tasks: set[asyncio.Task[bool]] = set()

    # -- workers ---------------------------------------------------------------

    def register(self, worker: AgentWorker) -> None:
        self.workers[worker.id] = worker
        log.info("agent worker %s registered (agent name %r)", worker.id, worker.agent_name)

    def unregister(self, worker: AgentWorker) -> None:
        """The worker's connection ended: offer its jobs to the others."""
        if self.workers.pop(worker.id, None) is None:
            return
        worker.lost()
        log.info("agent worker %s gone with %d job(s)", worker.id, len(worker.jobs))
        for job_id in sorted(worker.jobs):
            job = self.jobs.get(job_id)
            if job is not None and job.worker is worker:
                job.worker = None
                job.tried.add(worker.id)
                self._start(job)
        worker.jobs.clear()

    def job_status(self, worker: AgentWorker, update: lka.UpdateJobStatus) -> None:
        """A worker's report on one of its jobs; a finished one is forgotten (its room keeps no agent)."""
        job = self.jobs.get(update.job_id)
        if job is None or job.worker is not worker:
            return
        job.job.state.status = update.status
        if update.status in (lka.JS_SUCCESS, lka.JS_FAILED):
            worker.jobs.discard(update.job_id)
            del self.jobs[update.job_id]

    # -- dispatch --------------------------------------------------------------

    def dispatch(self, room: str, agent_name: str, metadata: str = "", dispatch_id: str = "") -> lka.Job | None:
        """Start a job for ``agent_name`` in the open room ``room``; None if the room is not open here."""
        info = self._rooms.get(room)
        if info is None:
            return None
        job = lka.Job(
            id=new_id("AJ_"), dispatch_id=dispatch_id or new_id("AD_"), type=lka.JT_ROOM, room=info,
            metadata=metadata, agent_name=agent_name, state=lka.JobState(status=lka.JS_PENDING),
        )
        self.jobs[job.id] = AgentJob(job)
        self._start(self.jobs[job.id])
        return job

    def room_jobs(self, room: str) -> list[lka.Job]:
        return [j.job for j in self.jobs.values() if j.job.room.name == room]

    def cancel(self, room: str, dispatch_id: str) -> list[lka.Job]:
        """End every job of a dispatch in a room (DeleteDispatch); returns them."""
        ended = [j for j in self.jobs.values() if j.job.dispatch_id == dispatch_id and j.job.room.name == room]
        for job in ended:
            self._terminate(job)
        return [j.job for j in ended]

    def _start(self, job: AgentJob) -> None:
        task = asyncio.get_running_loop().create_task(self._assign(job), name=f"agent job {job.job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _candidates(self, job: AgentJob) -> list[AgentWorker]:
        """Workers that serve this agent and may take it, least loaded first (fewest jobs breaking ties)."""
        eligible = [
            w for w in self.workers.values() if w.agent_name == job.job.agent_name and w.available and w.id not in job.tried
        ]
        return sorted(eligible, key=lambda w: (w.load, len(w.jobs)))

    def _open(self, job: AgentJob) -> bool:
        """Whether the job is still wanted: not ended, and its room open (here, or on the pod that offered it)."""
        return job.job.id in self.jobs and (job.hosted_elsewhere or job.job.room.name in self._rooms)

    async def _assign(self, job: AgentJob) -> bool:
        """Ask workers in turn until one accepts, then assign it the job with a token for the room; then other pods."""
        while self._open(job):
            candidates = self._candidates(job)
            if not candidates:
                return await self._assign_elsewhere(job)
            worker = candidates[0]
            job.tried.add(worker.id)
            answer = await self._ask(worker, job.job)
            if answer is None or not answer.available or worker.id not in self.workers:
                continue
            if not self._open(job):
                return False  # the room ended while the worker thought about it
            job.worker = worker
            worker.jobs.add(job.job.id)
            job.job.state.status = lka.JS_RUNNING
            job.job.state.worker_id = worker.id
            job.job.state.participant_identity = answer.participant_identity or f"agent-{job.job.id}"
            worker.send(lka.ServerMessage(assignment=lka.JobAssignment(job=job.job, token=self._token(worker, job.job, answer))))
            log.info("agent job %s in room %s assigned to worker %s", job.job.id, job.job.room.name, worker.id)
            return True
        return False

    async def _assign_elsewhere(self, job: AgentJob) -> bool:
        """No worker here took it: a job of a room here goes to another pod's workers, if one takes it."""
        node = None
        if self._remote is not None and not job.hosted_elsewhere:
            node = await self._remote.offer(job.job)
        if node is None or not self._open(job):
            log.warning("no agent worker for %r took job %s in room %s", job.job.agent_name, job.job.id, job.job.room.name)
            job.job.state.status = lka.JS_FAILED
            return False
        job.remote_node = node
        job.job.state.status = lka.JS_RUNNING
        return True

    # -- jobs of rooms on other pods -----------------------------------------------

    async def take(self, job: lka.Job) -> bool:
        """Another pod's job: run it on a worker here if one takes it."""
        local = AgentJob(job, hosted_elsewhere=True)
        if not self._candidates(local):
            return False
        self.jobs[job.id] = local
        if await self._assign(local):
            return True
        self.jobs.pop(job.id, None)
        return False

    def end(self, job_id: str) -> None:
        """The pod hosting the job's room says it is over."""
        job = self.jobs.get(job_id)
        if job is not None:
            self._terminate(job)

    async def _ask(self, worker: AgentWorker, job: lka.Job) -> lka.AvailabilityResponse | None:
        future: asyncio.Future[lka.AvailabilityResponse] = asyncio.get_running_loop().create_future()
        worker.pending[job.id] = future
        worker.send(lka.ServerMessage(availability=lka.AvailabilityRequest(job=job)))
        try:
            return await asyncio.wait_for(future, self._availability_timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            worker.pending.pop(job.id, None)
            return None

    def _token(self, worker: AgentWorker, job: lka.Job, answer: lka.AvailabilityResponse) -> str:
        """A join token for the job's room, for the identity the worker chose, with the permissions it registered."""
        permissions = worker.permissions
        grant = auth.VideoGrant(
            room_join=True, room=job.room.name, agent=True,
            can_publish=permissions.can_publish, can_subscribe=permissions.can_subscribe,
            can_publish_data=permissions.can_publish_data, hidden=permissions.hidden,
        )
        token = auth.AccessToken(worker.api_key, self._keys[worker.api_key]).with_grant(grant)
        token = token.with_identity(job.state.participant_identity).with_name(answer.participant_name)
        return token.with_metadata(answer.participant_metadata).with_attributes(dict(answer.participant_attributes)).to_jwt()

    def _terminate(self, job: AgentJob) -> None:
        self.jobs.pop(job.job.id, None)
        if job.worker is not None:
            job.worker.jobs.discard(job.job.id)
            job.worker.send(lka.ServerMessage(termination=lka.JobTermination(job_id=job.job.id)))

    # -- RoomListener ------------------------------------------------------------

    def room_started(self, room: RoomState) -> None:
        self._rooms[room.name] = models.room(convert.room_info(room))
        named = [(name, metadata) for name, metadata in room.agents if name]  # the creating token's roomConfig.agents
        if self._remote is not None or any(w.agent_name == "" for w in self.workers.values()):
            self.dispatch(room.name, "")
        for agent_name, metadata in named:
            self.dispatch(room.name, agent_name, metadata)

    def room_finished(self, room: RoomState) -> None:
        self._rooms.pop(room.name, None)
        for job in [j for j in self.jobs.values() if j.job.room.name == room.name and not j.hosted_elsewhere]:
            if job.remote_node and self._remote is not None:
                self.jobs.pop(job.job.id, None)
                self._remote.terminate(job.remote_node, job.job.id)
            else:
                self._terminate(job)

    def participant_joined(self, room: RoomState, participant: Participant) -> None:
        pass

    def participant_left(self, room: RoomState, participant: Participant) -> None:
        pass

    def track_published(self, room: RoomState, participant: Participant, track: PublishedTrack) -> None:
        pass

    def track_unpublished(self, room: RoomState, participant: Participant, track: PublishedTrack) -> None:
        pass

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
