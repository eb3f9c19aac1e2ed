"""The Twirp handler without a socket: requests as aiohttp builds them, answered by a RoomAdmin over real rooms.

Bodies are encoded by livekit-protocol's own messages and protobuf's JSON
mapping, and errors read as livekit-api reads them (``code`` and ``msg``
from a JSON body, whatever the request's content type).
"""

from __future__ import annotations

import json
from unittest import mock

from aiohttp import streams, web
from aiohttp.test_utils import make_mocked_request
from livekit.protocol import models as lk_models
from livekit.protocol import room as lk

from mediapod import auth
from mediapod.metrics import MediaCollector, MediaCounters, RoomGauges
from mediapod.rtc.node import MediaNode
from mediapod.rtc.participant import Permission
from mediapod.signal.livekit.twirp import TwirpRoomService
from mediapod.signal.room_admin import RoomAdmin
from tests.support.fake_client import RecordingSink

KEY, SECRET = "twirp-test", "t" * 32
PATH = "/twirp/livekit.RoomService/"


def token(**grant: object) -> str:
    return auth.AccessToken(KEY, SECRET).with_identity("admin").with_grant(auth.VideoGrant(**grant)).to_jwt()  # type: ignore[arg-type]


ADMIN = token(room_admin=True, room="room")


async def call(
    service: TwirpRoomService, method: str, body: bytes, *, bearer: str | None = ADMIN,
    content_type: str = "application/protobuf", verb: str = "POST",
) -> web.Response:
    headers = {"Content-Type": content_type}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    payload = streams.StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=mock.Mock())
    payload.feed_data(body)
    payload.feed_eof()
    request = make_mocked_request(verb, PATH + method, headers=headers, payload=payload)
    route = service.routes()[0]
    return await route.handler(request)  # type: ignore[no-any-return,operator]


def error(response: web.Response) -> tuple[int, str, str]:
    assert response.text is not None
    body = json.loads(response.text)
    return response.status, body["code"], body["msg"]


def service_for(node: MediaNode) -> tuple[TwirpRoomService, MediaCounters]:
    counters = MediaCounters()
    return TwirpRoomService(RoomAdmin(node), auth.TokenVerifier({KEY: SECRET}), counters), counters


async def test_a_protobuf_call_is_answered_in_protobuf_and_counted(node: MediaNode) -> None:
    service, counters = service_for(node)
    node.room_for_join("room").join("alice", "Alice", "", Permission(), True, RecordingSink())
    body = lk.ListParticipantsRequest(room="room").SerializeToString()
    response = await call(service, "ListParticipants", body)
    assert (response.status, response.content_type) == (200, "application/protobuf")
    assert response.body is not None
    listed = lk.ListParticipantsResponse.FromString(bytes(response.body))  # type: ignore[arg-type]
    assert [(p.identity, p.name) for p in listed.participants] == [("alice", "Alice")]
    assert counters.twirp_calls == {("ListParticipants", "ok"): 1}


async def test_a_json_call_uses_livekits_field_names_both_ways(node: MediaNode) -> None:
    service, _ = service_for(node)
    node.room_for_join("room").join("alice", "Alice", "", Permission(), True, RecordingSink())
    body = json.dumps({"room": "room", "metadata": "agenda"}).encode()
    response = await call(service, "UpdateRoomMetadata", body, content_type="application/json")
    assert (response.status, response.content_type) == (200, "application/json")
    assert response.text is not None
    room = json.loads(response.text)
    assert (room["name"], room["metadata"], room["num_participants"]) == ("room", "agenda", 1)
    camel = json.dumps({"room": "room", "identity": "alice", "trackSid": "TR_nope", "muted": True}).encode()
    assert error(await call(service, "MutePublishedTrack", camel, content_type="application/json"))[:2] == (404, "not_found")


