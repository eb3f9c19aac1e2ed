"""A room: who may join, who hears of whom, auto-subscription, and when it closes."""

from __future__ import annotations

import asyncio

import pytest
import sdp_transform

from mediapod.config import LimitsConfig
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.participant import LeaveReason, ParticipantState, Permission
from mediapod.rtc.room import Room
from tests.support.fake_client import MICROPHONE, Member, Pod, join, new_room, publish_chrome_offer


def offered_tracks(member: Member) -> list[str]:
    """The track ids of the sendonly m-lines in the last subscriber offer the member got."""
    offers = member.sink.of("offer")
    if not offers:
        return []
    media = sdp_transform.parse(offers[-1][0])["media"]
    return [m["msid"].split()[1] for m in media if m["direction"] == "sendonly"]


async def test_a_newcomer_is_announced_to_the_others_once_activated(pod: Pod, room: Room) -> None:
    bob = join(pod, room, "bob")
    alice = join(pod, room, "alice", activate=False)
    assert bob.sink.updates_about("alice") == [], "announced before its client had its join response"

    room.activate(alice.participant)

    assert bob.sink.updates_about("alice") == [("alice", ParticipantState.JOINED, ())]
    assert alice.sink.updates_about("alice") == [], "a participant is not told about itself"


async def test_a_second_join_with_the_same_identity_replaces_the_first(pod: Pod, room: Room) -> None:
    first = join(pod, room, "alice")

    second = join(pod, room, "alice")

    assert room.participants["alice"] is second.participant
    assert first.sink.of("leave") == [(LeaveReason.DUPLICATE_IDENTITY,)]
    assert first.participant.state == ParticipantState.DISCONNECTED
    assert pod.counters.leaves["duplicate_identity"] == 1


async def test_a_full_room_refuses_the_next_participant(pod: Pod) -> None:
    room = new_room(pod, max_participants=2)
    try:
        join(pod, room, "alice")
        join(pod, room, "bob")
        with pytest.raises(RequestError) as error:
            join(pod, room, "carol")
        assert error.value.code == ErrorCode.RESOURCE_EXHAUSTED
        assert set(room.participants) == {"alice", "bob"}
        join(pod, room, "bob")  # a rejoin replaces, so it fits
    finally:
        room.close(reason="test over")


async def test_claims_over_their_limits_are_refused(pod: Pod) -> None:
    room = new_room(pod, limits=LimitsConfig(max_identity_length=5))
    try:
        with pytest.raises(RequestError) as error:
            join(pod, room, "alexandra")
        assert error.value.code == ErrorCode.INVALID_ARGUMENT
        assert "limits.max_identity_length" in error.value.message
        assert room.participants == {}
    finally:
        room.close(reason="test over")


async def test_publishing_subscribes_everyone_who_auto_subscribes_and_may(pod: Pod, room: Room) -> None:
    auto = join(pod, room, "auto")
    manual = join(pod, room, "manual", auto_subscribe=False)
    blind = join(pod, room, "blind", permission=Permission(can_subscribe=False))
    waiting = join(pod, room, "waiting", activate=False)
    alice = join(pod, room, "alice")

    await publish_chrome_offer(alice, MICROPHONE)
    (sid,) = alice.participant.tracks

    assert offered_tracks(auto) == [sid]
    assert offered_tracks(manual) == offered_tracks(blind) == offered_tracks(waiting) == []
    assert offered_tracks(alice) == [], "a publisher is not subscribed to its own track"


async def test_a_late_joiner_is_subscribed_to_what_is_already_published(pod: Pod, room: Room) -> None:
    alice = join(pod, room, "alice")
    await publish_chrome_offer(alice, MICROPHONE)
    (sid,) = alice.participant.tracks

    late = join(pod, room, "late")

    assert offered_tracks(late) == [sid]


