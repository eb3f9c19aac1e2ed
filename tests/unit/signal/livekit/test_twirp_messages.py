"""LiveKit's RoomService messages translated to our calls and back, and Twirp's error vocabulary."""

from __future__ import annotations

import pytest
from livekit.protocol import models as lk_models
from livekit.protocol import room as lk

from mediapod.protocol import models_pb2, room_service_pb2
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.signal.livekit.twirp_errors import HTTP_STATUS, TwirpError
from mediapod.signal.livekit.twirp_messages import METHODS
from mediapod.signal.room_admin import RoomAdmin

LIVEKIT_ROOM_SERVICE = (
    "CreateRoom", "ListRooms", "DeleteRoom", "ListParticipants", "GetParticipant", "RemoveParticipant",
    "MutePublishedTrack", "UpdateParticipant", "UpdateSubscriptions", "SendData", "UpdateRoomMetadata",
)


def test_every_room_service_method_of_the_issue_runs_a_room_admin_call() -> None:
    assert sorted(METHODS) == sorted(LIVEKIT_ROOM_SERVICE)
    for method in METHODS.values():
        assert callable(getattr(RoomAdmin, method.call))
        assert method.request_type.DESCRIPTOR.file.package == "livekit"


def test_create_room_keeps_the_settings_we_honor() -> None:
    theirs = lk.CreateRoomRequest(name="r", empty_timeout=5, departure_timeout=7, max_participants=3, metadata="m")
    ours = METHODS["CreateRoom"].request(theirs)
    assert ours == room_service_pb2.CreateRoomRequest(name="r", empty_timeout=5, departure_timeout=7, max_participants=3, metadata="m")


def test_update_participant_keeps_what_is_set_and_whether_a_permission_was_sent() -> None:
    translate = METHODS["UpdateParticipant"].request
    bare = translate(lk.UpdateParticipantRequest(room="r", identity="a", metadata="m", attributes={"k": "v"}))
    assert (bare.metadata, dict(bare.attributes), bare.HasField("permission")) == ("m", {"k": "v"}, False)
    permission = lk_models.ParticipantPermission(can_subscribe=True, can_publish=False, can_publish_data=True)
    full = translate(lk.UpdateParticipantRequest(room="r", identity="a", name="Al", permission=permission))
    assert full.name == "Al" and full.permission == models_pb2.ParticipantPermission(
        can_subscribe=True, can_publish=False, can_publish_data=True
    )


def test_update_subscriptions_flattens_tracks_grouped_by_participant() -> None:
    theirs = lk.UpdateSubscriptionsRequest(room="r", identity="a", track_sids=["TR_1"], subscribe=True)
    theirs.participant_tracks.add(participant_sid="PA_x", track_sids=["TR_2", "TR_3"])
    ours = METHODS["UpdateSubscriptions"].request(theirs)
    assert (list(ours.track_sids), ours.subscribe) == (["TR_1", "TR_2", "TR_3"], True)


def test_send_data_keeps_kind_topic_and_destinations_and_refuses_deprecated_sids() -> None:
    translate = METHODS["SendData"].request
    theirs = lk.SendDataRequest(
        room="r", data=b"hi", kind=lk_models.DataPacket.LOSSY, destination_identities=["b"], topic="chat", nonce=b"n"
    )
    ours = translate(theirs)
    assert (ours.data, ours.lossy, list(ours.destination_identities), ours.topic) == (b"hi", True, ["b"], "chat")
    assert not translate(lk.SendDataRequest(room="r", data=b"x", kind=lk_models.DataPacket.RELIABLE)).lossy
    with pytest.raises(RequestError) as refused:
        translate(lk.SendDataRequest(room="r", data=b"x", destination_sids=["PA_1"]))
    assert refused.value.code == ErrorCode.INVALID_ARGUMENT and "destination_identities" in refused.value.message


def test_participant_answers_carry_livekit_numbering_and_attributes() -> None:
    ours = models_pb2.ParticipantInfo(
        sid="PA_1", identity="a", name="A", state=models_pb2.ParticipantInfo.ACTIVE, metadata="m", joined_at=10,
        attributes={"role": "host"},
        tracks=[models_pb2.TrackInfo(sid="TR_1", type=models_pb2.VIDEO, source=models_pb2.CAMERA, muted=True)],
        permission=models_pb2.ParticipantPermission(can_subscribe=True, can_publish=True),
    )
    theirs = METHODS["GetParticipant"].response(ours)
    assert isinstance(theirs, lk_models.ParticipantInfo)
    assert (theirs.sid, theirs.state, theirs.joined_at_ms, dict(theirs.attributes)) == ("PA_1", lk_models.ParticipantInfo.ACTIVE, 10_000, {"role": "host"})
    (track,) = theirs.tracks
    assert (track.type, track.source, track.muted) == (lk_models.VIDEO, lk_models.CAMERA, True)
    listed = METHODS["ListParticipants"].response(room_service_pb2.ListParticipantsResponse(participants=[ours]))
    assert [p.identity for p in listed.participants] == ["a"]


def test_room_answers_carry_metadata_counts_and_milliseconds() -> None:
    ours = models_pb2.Room(sid="RM_1", name="r", metadata="m", creation_time=5, num_participants=2, node_id="n")
    for name in ("CreateRoom", "UpdateRoomMetadata"):
        theirs = METHODS[name].response(ours)
        assert (theirs.name, theirs.metadata, theirs.num_participants, theirs.creation_time_ms) == ("r", "m", 2, 5000)
    listed = METHODS["ListRooms"].response(room_service_pb2.ListRoomsResponse(rooms=[ours]))
    assert [r.sid for r in listed.rooms] == ["RM_1"]


@pytest.mark.parametrize(
    ("code", "twirp", "status"),
    [
        (ErrorCode.INVALID_ARGUMENT, "invalid_argument", 400),
        (ErrorCode.DEADLINE_EXCEEDED, "deadline_exceeded", 408),
        (ErrorCode.NOT_FOUND, "not_found", 404),
        (ErrorCode.PERMISSION_DENIED, "permission_denied", 403),
        (ErrorCode.UNAUTHENTICATED, "unauthenticated", 401),
        (ErrorCode.RESOURCE_EXHAUSTED, "resource_exhausted", 429),
        (ErrorCode.FAILED_PRECONDITION, "failed_precondition", 412),
        (ErrorCode.UNIMPLEMENTED, "unimplemented", 501),
        (ErrorCode.INTERNAL, "internal", 500),
        (ErrorCode.UNAVAILABLE, "unavailable", 503),
    ],
)
def test_model_refusals_become_twirp_errors_with_the_specs_http_status(code: ErrorCode, twirp: str, status: int) -> None:
    error = TwirpError.from_request_error(RequestError(code, "why"))
    assert (error.code, error.status, error.body()) == (twirp, status, {"code": twirp, "msg": "why"})


def test_twirps_own_codes_have_their_statuses() -> None:
    assert (HTTP_STATUS["malformed"], HTTP_STATUS["bad_route"]) == (400, 404)
