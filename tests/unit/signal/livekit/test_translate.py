"""LiveKitTranslator: LiveKit's SignalRequest bytes in, ours out; our responses in, LiveKit's out (no sockets).

Inputs are built and outputs read with livekit-protocol, LiveKit's own
message classes, so the wire side is judged by a parser we did not write.
"""

from __future__ import annotations

from livekit.protocol import models as lk_models
from livekit.protocol import rtc as lk

from mediapod.protocol import models_pb2, signal_pb2
from mediapod.rtc.errors import ErrorCode
from mediapod.signal.decoding import UndecodableRequest
from mediapod.signal.livekit.translate import (
    LIVEKIT_VERSION,
    LiveKitTranslator,
    ServerSettings,
    Unsupported,
    resume_refusal,
)
from mediapod.signal.status import status_number


def translator() -> LiveKitTranslator:
    return LiveKitTranslator(
        ServerSettings(version="9.9.9", ping_interval=5, ping_timeout=15, region="eu")
    )


def theirs(**message: object) -> bytes:
    return lk.SignalRequest(**message).SerializeToString()


def test_requests_are_numbered_and_an_offer_keeps_its_sdp() -> None:
    t = translator()
    first = t.request(
        theirs(offer=lk.SessionDescription(type="offer", sdp="v=0 x", id=7))
    )
    second = t.request(theirs(ping_req=lk.Ping(timestamp=5)))
    assert isinstance(first, signal_pb2.SignalRequest) and isinstance(
        second, signal_pb2.SignalRequest
    )
    assert (first.offer.type, first.offer.sdp) == ("offer", "v=0 x")
    assert second.ping.timestamp == 5 and second.request_id == first.request_id + 1


def test_the_answer_to_a_publisher_offer_echoes_its_id() -> None:
    t = translator()
    t.request(theirs(offer=lk.SessionDescription(type="offer", sdp="v=0", id=42)))
    answer = t.response(
        signal_pb2.SignalResponse(
            answer=signal_pb2.SessionDescription(type="answer", sdp="v=0 a")
        )
    )
    assert answer is not None and (
        answer.answer.id,
        answer.answer.type,
        answer.answer.sdp,
    ) == (42, "answer", "v=0 a")


def test_subscriber_offers_are_numbered_from_one() -> None:
    t = translator()
    offers = [
        t.response(
            signal_pb2.SignalResponse(
                offer=signal_pb2.SessionDescription(type="offer", sdp="v=0")
            )
        )
        for _ in range(2)
    ]
    assert [o.offer.id for o in offers if o is not None] == [1, 2]


def test_trickle_keeps_candidate_and_target() -> None:
    init = '{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host"}'
    ours = translator().request(
        theirs(trickle=lk.TrickleRequest(candidateInit=init, target=lk.SUBSCRIBER))
    )
    assert isinstance(ours, signal_pb2.SignalRequest)
    assert (ours.trickle.candidate_init, ours.trickle.target) == (
        init,
        signal_pb2.SUBSCRIBER,
    )


def test_add_track_maps_livekit_track_type_and_names_simulcast_layers_by_rid() -> None:
    layers = [
        lk_models.VideoLayer(quality=q, width=w, height=h)
        for q, w, h in ((0, 320, 180), (1, 640, 360), (2, 1280, 720))
    ]
    request = lk.AddTrackRequest(
        cid="cam",
        name="camera",
        type=lk_models.VIDEO,
        source=lk_models.CAMERA,
        layers=layers,
    )
    ours = translator().request(theirs(add_track=request))
    assert isinstance(ours, signal_pb2.SignalRequest)
    assert (ours.add_track.cid, ours.add_track.type, ours.add_track.source) == (
        "cam",
        models_pb2.VIDEO,
        models_pb2.CAMERA,
    )
    assert [(layer.rid, layer.width) for layer in ours.add_track.layers] == [
        ("q", 320),
        ("h", 640),
        ("f", 1280),
    ]


