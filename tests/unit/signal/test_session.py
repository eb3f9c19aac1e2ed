"""A hosted signal session: join, each request applied to a real Participant, every way it ends.

The room model is real (MediaNode on a socket-free media context); the
client is a FakeTransport.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from mediapod.config import LimitsConfig
from mediapod.protocol import models_pb2, signal_pb2
from mediapod.rtc.data import RawDataCodec
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.node import MediaNode
from mediapod.rtc.participant import LeaveReason, Permission
from mediapod.signal.decoding import UndecodableRequest
from mediapod.signal.session import SERVER_VERSION, SessionHost, dispatch, read_join
from mediapod.signal.sink import QueueSink
from mediapod.signal.status import status_number
from mediapod.signal.stream import ProtocolViolation, ResponseQueue, StreamAbandoned
from tests.support.sdp_fixtures import CHROME_OFFER
from tests.support.fake_signal import claims, new_node
from tests.support.fake_signal import FakeTransport

MICROPHONE = signal_pb2.AddTrackRequest(cid="microphone", name="mic", type=models_pb2.AUDIO, source=models_pb2.MICROPHONE)


class Session:
    """One session served by a SessionHost in a task, and its client's end."""

    def __init__(self, node: MediaNode, identity: str = "alice", *, reading: bool = True, auto_subscribe: bool = True) -> None:
        self.client = FakeTransport(reading=reading)
        join = signal_pb2.JoinRequest(token="verified by the gateway", disable_auto_subscribe=not auto_subscribe)
        self.task = asyncio.get_running_loop().create_task(SessionHost(node).serve(join, claims(identity), "room", self.client))

    async def joined(self) -> signal_pb2.JoinResponse:
        (response,) = await self.client.until("join")
        return response.join

    async def ask(self, kind: str, request_id: int = 0, **message: object) -> signal_pb2.SignalResponse:
        """Send one request and return the next response of kind."""
        count = len(self.client.of(kind))
        self.client.request(request_id, **message)
        return (await self.client.until(kind, count + 1))[-1]

    async def ended(self, timeout: float = 2.0) -> None:
        await asyncio.wait_for(self.task, timeout)


async def test_a_join_answers_with_the_room_the_participant_and_the_others_and_activates_it(node: MediaNode) -> None:
    bob = Session(node, "bob")
    await bob.joined()
    alice = Session(node, "alice")
    join = await alice.joined()
    assert (join.room.name, join.participant.identity, join.server_version, join.node_id) == ("room", "alice", SERVER_VERSION, "node-test")
    assert [p.identity for p in join.other_participants] == ["bob"]
    update = (await bob.client.until("update"))[-1].update
    assert "alice" in [p.identity for p in update.participants]
    assert node.rooms["room"].participants["alice"].state.value == "joined"
    for session in (alice, bob):
        session.client.hang_up()
        await session.ended()


async def test_ping_is_answered_with_a_pong_carrying_its_timestamp(node: MediaNode) -> None:
    session = Session(node)
    await session.joined()
    response = await session.ask("pong", ping=signal_pb2.Ping(timestamp=1234))
    assert response.pong.last_ping_timestamp == 1234


async def test_add_track_offer_and_mute_reach_the_participant(node: MediaNode) -> None:
    session = Session(node)
    await session.joined()
    published = await session.ask("track_published", add_track=MICROPHONE)
    assert published.track_published.cid == "microphone" and published.track_published.track.sid.startswith("TR_")
    answer = await session.ask("answer", offer=signal_pb2.SessionDescription(type="offer", sdp=CHROME_OFFER))
    assert answer.answer.type == "answer" and "a=fingerprint:sha-256" in answer.answer.sdp
    participant = node.rooms["room"].participants["alice"]
    (sid,) = participant.tracks
    muted = await session.ask("mute", mute=signal_pb2.MuteTrackRequest(sid=sid, muted=True))
    assert (muted.mute.sid, muted.mute.muted) == (sid, True) and participant.tracks[sid].muted
    removed = await session.ask("track_unpublished", remove_track=signal_pb2.RemoveTrackRequest(sid=sid))
    assert removed.track_unpublished.track_sid == sid and not participant.tracks


