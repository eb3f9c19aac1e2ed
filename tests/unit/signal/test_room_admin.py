"""Room administration on this node: each call's effect on real rooms, and its refusals."""

from __future__ import annotations

import pytest

from mediapod.protocol import models_pb2, room_service_pb2
from mediapod.rtc.data import DataKind, DataMessage
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.node import MediaNode
from mediapod.rtc.participant import LeaveReason, Participant, Permission
from mediapod.signal.access import Caller
from mediapod.signal.room_admin import RoomAdmin
from tests.support.fake_client import MICROPHONE, RecordingSink
from tests.support.sdp_fixtures import CHROME_OFFER
from tests.support.fake_signal import claims


def caller(room: str = "room", **grant: object) -> Caller:
    return Caller("token", claims("", room=room, room_join=False, **grant))


ADMIN = caller(room_admin=True)


def join(node: MediaNode, identity: str, room: str = "room") -> tuple[Participant, RecordingSink]:
    sink = RecordingSink()
    participant = node.room_for_join(room).join(identity, identity, "", Permission(), True, sink)
    return participant, sink


async def refused(call: object) -> RequestError:
    with pytest.raises(RequestError) as error:
        await call  # type: ignore[misc]
    return error.value


async def test_create_room_takes_the_requested_settings_and_needs_room_create(node: MediaNode) -> None:
    admin = RoomAdmin(node)
    request = room_service_pb2.CreateRoomRequest(name="new", empty_timeout=5, max_participants=3, metadata="m")
    denied = await refused(admin.create_room(caller(), request))
    assert denied.code == ErrorCode.PERMISSION_DENIED and "roomCreate" in denied.message and not node.rooms
    info = await admin.create_room(caller(room_create=True), request)
    assert (info.name, info.empty_timeout, info.departure_timeout, info.max_participants, info.metadata, info.node_id) == (
        "new", 5, 0, 3, "m", "node-test"
    )
    assert node.rooms["new"].settings.departure_timeout == 0  # one timeout set means both are
    unnamed = await refused(admin.create_room(caller(room_create=True), room_service_pb2.CreateRoomRequest()))
    assert unnamed.code == ErrorCode.INVALID_ARGUMENT


async def test_list_rooms_filters_by_name_and_needs_room_list(node: MediaNode) -> None:
    admin = RoomAdmin(node)
    for name in ("a", "b"):
        node.create_room(name)
    assert (await refused(admin.list_rooms(caller(), room_service_pb2.ListRoomsRequest()))).code == ErrorCode.PERMISSION_DENIED
    listed = await admin.list_rooms(caller(room_list=True), room_service_pb2.ListRoomsRequest())
    assert sorted(r.name for r in listed.rooms) == ["a", "b"]
    only = await admin.list_rooms(caller(room_list=True), room_service_pb2.ListRoomsRequest(names=["b", "zzz"]))
    assert [r.name for r in only.rooms] == ["b"]


async def test_delete_room_tells_everyone_and_an_unknown_room_is_not_found(node: MediaNode) -> None:
    admin = RoomAdmin(node)
    _, sink = join(node, "alice")
    await admin.delete_room(caller(room_create=True), room_service_pb2.DeleteRoomRequest(room="room"))
    assert sink.of("leave") == [(LeaveReason.ROOM_DELETED,)] and "room" not in node.rooms
    missing = await refused(admin.delete_room(caller(room_create=True), room_service_pb2.DeleteRoomRequest(room="room")))
    assert missing.code == ErrorCode.NOT_FOUND


@pytest.mark.parametrize(
    ("who", "words"),
    [
        (caller(), "roomAdmin"),
        (caller(room="", room_admin=True), "names no room"),
        (caller(room="elsewhere", room_admin=True), "administers room 'elsewhere', not 'room'"),
    ],
)
async def test_participant_calls_need_an_admin_grant_for_that_room(node: MediaNode, who: Caller, words: str) -> None:
    join(node, "alice")
    admin = RoomAdmin(node)
    for call in (
        admin.list_participants(who, room_service_pb2.ListParticipantsRequest(room="room")),
        admin.remove_participant(who, room_service_pb2.RoomParticipantIdentity(room="room", identity="alice")),
        admin.mute_published_track(who, room_service_pb2.MuteRoomTrackRequest(room="room", identity="alice", track_sid="TR_x")),
    ):
        denied = await refused(call)
        assert denied.code == ErrorCode.PERMISSION_DENIED and words in denied.message
    assert "alice" in node.rooms["room"].participants


