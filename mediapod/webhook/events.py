"""Room lifecycle events as LiveKit's WebhookEvent messages.

A RoomListener: the room calls it on the signaling path, so it only takes a
snapshot (the protobuf is built now, while the facts are true) and hands it
to the notifier's queue.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from livekit.protocol import models as lk
from livekit.protocol.webhook import WebhookEvent

from mediapod.rtc.participant import Participant
from mediapod.rtc.room_state import RoomState
from mediapod.rtc.track import PublishedTrack
from mediapod.signal import convert
from mediapod.signal.livekit import models


def _room(room: RoomState) -> lk.Room:
    return models.room(convert.room_info(room))


class WebhookEvents:
    """Turns each room event into a WebhookEvent and passes it to ``post`` (the notifier's enqueue)."""

    def __init__(self, post: Callable[[WebhookEvent], None]) -> None:
        self._post = post

    def _event(self, name: str, room: RoomState, **fields: object) -> None:
        self._post(
            WebhookEvent(event=name, room=_room(room), id=f"EV_{uuid.uuid4().hex[:12]}", created_at=int(time.time()), **fields)
        )

    def room_started(self, room: RoomState) -> None:
        self._event("room_started", room)

    def room_finished(self, room: RoomState) -> None:
        self._event("room_finished", room)

    def participant_joined(self, room: RoomState, participant: Participant) -> None:
        self._event("participant_joined", room, participant=models.participant(convert.participant_info(participant)))

    def participant_left(self, room: RoomState, participant: Participant) -> None:
        self._event("participant_left", room, participant=models.participant(convert.participant_info(participant)))

    def track_published(self, room: RoomState, participant: Participant, track: PublishedTrack) -> None:
        self._event(
            "track_published", room,
            participant=models.participant(convert.participant_info(participant)),
            track=models.track(convert.track_info(track)),
        )

    def track_unpublished(self, room: RoomState, participant: Participant, track: PublishedTrack) -> None:
        self._event(
            "track_unpublished", room,
            participant=models.participant(convert.participant_info(participant)),
            track=models.track(convert.track_info(track)),
        )