@pytest.mark.parametrize(
    ("message", "code", "words"),
    [
        ({}, ErrorCode.INVALID_ARGUMENT, "empty SignalRequest"),
        ({"join": signal_pb2.JoinRequest(token="again")}, ErrorCode.FAILED_PRECONDITION, "already joined"),
        ({"mute": signal_pb2.MuteTrackRequest(sid="TR_nope", muted=True)}, ErrorCode.NOT_FOUND, "TR_nope"),
        ({"remove_track": signal_pb2.RemoveTrackRequest(sid="TR_nope")}, ErrorCode.NOT_FOUND, "TR_nope"),
        ({"subscription": signal_pb2.UpdateSubscription(track_sids=["TR_nope"], subscribe=True)}, ErrorCode.NOT_FOUND, "TR_nope"),
        ({"offer": signal_pb2.SessionDescription(type="offer", sdp="v=0 but not SDP")}, ErrorCode.INVALID_ARGUMENT, ""),
        ({"add_track": signal_pb2.AddTrackRequest(name="no cid", type=models_pb2.AUDIO)}, ErrorCode.INVALID_ARGUMENT, "cid"),
    ],
)
async def test_a_bad_request_gets_an_error_with_its_id_and_the_session_stays_up(
    node: MediaNode, message: dict[str, object], code: ErrorCode, words: str
) -> None:
    session = Session(node)
    await session.joined()
    error = (await session.ask("error", 42, **message)).error
    assert (error.request_id, error.code) == (42, status_number(code)) and words in error.message
    assert (await session.ask("pong", ping=signal_pb2.Ping(timestamp=1))).pong.last_ping_timestamp == 1
    assert not session.task.done()


async def test_track_settings_and_trickle_are_taken_without_an_answer(node: MediaNode) -> None:
    session = Session(node)
    await session.joined()
    session.client.request(track_settings=signal_pb2.UpdateTrackSettings(track_sids=[], width=320, height=180))
    candidate = '{"candidate":"candidate:1 1 udp 2122260223 192.168.1.7 46243 typ host","sdpMid":"0"}'
    session.client.request(trickle=signal_pb2.TrickleRequest(candidate_init=candidate))
    await session.ask("pong", ping=signal_pb2.Ping(timestamp=2))
    assert session.client.kinds() == ["join", "pong"]


async def test_a_garbage_trickle_is_refused_and_the_session_stays_up(node: MediaNode) -> None:
    session = Session(node)
    await session.joined()
    garbage = signal_pb2.TrickleRequest(candidate_init='{"candidate":"garbage"}')
    error = (await session.ask("error", 9, trickle=garbage)).error
    assert error.code == status_number(ErrorCode.INVALID_ARGUMENT) and "candidateInit" in error.message
    assert (await session.ask("pong", ping=signal_pb2.Ping(timestamp=3))).pong.last_ping_timestamp == 3


async def test_a_pending_track_over_the_limit_is_refused_as_resource_exhausted() -> None:
    node = new_node(LimitsConfig(max_pending_tracks=1))
    try:
        session = Session(node)
        await session.joined()
        await session.ask("track_published", add_track=MICROPHONE)
        error = (await session.ask("error", 7, add_track=signal_pb2.AddTrackRequest(cid="more", type=models_pb2.AUDIO))).error
        assert error.code == status_number(ErrorCode.RESOURCE_EXHAUSTED) and "limits.max_pending_tracks" in error.message
    finally:
        node.close()


async def test_a_claim_over_its_limit_refuses_the_join_before_any_response(node: MediaNode) -> None:
    client = FakeTransport()
    too_long = claims("i" * (node.config.limits.max_identity_length + 1))
    with pytest.raises(RequestError) as refused:
        await SessionHost(node).serve(signal_pb2.JoinRequest(), too_long, "room", client)
    assert refused.value.code == ErrorCode.INVALID_ARGUMENT and "limits.max_identity" in refused.value.message
    assert client.taken == [] and not node.rooms["room"].participants


async def test_a_leave_request_ends_the_session_and_the_participant_leaves_without_a_leave_back(node: MediaNode) -> None:
    session = Session(node)
    await session.joined()
    session.client.request(leave=signal_pb2.LeaveRequest())
    await session.ended()
    assert "alice" not in node.rooms["room"].participants
    assert "leave" not in session.client.kinds()
    assert node.context.counters.leaves[LeaveReason.CLIENT_INITIATED.value] == 1