async def test_list_and_remove_participants(node: MediaNode) -> None:
    admin = RoomAdmin(node)
    _, alice = join(node, "alice")
    join(node, "bob")
    listed = await admin.list_participants(ADMIN, room_service_pb2.ListParticipantsRequest(room="room"))
    assert sorted(p.identity for p in listed.participants) == ["alice", "bob"]
    await admin.remove_participant(ADMIN, room_service_pb2.RoomParticipantIdentity(room="room", identity="alice"))
    assert alice.of("leave") == [(LeaveReason.PARTICIPANT_REMOVED,)] and list(node.rooms["room"].participants) == ["bob"]
    again = await refused(admin.remove_participant(ADMIN, room_service_pb2.RoomParticipantIdentity(room="room", identity="alice")))
    assert again.code == ErrorCode.NOT_FOUND and "alice" in again.message
    nowhere = await refused(admin.list_participants(caller(room="gone", room_admin=True), room_service_pb2.ListParticipantsRequest(room="gone")))
    assert nowhere.code == ErrorCode.NOT_FOUND


async def test_mute_published_track_mutes_it_and_tells_its_publisher(node: MediaNode) -> None:
    admin = RoomAdmin(node)
    publisher, sink = join(node, "alice")
    publisher.announce_track(MICROPHONE)
    await publisher.handle_offer("offer", CHROME_OFFER)
    (sid,) = publisher.tracks
    muted = await admin.mute_published_track(ADMIN, room_service_pb2.MuteRoomTrackRequest(room="room", identity="alice", track_sid=sid, muted=True))
    assert muted.track.muted and publisher.tracks[sid].muted and sink.of("mute") == [(sid, True)]
    unknown = await refused(
        admin.mute_published_track(ADMIN, room_service_pb2.MuteRoomTrackRequest(room="room", identity="alice", track_sid="TR_nope"))
    )
    assert unknown.code == ErrorCode.NOT_FOUND


async def test_get_participant_describes_it_with_its_attributes(node: MediaNode) -> None:
    admin = RoomAdmin(node)
    alice, _ = join(node, "alice")
    alice.attributes["role"] = "host"
    info = await admin.get_participant(ADMIN, room_service_pb2.RoomParticipantIdentity(room="room", identity="alice"))
    assert (info.identity, info.sid, dict(info.attributes)) == ("alice", alice.sid, {"role": "host"})
    missing = await refused(admin.get_participant(ADMIN, room_service_pb2.RoomParticipantIdentity(room="room", identity="bob")))
    assert missing.code == ErrorCode.NOT_FOUND


async def test_update_participant_changes_what_is_set_and_tells_everyone_including_itself(node: MediaNode) -> None:
    admin = RoomAdmin(node)
    alice, alice_sink = join(node, "alice")
    _, bob_sink = join(node, "bob")
    alice.attributes.update(keep="1", drop="2")
    request = room_service_pb2.UpdateParticipantRequest(
        room="room", identity="alice", metadata="promoted", attributes={"drop": "", "new": "3"}
    )
    info = await admin.update_participant(ADMIN, request)
    assert (info.metadata, info.name, dict(info.attributes)) == ("promoted", "alice", {"keep": "1", "new": "3"})
    assert (alice.metadata, alice.name) == ("promoted", "alice")  # an empty name leaves the name as it was
    assert bob_sink.updates_about("alice") and alice_sink.updates_about("alice")


async def test_update_participant_over_a_limit_or_revealing_a_hidden_one_changes_nothing(node: MediaNode) -> None:
    admin = RoomAdmin(node)
    alice, _ = join(node, "alice")
    _, bob_sink = join(node, "bob")
    big = "x" * (node.config.limits.max_metadata_size + 1)
    over = await refused(admin.update_participant(ADMIN, room_service_pb2.UpdateParticipantRequest(room="room", identity="alice", metadata=big, name="Al")))
    assert over.code == ErrorCode.INVALID_ARGUMENT and "max_metadata_size" in over.message
    reveal = room_service_pb2.UpdateParticipantRequest(
        room="room", identity="alice", name="Al", permission=models_pb2.ParticipantPermission(hidden=True)
    )
    hidden = await refused(admin.update_participant(ADMIN, reveal))
    assert hidden.code == ErrorCode.INVALID_ARGUMENT and "hidden" in hidden.message
    assert (alice.name, alice.metadata, bob_sink.updates_about("alice")) == ("alice", "", [])


async def test_revoking_can_publish_unpublishes_and_revoking_can_subscribe_unsubscribes(node: MediaNode) -> None:
    admin = RoomAdmin(node)
    alice, alice_sink = join(node, "alice")
    bob, _ = join(node, "bob")
    for participant in (alice, bob):
        node.rooms["room"].activate(participant)
    alice.announce_track(MICROPHONE)
    await alice.handle_offer("offer", CHROME_OFFER)
    (sid,) = alice.tracks
    assert bob.subscriber.subscribed_track_sids() == [sid]
    no_publish = models_pb2.ParticipantPermission(can_subscribe=True, can_publish=False, can_publish_data=True)
    info = await admin.update_participant(ADMIN, room_service_pb2.UpdateParticipantRequest(room="room", identity="alice", permission=no_publish))
    assert not info.permission.can_publish and not alice.tracks and alice_sink.of("track_unpublished") == [(sid,)]
    assert bob.subscriber.subscribed_track_sids() == []


