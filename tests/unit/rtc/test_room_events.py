"""What a room tells its RoomListener: its lifecycle, in LiveKit's order, and only about those who really joined."""

from __future__ import annotations

import pytest

from mediapod.config import LimitsConfig
from mediapod.rtc.events import RoomListeners
from mediapod.rtc.participant import LeaveReason, Participant
from mediapod.rtc.room import Room, RoomSettings
from mediapod.rtc.room_state import RoomState
from mediapod.rtc.track import PublishedTrack
from tests.support.fake_client import MICROPHONE, Pod, join, publish_chrome_offer


class Recorder:
    """A RoomListener that writes down each event as (event, who, track sid)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def room_started(self, room: RoomState) -> None:
        self.events.append(("room_started", "", ""))

    def room_finished(self, room: RoomState) -> None:
        self.events.append(("room_finished", "", ""))

    def participant_joined(self, room: RoomState, participant: Participant) -> None:
        self.events.append(("participant_joined", participant.identity, ""))

    def participant_left(self, room: RoomState, participant: Participant) -> None:
        self.events.append(("participant_left", participant.identity, ""))

    def track_published(self, room: RoomState, participant: Participant, track: PublishedTrack) -> None:
        self.events.append(("track_published", participant.identity, track.sid))

    def track_unpublished(self, room: RoomState, participant: Participant, track: PublishedTrack) -> None:
        self.events.append(("track_unpublished", participant.identity, track.sid))


class Broken(Recorder):
    def participant_joined(self, room: RoomState, participant: Participant) -> None:
        raise RuntimeError("listener bug")


def room_with(pod: Pod, *listeners: Recorder) -> Room:
    settings = RoomSettings(empty_timeout=300, departure_timeout=20, max_participants=0)
    return Room("room", "RM_events", settings, pod.context, on_closed=lambda room: None, limits=LimitsConfig(),
                listener=RoomListeners(listeners))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


async def test_a_rooms_life_is_told_in_order(pod: Pod, recorder: Recorder) -> None:
    room = room_with(pod, recorder)
    alice = join(pod, room, "alice")
    await publish_chrome_offer(alice, MICROPHONE)
    [track_sid] = alice.participant.tracks
    alice.participant.unpublish(track_sid)
    room.remove_participant(alice.participant, LeaveReason.CLIENT_INITIATED)
    room.close(reason="test over")

    assert recorder.events == [
        ("room_started", "", ""),
        ("participant_joined", "alice", ""),
        ("track_published", "alice", track_sid),
        ("track_unpublished", "alice", track_sid),
        ("participant_left", "alice", ""),
        ("room_finished", "", ""),
    ]


async def test_tracks_still_published_at_leave_are_unpublished_before_the_leave(pod: Pod, recorder: Recorder) -> None:
    room = room_with(pod, recorder)
    alice = join(pod, room, "alice")
    await publish_chrome_offer(alice, MICROPHONE)
    [track_sid] = alice.participant.tracks
    room.close(reason="room deleted")

    assert recorder.events[-3:] == [
        ("track_unpublished", "alice", track_sid),
        ("participant_left", "alice", ""),
        ("room_finished", "", ""),
    ]


async def test_one_whose_join_never_completed_is_neither_joined_nor_left(pod: Pod, recorder: Recorder) -> None:
    room = room_with(pod, recorder)
    ghost = join(pod, room, "ghost", activate=False)
    room.remove_participant(ghost.participant, LeaveReason.CLIENT_INITIATED)
    room.close(reason="test over")

    assert recorder.events == [("room_started", "", ""), ("room_finished", "", "")]


async def test_a_listener_that_raises_breaks_neither_the_room_nor_the_other_listeners(pod: Pod, recorder: Recorder) -> None:
    room = room_with(pod, Broken(), recorder)
    join(pod, room, "alice")
    join(pod, room, "bob")

    assert set(room.participants) == {"alice", "bob"}
    assert [e[:2] for e in recorder.events] == [("room_started", ""), ("participant_joined", "alice"), ("participant_joined", "bob")]
    room.close(reason="test over")
