"""One registered livekit-agents worker, as the dispatcher sees it: what it serves, how loaded, what it runs.

The WebSocket lives in agent_routes; this object holds the worker's state
and an outbox the route drains, so the dispatcher decides without touching a
socket (and its tests need none).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from livekit.protocol import agent as lka
from livekit.protocol import models as lk


@dataclass(eq=False)
class AgentWorker:
    """A worker registered at /agent: its agent name ("" = automatic dispatch), permissions, load and jobs."""

    id: str
    agent_name: str
    api_key: str  # the key it authenticated with: its jobs' tokens are signed with the same one
    permissions: lk.ParticipantPermission
    load: float = 0.0
    available: bool = True  # UpdateWorkerStatus: WS_AVAILABLE or WS_FULL
    jobs: set[str] = field(default_factory=set)
    outbox: asyncio.Queue[lka.ServerMessage] = field(default_factory=asyncio.Queue)
    # Availability answers the dispatcher is waiting for, by job id.
    pending: dict[str, asyncio.Future[lka.AvailabilityResponse]] = field(default_factory=dict)

    def send(self, message: lka.ServerMessage) -> None:
        self.outbox.put_nowait(message)

    def answer(self, response: lka.AvailabilityResponse) -> bool:
        """Hand an availability answer to whoever asked; False if nobody did (a late or made-up answer)."""
        future = self.pending.pop(response.job_id, None)
        if future is None or future.done():
            return False
        future.set_result(response)
        return True

    def update(self, status: lka.UpdateWorkerStatus) -> None:
        if status.HasField("status"):
            self.available = status.status == lka.WS_AVAILABLE
        self.load = status.load

    def lost(self) -> None:
        """Its connection ended: nobody waits for its answers any more."""
        for future in self.pending.values():
            if not future.done():
                future.cancel()
        self.pending.clear()