async def test_update_subscriptions_subscribes_and_unsubscribes_a_participant(node: MediaNode) -> None:
    admin = RoomAdmin(node)
    alice, _ = join(node, "alice")
    bob, _ = join(node, "bob")
    for participant in (alice, bob):
        node.rooms["room"].activate(participant)
    alice.announce_track(MICROPHONE)
    await alice.handle_offer("offer", CHROME_OFFER)
    (sid,) = alice.tracks
    request = room_service_pb2.UpdateSubscriptionsRequest(room="room", identity="bob", track_sids=[sid], subscribe=False)
    await admin.update_subscriptions(ADMIN, request)
    assert bob.subscriber.subscribed_track_sids() == []
    request.subscribe = True
    await admin.update_subscriptions(ADMIN, request)
    assert bob.subscriber.subscribed_track_sids() == [sid]
    request.track_sids[:] = ["TR_nope"]
    assert (await refused(admin.update_subscriptions(ADMIN, request))).code == ErrorCode.NOT_FOUND


async def test_update_room_metadata_sends_everyone_a_room_update(node: MediaNode) -> None:
    admin = RoomAdmin(node)
    _, alice = join(node, "alice")
    _, bob = join(node, "bob")
    info = await admin.update_room_metadata(ADMIN, room_service_pb2.UpdateRoomMetadataRequest(room="room", metadata="agenda"))
    assert (info.metadata, info.num_participants, node.rooms["room"].settings.metadata) == ("agenda", 2, "agenda")
    for sink in (alice, bob):
        ((state,),) = sink.of("room_update")
        assert (state.name, state.metadata, state.num_participants) == ("room", "agenda", 2)
    big = room_service_pb2.UpdateRoomMetadataRequest(room="room", metadata="x" * (node.config.limits.max_metadata_size + 1))
    assert (await refused(admin.update_room_metadata(ADMIN, big))).code == ErrorCode.INVALID_ARGUMENT


async def test_send_data_goes_to_the_named_identities_or_to_everyone(node: MediaNode) -> None:
    admin = RoomAdmin(node)
    join(node, "alice")
    join(node, "bob")
    delivered: list[tuple[str, DataMessage]] = []
    for participant in node.rooms["room"].participants.values():
        participant.deliver_data = lambda message, who=participant.identity: delivered.append((who, message)) or True  # type: ignore[method-assign]
    request = room_service_pb2.SendDataRequest(room="room", data=b"hi", topic="chat", destination_identities=["bob"], lossy=True)
    await admin.send_data(ADMIN, request)
    ((who, message),) = delivered
    assert (who, message.payload, message.topic, message.kind, message.sender_sid) == ("bob", b"hi", "chat", DataKind.LOSSY, "")
    delivered.clear()
    await admin.send_data(ADMIN, room_service_pb2.SendDataRequest(room="room", data=b"all"))
    assert sorted(who for who, _ in delivered) == ["alice", "bob"] and delivered[0][1].kind == DataKind.RELIABLE
    nowhere = room_service_pb2.SendDataRequest(room="gone", data=b"x")
    assert (await refused(admin.send_data(caller(room="gone", room_admin=True), nowhere))).code == ErrorCode.NOT_FOUND


@pytest.mark.parametrize(
    "call",
    ["get_participant", "update_participant", "update_subscriptions", "send_data", "update_room_metadata"],
)
async def test_the_new_calls_need_an_admin_grant_for_that_room(node: MediaNode, call: str) -> None:
    join(node, "alice")
    request = {
        "get_participant": room_service_pb2.RoomParticipantIdentity(room="room", identity="alice"),
        "update_participant": room_service_pb2.UpdateParticipantRequest(room="room", identity="alice", metadata="m"),
        "update_subscriptions": room_service_pb2.UpdateSubscriptionsRequest(room="room", identity="alice"),
        "send_data": room_service_pb2.SendDataRequest(room="room", data=b"x"),
        "update_room_metadata": room_service_pb2.UpdateRoomMetadataRequest(room="room", metadata="m"),
    }[call]
    denied = await refused(getattr(RoomAdmin(node), call)(caller(room="elsewhere", room_admin=True), request))
    assert denied.code == ErrorCode.PERMISSION_DENIED and "not 'room'" in denied.message