async def test_a_leaving_publisher_is_unsubscribed_from_everyone(pod: Pod, room: Room) -> None:
    bob = join(pod, room, "bob")
    alice = join(pod, room, "alice")
    await publish_chrome_offer(alice, MICROPHONE)
    assert bob.participant.subscriber.downtrack_count == 1

    room.remove_participant(alice.participant, LeaveReason.CLIENT_INITIATED)

    assert bob.participant.subscriber.downtrack_count == 0
    assert bob.sink.updates_about("alice")[-1][1] == ParticipantState.DISCONNECTED
    assert alice.sink.of("leave") == [], "a client that asked to leave is not told to leave"
    assert pod.counters.leaves["client_initiated"] == 1


async def test_removing_a_participant_twice_has_effect_once(pod: Pod, room: Room) -> None:
    bob = join(pod, room, "bob")
    alice = join(pod, room, "alice")

    room.remove_participant(alice.participant, LeaveReason.PARTICIPANT_REMOVED)
    heard = list(bob.sink.messages)
    room.remove_participant(alice.participant, LeaveReason.PARTICIPANT_REMOVED)

    assert alice.sink.of("leave") == [(LeaveReason.PARTICIPANT_REMOVED,)]
    assert bob.sink.messages == heard
    assert pod.counters.leaves["participant_removed"] == 1


async def test_reports_about_a_participant_no_longer_in_the_room_reach_no_one(pod: Pod, room: Room) -> None:
    bob = join(pod, room, "bob")
    alice = join(pod, room, "alice")
    await publish_chrome_offer(alice, MICROPHONE)
    (track,) = alice.participant.tracks.values()
    room.remove_participant(alice.participant, LeaveReason.PARTICIPANT_REMOVED)
    heard = list(bob.sink.messages)

    room.broadcast_update(alice.participant)
    room.on_track_published(alice.participant, track)
    room.on_track_unpublished(alice.participant, track)

    assert bob.sink.messages == heard


async def test_a_hidden_participant_is_never_announced(pod: Pod, room: Room) -> None:
    recorder = join(pod, room, "recorder", permission=Permission(hidden=True))
    bob = join(pod, room, "bob")
    await publish_chrome_offer(recorder, MICROPHONE)

    room.remove_participant(recorder.participant, LeaveReason.CLIENT_INITIATED)

    assert bob.sink.updates_about("recorder") == []
    assert len(recorder.sink.updates_about("bob")) == 1, "a hidden participant still sees the others"


async def test_an_empty_room_closes_after_its_empty_timeout(pod: Pod) -> None:
    closed: list[Room] = []
    room = new_room(pod, closed=closed, empty_timeout=0)

    await asyncio.sleep(0.02)

    assert closed == [room] and room.closed


async def test_a_room_someone_joined_closes_only_after_the_departure_timeout(pod: Pod) -> None:
    closed: list[Room] = []
    room = new_room(pod, closed=closed, empty_timeout=0, departure_timeout=1)
    alice = join(pod, room, "alice")
    await asyncio.sleep(0.05)
    assert closed == [], "a room with someone in it closed"

    room.remove_participant(alice.participant, LeaveReason.CLIENT_INITIATED)
    await asyncio.sleep(0.5)
    assert closed == [], "the empty timeout, not the departure timeout, applied after a departure"
    join(pod, room, "bob")  # someone returns in time: the timer is off again
    await asyncio.sleep(0.7)

    assert closed == []
    room.close(reason="test over")


async def test_closing_a_room_disconnects_everyone_and_refuses_new_joins(pod: Pod) -> None:
    closed: list[Room] = []
    room = new_room(pod, closed=closed)
    alice = join(pod, room, "alice")
    bob = join(pod, room, "bob")

    room.close(reason="room deleted")
    room.close(reason="room deleted")

    assert alice.sink.of("leave") == bob.sink.of("leave") == [(LeaveReason.ROOM_DELETED,)]
    assert room.participants == {} and closed == [room]
    with pytest.raises(RequestError) as error:
        join(pod, room, "carol")
    assert error.value.code == ErrorCode.UNAVAILABLE


async def test_a_server_shutdown_says_so_to_everyone(pod: Pod) -> None:
    room = new_room(pod)
    alice = join(pod, room, "alice")

    room.close(reason="server shutdown")

    assert alice.sink.of("leave") == [(LeaveReason.SERVER_SHUTDOWN,)]
