"""What clients are told about their room (LiveKit's Room message), as plain values.

The room hands one to every participant's SignalSink when its metadata
changes (a RoomUpdate), and front ends describe rooms from it. It lives apart
from room.py so participant.py's SignalSink can name it without importing
the room.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RoomState:
    """A snapshot of one room: its settings, metadata and head counts at one moment."""

    sid: str
    name: str
    node_id: str
    metadata: str
    empty_timeout: int
    departure_timeout: int
    max_participants: int
    created_at: float  # unix seconds
    num_participants: int
    num_publishers: int
    # (agent name, metadata) dispatched as the room started: the creating token's roomConfig.agents.
    agents: tuple[tuple[str, str], ...] = ()