async def test_refusals_are_twirp_errors_with_their_status_and_counted_by_code(node: MediaNode) -> None:
    service, counters = service_for(node)
    node.create_room("room")
    body = lk.ListParticipantsRequest(room="room").SerializeToString()
    assert error(await call(service, "ListParticipants", body, bearer=None)) == (
        401, "unauthenticated", "missing 'Authorization: Bearer <token>' header"
    )
    assert error(await call(service, "ListParticipants", body, bearer="not.a.jwt"))[:2] == (401, "unauthenticated")
    forged = auth.AccessToken(KEY, "x" * 32).with_grant(auth.VideoGrant(room_admin=True, room="room")).to_jwt()
    assert error(await call(service, "ListParticipants", body, bearer=forged))[:2] == (401, "unauthenticated")
    status, code, msg = error(await call(service, "ListParticipants", body, bearer=token(room_list=True)))
    assert (status, code) == (403, "permission_denied") and "roomAdmin" in msg
    status, code, msg = error(await call(service, "CreateRoom", lk.CreateRoomRequest(name="x").SerializeToString()))
    assert (status, code) == (403, "permission_denied") and "roomCreate" in msg
    missing = lk.RoomParticipantIdentity(room="room", identity="nobody").SerializeToString()
    assert error(await call(service, "GetParticipant", missing))[:2] == (404, "not_found")
    assert counters.twirp_calls[("ListParticipants", "unauthenticated")] == 3
    assert counters.twirp_calls[("GetParticipant", "not_found")] == 1


async def test_bodies_that_do_not_decode_are_malformed(node: MediaNode) -> None:
    service, counters = service_for(node)
    status, code, msg = error(await call(service, "ListRooms", b"\xff\xff\xff\xff"))
    assert (status, code) == (400, "malformed") and "livekit.ListRoomsRequest" in msg
    for text in (b"{not json", b'{"names": 7}', b"\xff\xfe"):
        assert error(await call(service, "ListRooms", text, content_type="application/json"))[:2] == (400, "malformed")
    assert counters.twirp_calls[("ListRooms", "malformed")] == 4


async def test_unknown_methods_verbs_and_content_types_are_bad_routes(node: MediaNode) -> None:
    service, counters = service_for(node)
    status, code, msg = error(await call(service, "DropTables", b""))
    assert (status, code) == (404, "bad_route") and "DropTables" in msg
    assert error(await call(service, "ListRooms", b"", verb="GET"))[:2] == (404, "bad_route")
    assert error(await call(service, "ListRooms", b"", content_type="text/plain"))[:2] == (404, "bad_route")
    assert counters.twirp_calls == {("unknown", "bad_route"): 1, ("ListRooms", "bad_route"): 2}


async def test_json_answers_print_every_field_as_twirp_servers_do(node: MediaNode) -> None:
    service, _ = service_for(node)
    node.room_for_join("room").join("alice", "Alice", "", Permission(), True, RecordingSink())
    body = json.dumps({"room": "room", "identity": "alice"}).encode()
    response = await call(service, "GetParticipant", body, content_type="application/json")
    assert response.text is not None
    info = json.loads(response.text)
    assert (info["identity"], info["state"], info["metadata"], info["attributes"]) == ("alice", "JOINING", "", {})
    assert lk_models.ParticipantInfo.State.Value(info["state"]) == lk_models.ParticipantInfo.JOINING


async def test_twirp_calls_are_exported_by_method_and_code(node: MediaNode) -> None:
    service, counters = service_for(node)
    await call(service, "ListRooms", b"", bearer=token(room_list=True))
    await call(service, "Nope", b"")
    collector = MediaCollector("node-1", counters, lambda: RoomGauges(0, 0, 0, 0))
    (family,) = [f for f in collector.collect() if f.name == "switchboard_twirp_calls"]
    assert sorted((s.labels["method"], s.labels["code"], s.value) for s in family.samples if s.name.endswith("_total")) == [
        ("ListRooms", "ok", 1), ("unknown", "bad_route", 1)
    ]
