"""Agent jobs across nodes: a room's job offered to the agent workers connected to other pods.

A worker serves rooms on every pod, as LiveKit's do. The pod hosting a room
(its dispatcher found no local worker to take a job) offers the job to its
peers one at a time, least loaded first, over the relay's Redis channels;
a peer runs its own dispatch among its workers and answers whether one took
it. The worker's job process then joins through the pod it is connected to,
whose signal relay carries it to the host. When the room finishes, the host
tells the running node to end the job. LiveKit's own messages ride inside
``RelayMessage`` (AvailabilityRequest, AvailabilityResponse, JobTermination).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Protocol

from google.protobuf.message import DecodeError
from livekit.protocol import agent as lka

from mediapod.protocol import relay_pb2
from mediapod.rtc.errors import RequestError

log = logging.getLogger(__name__)

# A peer runs a whole local dispatch (each of its workers has 5 s to answer) before it answers.
OFFER_TIMEOUT = 12.0


class PeerRouter(Protocol):
    """What the bus needs of the RedisRouter."""

    @property
    def node_id(self) -> str: ...

    def peers(self) -> list[str]: ...

    async def send(self, node_id: str, message: relay_pb2.RelayMessage) -> None: ...


class LocalAgents(Protocol):
    """What the bus needs of this node's AgentDispatcher."""

    async def take(self, job: lka.Job) -> bool: ...

    def end(self, job_id: str) -> None: ...


class AgentBus:
    """Offers this node's jobs to its peers' workers and answers their offers with this node's workers.

    Until ``start`` (the cluster's Redis is up) it has no peers: offers find nobody.
    """

    def __init__(self, offer_timeout: float = OFFER_TIMEOUT) -> None:
        self._offer_timeout = offer_timeout
        self._router: PeerRouter | None = None
        self._local: LocalAgents | None = None
        self._waiting: dict[tuple[str, str], asyncio.Future[lka.AvailabilityResponse]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, router: PeerRouter, local: LocalAgents) -> None:
        self._router, self._local = router, local

    # -- this node's jobs, run elsewhere -------------------------------------------

    async def offer(self, job: lka.Job) -> str | None:
        """The peer whose worker took the job, or None when no peer's did."""
        if self._router is None:
            return None
        for node_id in self._router.peers():
            answer = await self._ask(node_id, job)
            if answer is not None and answer.available:
                log.info("agent job %s in room %s runs on a worker of node %s", job.id, job.room.name, node_id)
                return node_id
        return None

    async def _ask(self, node_id: str, job: lka.Job) -> lka.AvailabilityResponse | None:
        assert self._router is not None
        future: asyncio.Future[lka.AvailabilityResponse] = asyncio.get_running_loop().create_future()
        self._waiting[(node_id, job.id)] = future
        offer = relay_pb2.RelayMessage(session_id=job.id, agent_offer=lka.AvailabilityRequest(job=job).SerializeToString())
        try:
            await self._router.send(node_id, offer)
            return await asyncio.wait_for(future, self._offer_timeout)
        except (RequestError, asyncio.TimeoutError):
            return None
        finally:
            self._waiting.pop((node_id, job.id), None)

    def terminate(self, node_id: str, job_id: str) -> None:
        """The job's room finished here: tell the node running it."""
        end = relay_pb2.RelayMessage(session_id=job_id, agent_end=lka.JobTermination(job_id=job_id).SerializeToString())
        self._spawn(self._send_quietly(node_id, end))

    # -- messages from peers ---------------------------------------------------------

    def handle(self, message: relay_pb2.RelayMessage) -> bool:
        """Take an agent message from another node; False if it is not one (the signal relay's)."""
        kind = message.WhichOneof("message")
        try:
            if kind == "agent_offer":
                request = lka.AvailabilityRequest.FromString(message.agent_offer)
                self._spawn(self._answer(message.from_node, request.job))
            elif kind == "agent_answer":
                future = self._waiting.get((message.from_node, message.session_id))
                if future is not None and not future.done():
                    future.set_result(lka.AvailabilityResponse.FromString(message.agent_answer))
            elif kind == "agent_end":
                if self._local is not None:
                    self._local.end(lka.JobTermination.FromString(message.agent_end).job_id)
            else:
                return False
        except DecodeError:
            log.warning("dropped a malformed %s from node %s", kind, message.from_node)
        return True

    async def _answer(self, node_id: str, job: lka.Job) -> None:
        taken = self._local is not None and await self._local.take(job)
        answer = lka.AvailabilityResponse(job_id=job.id, available=taken)
        await self._send_quietly(node_id, relay_pb2.RelayMessage(session_id=job.id, agent_answer=answer.SerializeToString()))

    async def _send_quietly(self, node_id: str, message: relay_pb2.RelayMessage) -> None:
        if self._router is not None:
            with contextlib.suppress(RequestError):
                await self._router.send(node_id, message)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
