"""What a room tells the world outside it: its lifecycle, as a narrow listener interface.

Webhooks and agent dispatch need to hear that a room started, who joined and
left, and what was published; the room must not know either exists (rtc/
never imports them). So the room calls a ``RoomListener``, and the pod hands
it a ``RoomListeners`` that fans each event out to whoever listens.
Listeners only record or enqueue: they run on the signaling path and must
not block it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from mediapod.rtc.participant import Participant
from mediapod.rtc.room_state import RoomState
from mediapod.rtc.track import PublishedTrack

log = logging.getLogger(__name__)


class RoomListener(Protocol):
    """Told of each lifecycle event of every room on the node, in the order they happen."""

    def room_started(self, room: RoomState) -> None: ...
    def room_finished(self, room: RoomState) -> None: ...
    def participant_joined(self, room: RoomState, participant: Participant) -> None: ...
    def participant_left(self, room: RoomState, participant: Participant) -> None: ...
    def track_published(self, room: RoomState, participant: Participant, track: PublishedTrack) -> None: ...
    def track_unpublished(self, room: RoomState, participant: Participant, track: PublishedTrack) -> None: ...


class RoomListeners:
    """Fans every event out to several listeners; one listener's bug never reaches the room or the others."""

    def __init__(self, listeners: Sequence[RoomListener] = ()) -> None:
        self._listeners = list(listeners)

    def _each(self, event: str, *args: object) -> None:
        for listener in self._listeners:
            try:
                getattr(listener, event)(*args)
            except Exception:  # noqa: BLE001 - a listener must never break the room that calls it
                log.exception("room listener %s failed on %s", type(listener).__name__, event)

    def room_started(self, room: RoomState) -> None:
        self._each("room_started", room)

    def room_finished(self, room: RoomState) -> None:
        self._each("room_finished", room)

    def participant_joined(self, room: RoomState, participant: Participant) -> None:
        self._each("participant_joined", room, participant)

    def participant_left(self, room: RoomState, participant: Participant) -> None:
        self._each("participant_left", room, participant)

    def track_published(self, room: RoomState, participant: Participant, track: PublishedTrack) -> None:
        self._each("track_published", room, participant, track)

    def track_unpublished(self, room: RoomState, participant: Participant, track: PublishedTrack) -> None:
        self._each("track_unpublished", room, participant, track)