async def test_a_removed_participant_is_told_why_and_its_session_reads_no_more(node: MediaNode) -> None:
    session = Session(node)
    await session.joined()
    room = node.rooms["room"]
    room.remove_participant(room.participants["alice"], LeaveReason.PARTICIPANT_REMOVED)
    await session.ended()
    assert session.client.of("leave")[-1].leave.reason == signal_pb2.LeaveRequest.PARTICIPANT_REMOVED
    session.client.request(add_track=MICROPHONE)  # nobody reads it any more
    await asyncio.sleep(0.01)
    assert session.client.kinds()[-1] == "leave" and not room.participants


async def test_a_request_after_removal_is_refused_by_dispatch(node: MediaNode) -> None:
    room = node.room_for_join("room")
    sink = QueueSink(ResponseQueue(1 << 20))
    participant = room.join("ghost", "", "", Permission(), True, sink)
    room.remove_participant(participant, LeaveReason.PARTICIPANT_REMOVED)
    request = signal_pb2.SignalRequest(add_track=MICROPHONE)
    with pytest.raises(RequestError) as refused:
        await dispatch(participant, sink, request)
    assert refused.value.code == ErrorCode.FAILED_PRECONDITION and "has left" in refused.value.message


async def test_undecodable_bytes_end_the_session_with_a_leave_then_a_protocol_violation(node: MediaNode) -> None:
    session = Session(node)
    await session.joined()
    session.client.send(UndecodableRequest("a SignalRequest of 3 bytes could not be decoded (bad)"))
    with pytest.raises(ProtocolViolation, match="could not be decoded"):
        await session.ended()
    assert session.client.of("leave")[-1].leave.reason == signal_pb2.LeaveRequest.PROTOCOL_VIOLATION
    assert node.context.counters.leaves[LeaveReason.PROTOCOL_VIOLATION.value] == 1


async def test_a_client_that_never_reads_is_removed_as_stalled() -> None:
    node = new_node(dataclasses.replace(LimitsConfig(), signal_write_timeout=0.05))
    try:
        session = Session(node, reading=False)
        with pytest.raises(StreamAbandoned):
            await session.ended()
        assert not node.rooms["room"].participants
        assert node.context.counters.leaves[LeaveReason.SIGNAL_STALLED.value] == 1
    finally:
        node.close()


async def test_responses_past_the_queue_budget_stall_the_session_even_while_writes_are_in_time() -> None:
    node = new_node(LimitsConfig(signal_queue_size=2000, signal_write_timeout=60))
    try:
        watcher = Session(node, "watcher")
        await watcher.joined()
        watcher.client.reading.clear()  # stops taking: its writes wait, its queue fills
        for index in range(20):
            joiner = Session(node, f"passer-by-{index}")
            await joiner.joined()
            joiner.client.hang_up()
            await joiner.ended()
        with pytest.raises(StreamAbandoned):
            await watcher.ended()
        assert node.context.counters.leaves[LeaveReason.SIGNAL_STALLED.value] == 1
    finally:
        node.close()


async def test_the_first_request_must_be_a_join() -> None:
    client = FakeTransport()
    client.request(ping=signal_pb2.Ping(timestamp=1))
    with pytest.raises(ProtocolViolation, match="must be a JoinRequest"):
        await read_join(client)
    client.hang_up()
    with pytest.raises(ProtocolViolation):
        await read_join(client)
    client.request(join=signal_pb2.JoinRequest(token="t", room="r"))
    assert (await read_join(client)).room == "r"


async def test_a_join_naming_a_data_format_this_node_does_not_know_is_refused_before_joining(node: MediaNode) -> None:
    client = FakeTransport()
    join = signal_pb2.JoinRequest(data_format="carrier-pigeon")
    with pytest.raises(RequestError) as refused:
        await SessionHost(node, data_codecs={"raw": RawDataCodec()}).serve(join, claims("alice"), "room", client)
    assert refused.value.code == ErrorCode.INVALID_ARGUMENT and "carrier-pigeon" in refused.value.message
    assert client.taken == [] and "room" not in node.rooms