def test_bytes_that_are_no_signal_request_are_undecodable_with_their_size() -> None:
    result = translator().request(b"\xff\xff\xff\xff")
    assert isinstance(result, UndecodableRequest) and "4 bytes" in result.reason


def test_a_request_we_do_not_act_on_is_unsupported_by_kind() -> None:
    result = translator().request(
        theirs(update_metadata=lk.UpdateParticipantMetadata(metadata="m"))
    )
    assert result == Unsupported("update_metadata")
    assert translator().request(b"") == Unsupported("empty")


def test_a_refused_add_track_is_a_request_response_that_echoes_it_without_our_request_id() -> (
    None
):
    t = translator()
    ours = t.request(
        theirs(add_track=lk.AddTrackRequest(cid="mic", type=lk_models.AUDIO))
    )
    assert isinstance(ours, signal_pb2.SignalRequest)
    error = signal_pb2.ErrorResponse(
        request_id=ours.request_id,
        code=status_number(ErrorCode.PERMISSION_DENIED),
        message="no canPublish",
    )
    refusal = lk.SignalResponse.FromString(
        t.response(signal_pb2.SignalResponse(error=error)).SerializeToString()
    )
    assert refusal.request_response.reason == lk.RequestResponse.NOT_ALLOWED
    assert (
        refusal.request_response.add_track.cid,
        refusal.request_response.message,
    ) == ("mic", "no canPublish")
    # LiveKit's request_id is the client's own (UpdateParticipantMetadata's); add_track carries none.
    assert refusal.request_response.request_id == 0


def test_a_refused_trickle_is_invalid_request_and_echoes_the_candidate() -> None:
    t = translator()
    ours = t.request(theirs(trickle=lk.TrickleRequest(candidateInit="garbage")))
    assert isinstance(ours, signal_pb2.SignalRequest)
    error = signal_pb2.ErrorResponse(
        request_id=ours.request_id,
        code=status_number(ErrorCode.INVALID_ARGUMENT),
        message="bad",
    )
    refusal = t.response(signal_pb2.SignalResponse(error=error))
    assert (
        refusal is not None
        and refusal.request_response.reason == lk.RequestResponse.INVALID_REQUEST
    )
    assert refusal.request_response.trickle.candidateInit == "garbage"


def test_pong_answers_in_the_style_of_the_ping() -> None:
    legacy, modern = translator(), translator()
    legacy.request(theirs(ping=11))
    modern.request(theirs(ping_req=lk.Ping(timestamp=11)))
    pong = signal_pb2.SignalResponse(
        pong=signal_pb2.Pong(last_ping_timestamp=11, timestamp=12)
    )
    assert legacy.response(pong) == lk.SignalResponse(pong=12)
    assert modern.response(pong) == lk.SignalResponse(
        pong_resp=lk.Pong(last_ping_timestamp=11, timestamp=12)
    )


def test_the_join_carries_keepalive_timing_and_server_info_livekit_needs() -> None:
    join = signal_pb2.JoinResponse(
        room=models_pb2.Room(name="r", sid="RM_1"),
        participant=models_pb2.ParticipantInfo(identity="a", sid="PA_1"),
        node_id="n1",
    )
    response = translator().response(signal_pb2.SignalResponse(join=join))
    assert response is not None
    theirs_join = lk.SignalResponse.FromString(response.SerializeToString()).join
    assert (theirs_join.room.name, theirs_join.participant.identity) == ("r", "a")
    assert (
        theirs_join.ping_interval > 0
        and theirs_join.ping_timeout > theirs_join.ping_interval
    )
    info = theirs_join.server_info
    assert (info.version, info.node_id, info.region) == (
        LIVEKIT_VERSION,
        "n1",
        "eu",
    ) and "9.9.9" in info.debug_info


def test_a_response_livekit_has_no_word_for_is_none() -> None:
    assert translator().response(signal_pb2.SignalResponse()) is None


def test_resume_refusal_asks_for_a_full_reconnect() -> None:
    leave = resume_refusal().leave
    assert leave.action == lk.LeaveRequest.RECONNECT and leave.can_reconnect
