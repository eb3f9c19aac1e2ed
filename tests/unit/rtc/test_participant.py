"""A participant: announcing and publishing, its limits, leaving, and its transports' fate.

Participants live in a real Room on a pod without a socket; what the room
and the other participants hear is read from their recording sinks.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import pytest

from mediapod.config import LimitsConfig
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.participant import LeaveReason, ParticipantState, Permission
from mediapod.rtc.room import Room
from mediapod.rtc.ssrc_guard import UnknownSsrcLimits
from mediapod.rtc.track import TrackAnnouncement
from mediapod.transport import ice, peer as peer_module
from tests.support.fake_client import (
    CAMERA,
    MICROPHONE,
    SCREEN,
    Member,
    Pod,
    join,
    media_pod,
    new_room,
    publish_chrome_offer,
    rtp,
)
from tests.support.sdp_fixtures import CHROME_OFFER, minimal_offer


async def test_announcing_a_track_tells_the_client_its_sid(pod: Pod, room: Room) -> None:
    alice = join(pod, room, "alice")

    sid = alice.participant.announce_track(MICROPHONE)

    assert alice.sink.of("track_published") == [("microphone", sid, MICROPHONE)]
    assert sid.startswith("TR_")
    assert alice.participant.tracks == {}, "announced is not published until an offer carries it"


@pytest.mark.parametrize(
    ("announcement", "code"),
    [
        (TrackAnnouncement(cid="dc", name="data", kind="data"), ErrorCode.INVALID_ARGUMENT),
        (TrackAnnouncement(cid="", name="mic", kind="audio"), ErrorCode.INVALID_ARGUMENT),
        (MICROPHONE, ErrorCode.INVALID_ARGUMENT),  # the same cid twice
    ],
    ids=["not audio or video", "no cid", "cid announced twice"],
)
async def test_a_bad_announcement_is_refused(pod: Pod, room: Room, announcement: TrackAnnouncement, code: ErrorCode) -> None:
    alice = join(pod, room, "alice")
    alice.participant.announce_track(MICROPHONE)

    with pytest.raises(RequestError) as error:
        alice.participant.announce_track(announcement)

    assert error.value.code == code
    assert len(alice.sink.of("track_published")) == 1


async def test_a_token_without_can_publish_may_not_announce_or_offer(pod: Pod, room: Room) -> None:
    viewer = join(pod, room, "viewer", permission=Permission(can_publish=False))

    with pytest.raises(RequestError) as announcing:
        viewer.participant.announce_track(MICROPHONE)
    with pytest.raises(RequestError) as offering:
        await viewer.participant.handle_offer("offer", viewer.publisher.own(CHROME_OFFER))

    assert announcing.value.code == offering.value.code == ErrorCode.PERMISSION_DENIED
    assert viewer.sink.of("answer") == []


async def test_announcements_beyond_the_pending_and_published_limits_are_refused(pod: Pod) -> None:
    room = new_room(pod, limits=LimitsConfig(max_pending_tracks=2, max_published_tracks=3))
    try:
        alice = join(pod, room, "alice")
        await publish_chrome_offer(alice, MICROPHONE, CAMERA)
        alice.participant.announce_track(SCREEN)

        with pytest.raises(RequestError) as published:
            alice.participant.announce_track(TrackAnnouncement(cid="fourth", name="x", kind="audio"))
        assert published.value.code == ErrorCode.RESOURCE_EXHAUSTED
        assert "limits.max_published_tracks" in published.value.message

        bob = join(pod, room, "bob")
        for cid in ("a", "b"):
            bob.participant.announce_track(TrackAnnouncement(cid=cid, name=cid, kind="audio"))
        with pytest.raises(RequestError) as pending:
            bob.participant.announce_track(TrackAnnouncement(cid="c", name="c", kind="audio"))
        assert pending.value.code == ErrorCode.RESOURCE_EXHAUSTED
        assert "limits.max_pending_tracks" in pending.value.message
    finally:
        room.close(reason="test over")


async def test_an_offer_publishes_its_announced_tracks_and_the_room_hears_of_them(pod: Pod, room: Room) -> None:
    bob = join(pod, room, "bob", auto_subscribe=False)
    alice = join(pod, room, "alice")

    await publish_chrome_offer(alice)

    assert alice.sink.kinds()[-1] == "answer"
    published = {t.announcement.cid for t in alice.participant.tracks.values()}
    assert published == {"microphone", "camera", "screen"}
    (_, _, last_tracks) = bob.sink.updates_about("alice")[-1]
    assert {sid for sid, _ in last_tracks} == set(alice.participant.tracks)


async def test_an_offered_kind_that_contradicts_its_announcement_changes_nothing(pod: Pod, room: Room) -> None:
    alice = join(pod, room, "alice")
    alice.participant.announce_track(TrackAnnouncement(cid="camera", name="cam", kind="audio"))

    with pytest.raises(RequestError) as error:
        await alice.participant.handle_offer("offer", alice.publisher.own(CHROME_OFFER))

    assert error.value.code == ErrorCode.INVALID_ARGUMENT
    assert "announced as audio but offered as video" in error.value.message
    assert alice.participant.tracks == {} and alice.sink.of("answer") == []


@pytest.mark.parametrize(
    ("sdp_type", "text", "mentions"),
    [
        ("answer", CHROME_OFFER, "expected an SDP offer"),
        ("offer", "v=0\r\nm=audio\r\n", "invalid SDP offer"),
        ("offer", CHROME_OFFER + "a=x:" + "y" * (128 * 1024) + "\r\n", "limits.max_sdp_size"),
        ("offer", minimal_offer().replace("sha-256", "md5"), "no a=fingerprint this server can verify"),
    ],
    ids=["an answer", "garbage", "oversized", "unverifiable fingerprint"],
)
async def test_a_bad_offer_is_refused_with_a_reason(pod: Pod, room: Room, sdp_type: str, text: str, mentions: str) -> None:
    alice = join(pod, room, "alice")

    with pytest.raises(RequestError) as error:
        await alice.participant.handle_offer(sdp_type, text)

    assert error.value.code == ErrorCode.INVALID_ARGUMENT
    assert mentions in error.value.message
    assert alice.sink.of("answer") == []


@pytest.mark.parametrize(
    ("sdp_type", "text", "mentions"),
    [
        ("answer", "this is not SDP", "invalid subscriber answer"),
        ("offer", None, "expected an SDP answer"),
        ("answer", "md2", "no a=fingerprint this server can verify"),
    ],
    ids=["garbage", "an offer instead of an answer", "only unverifiable fingerprints"],
)
async def test_a_bad_subscriber_answer_is_refused_and_the_offer_stays_pending(
    pod: Pod, room: Room, sdp_type: str, text: str | None, mentions: str
) -> None:
    alice, bob = join(pod, room, "alice"), join(pod, room, "bob")
    await publish_chrome_offer(alice, MICROPHONE)
    [offer] = bob.sink.of("offer")
    good = bob.subscriber.answer(offer[0])
    if text is None:
        text = good
    elif text == "md2":  # RFC 4572 names it; no DTLS stack checks it
        text = re.sub(r"a=fingerprint:sha-256 ", "a=fingerprint:md2 ", good)

    with pytest.raises(RequestError) as refused:
        await bob.participant.handle_answer(sdp_type, text)

    assert refused.value.code == ErrorCode.INVALID_ARGUMENT
    assert mentions in refused.value.message
    await bob.participant.handle_answer("answer", good)  # the offer still waited for its answer


async def test_a_track_left_out_of_a_later_offer_is_unpublished(pod: Pod, room: Room) -> None:
    alice = join(pod, room, "alice")
    await publish_chrome_offer(alice)
    microphone = next(sid for sid, t in alice.participant.tracks.items() if t.kind == "audio")
    # The same offer with its audio m-line now rejected, as a client that removed its microphone sends.
    without_mic = re.sub(r"m=audio 9 (UDP/TLS/RTP/SAVPF 111 )", r"m=audio 0 \1", alice.publisher.own(CHROME_OFFER), count=1)

    await alice.participant.handle_offer("offer", without_mic)

    assert microphone not in alice.participant.tracks
    assert alice.sink.of("track_unpublished") == [(microphone,)]


async def test_muting_a_track_is_told_to_the_others_once(pod: Pod, room: Room) -> None:
    bob = join(pod, room, "bob", auto_subscribe=False)
    alice = join(pod, room, "alice")
    await publish_chrome_offer(alice, MICROPHONE)
    (sid,) = alice.participant.tracks
    heard = len(bob.sink.updates_about("alice"))

    alice.participant.set_track_muted(sid, True)
    alice.participant.set_track_muted(sid, True)

    assert bob.sink.updates_about("alice")[heard:] == [("alice", ParticipantState.ACTIVE, ((sid, True),))]
    with pytest.raises(RequestError) as error:
        alice.participant.set_track_muted("TR_nope", True)
    assert error.value.code == ErrorCode.NOT_FOUND


async def test_subscription_requests_name_tracks_of_others_in_the_room(pod: Pod, room: Room) -> None:
    alice = join(pod, room, "alice")
    await publish_chrome_offer(alice, MICROPHONE)
    (own,) = alice.participant.tracks
    bob = join(pod, room, "bob", auto_subscribe=False)
    carol = join(pod, room, "carol", permission=Permission(can_subscribe=False))

    cases: list[tuple[Callable[[], None], ErrorCode]] = [
        (lambda: bob.participant.update_subscriptions(["TR_nope"], True), ErrorCode.NOT_FOUND),
        (lambda: alice.participant.update_subscriptions([own], True), ErrorCode.INVALID_ARGUMENT),
        (lambda: carol.participant.update_subscriptions([own], True), ErrorCode.PERMISSION_DENIED),
        (lambda: bob.participant.update_track_settings([own], 1, 0, 0, None), ErrorCode.NOT_FOUND),
    ]
    for request, code in cases:
        with pytest.raises(RequestError) as error:
            request()
        assert error.value.code == code

    bob.participant.update_subscriptions([own], True)
    assert bob.participant.subscriber.subscribed_track_sids() == [own]
    assert len(bob.sink.of("offer")) == 1
    bob.participant.update_subscriptions([own], False)
    assert bob.participant.subscriber.subscribed_track_sids() == []


def _requests(member: Member) -> dict[str, Callable[[], Awaitable[object] | object]]:
    participant = member.participant
    return {
        "announce": lambda: participant.announce_track(TrackAnnouncement(cid="late", name="late", kind="audio")),
        "offer": lambda: participant.handle_offer("offer", member.publisher.own(CHROME_OFFER)),
        "answer": lambda: participant.handle_answer("answer", "v=0\r\n"),
        "unpublish": lambda: participant.unpublish("TR_x"),
        "mute": lambda: participant.set_track_muted("TR_x", True),
        "subscribe": lambda: participant.update_subscriptions([], True),
        "settings": lambda: participant.update_track_settings([], 0, 0, 0, None),
    }


async def test_a_participant_that_has_left_refuses_every_request_and_the_room_hears_nothing(pod: Pod, room: Room) -> None:
    watcher = join(pod, room, "watcher")
    ghost = join(pod, room, "ghost")
    ghost.participant.announce_track(CAMERA)
    room.remove_participant(ghost.participant, LeaveReason.PARTICIPANT_REMOVED)
    heard = list(watcher.sink.messages)

    for name, request in _requests(ghost).items():
        with pytest.raises(RequestError) as error:
            result = request()
            if asyncio.iscoroutine(result):
                await result
        assert error.value.code == ErrorCode.FAILED_PRECONDITION, name

    assert watcher.sink.messages == heard
    assert ghost.sink.of("leave") == [(LeaveReason.PARTICIPANT_REMOVED,)]


async def test_an_offer_parsed_while_the_participant_is_removed_changes_nothing(pod: Pod, room: Room) -> None:
    watcher = join(pod, room, "watcher")
    ghost = join(pod, room, "ghost")
    ghost.participant.announce_track(CAMERA)
    offering = asyncio.ensure_future(ghost.participant.handle_offer("offer", ghost.publisher.own(CHROME_OFFER)))
    await asyncio.sleep(0)  # the parse is under way off the loop
    room.remove_participant(ghost.participant, LeaveReason.PARTICIPANT_REMOVED)
    heard = list(watcher.sink.messages)

    with pytest.raises(RequestError) as error:
        await offering

    assert error.value.code == ErrorCode.FAILED_PRECONDITION
    assert watcher.sink.messages == heard and watcher.sink.of("offer") == []


async def test_connecting_a_transport_makes_the_participant_active_and_the_room_hears_it(pod: Pod, room: Room) -> None:
    bob = join(pod, room, "bob", auto_subscribe=False)
    alice = join(pod, room, "alice")
    assert alice.participant.state == ParticipantState.JOINED

    await publish_chrome_offer(alice, MICROPHONE)

    assert alice.participant.state == ParticipantState.ACTIVE
    assert bob.sink.updates_about("alice")[-1][1] == ParticipantState.ACTIVE


async def test_a_failed_transport_ends_the_participant_as_transport_failed(
    pod: Pod, room: Room, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ice, "CONSENT_TIMEOUT", 0.05)
    monkeypatch.setattr(peer_module, "CONSENT_SWEEP_INTERVAL", 0.02)
    bob = join(pod, room, "bob", auto_subscribe=False)
    alice = join(pod, room, "alice")
    await publish_chrome_offer(alice, MICROPHONE)

    await asyncio.sleep(0.2)  # the client stopped answering: consent expires

    assert alice.sink.of("leave") == [(LeaveReason.TRANSPORT_FAILED,)]
    assert alice.participant.state == ParticipantState.DISCONNECTED
    assert "alice" not in room.participants
    assert bob.sink.updates_about("alice")[-1][1] == ParticipantState.DISCONNECTED
    assert pod.counters.leaves["transport_failed"] == 1


async def test_a_transport_that_never_connected_does_not_end_the_participant() -> None:
    pod = media_pod(connect_timeout=0.05)
    room = new_room(pod)
    try:
        alice = join(pod, room, "alice")
        alice.participant.announce_track(MICROPHONE)
        await alice.participant.handle_offer("offer", alice.publisher.own(CHROME_OFFER))

        await asyncio.sleep(0.2)

        assert pod.counters.transport_connect_timeouts == 1
        assert alice.sink.of("leave") == []
        assert room.participants["alice"] is alice.participant
        assert alice.participant.state == ParticipantState.JOINED
    finally:
        room.close(reason="test over")


async def test_too_many_unannounced_ssrcs_end_the_participant_once_as_a_protocol_violation() -> None:
    pod = media_pod(unknown_ssrc_limits=UnknownSsrcLimits(max_ssrcs=2))
    room = new_room(pod)
    try:
        alice = join(pod, room, "alice")
        await publish_chrome_offer(alice, MICROPHONE)
        for ssrc in (0xA1, 0xA2):
            alice.publisher.send_rtp(rtp(ssrc, 1))
        await asyncio.sleep(0.01)
        assert alice.sink.of("leave") == [], "within the limit is a client's mistake, not abuse"

        for ssrc in (0xA3, 0xA4, 0xA5):
            alice.publisher.send_rtp(rtp(ssrc, 1))
        await asyncio.sleep(0.01)

        assert alice.sink.of("leave") == [(LeaveReason.PROTOCOL_VIOLATION,)]
        assert "alice" not in room.participants
        assert pod.counters.leaves["protocol_violation"] == 1
    finally:
        room.close(reason="test over")
