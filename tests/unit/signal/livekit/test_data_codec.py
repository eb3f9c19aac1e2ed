"""LiveKitDataCodec: LiveKit's DataPacket in and out, judged by decoding with livekit-protocol's own classes."""

from __future__ import annotations

import pytest
from livekit.protocol import models as lk

from mediapod.rtc.data import DataKind, DataMessage
from mediapod.signal.livekit.data_codec import FORMAT, LiveKitDataCodec

codec = LiveKitDataCodec()


def test_user_packet_gets_the_servers_sender_and_keeps_topic_payload_and_destinations() -> None:
    forged = lk.DataPacket(
        kind=lk.DataPacket.LOSSY,  # the channel, not the packet, says the kind
        participant_identity="mallory",
        user=lk.UserPacket(participant_sid="PA_forged", participant_identity="mallory", payload=b"hi", topic="chat"),
        destination_identities=["bob"],
    )
    message = codec.decode(forged.SerializeToString(), DataKind.RELIABLE, "alice", "PA_alice")

    assert message is not None
    assert (message.payload, message.topic, message.destination_identities) == (b"hi", "chat", frozenset({"bob"}))
    assert message.frame_format == FORMAT
    forwarded = lk.DataPacket.FromString(message.frame)
    assert forwarded.kind == lk.DataPacket.RELIABLE
    assert (forwarded.participant_identity, forwarded.participant_sid) == ("alice", "PA_alice")
    assert (forwarded.user.participant_identity, forwarded.user.participant_sid) == ("alice", "PA_alice")
    assert list(forwarded.user.destination_identities) == ["bob"]


def test_destinations_named_only_in_the_user_packet_are_honoured() -> None:
    legacy = lk.DataPacket(user=lk.UserPacket(payload=b"x", destination_identities=["carol"]))
    message = codec.decode(legacy.SerializeToString(), DataKind.LOSSY, "alice", "PA_alice")

    assert message is not None
    assert message.destination_identities == frozenset({"carol"})
    assert list(lk.DataPacket.FromString(message.frame).destination_identities) == ["carol"]


@pytest.mark.parametrize(
    "packet",
    [
        lk.DataPacket(rpc_request=lk.RpcRequest(id="r1", method="greet", payload="{}", response_timeout_ms=5000, version=1)),
        lk.DataPacket(rpc_ack=lk.RpcAck(request_id="r1")),
        lk.DataPacket(rpc_response=lk.RpcResponse(request_id="r1", payload="ok")),
        lk.DataPacket(stream_chunk=lk.DataStream.Chunk(stream_id="s1", chunk_index=3, content=b"\x00\xff")),
        lk.DataPacket(sip_dtmf=lk.SipDTMF(code=5, digit="5")),
    ],
    ids=lambda packet: packet.WhichOneof("value"),
)
def test_other_packet_kinds_pass_with_their_body_untouched(packet: lk.DataPacket) -> None:
    packet.destination_identities.append("bob")
    kind = packet.WhichOneof("value")
    message = codec.decode(packet.SerializeToString(), DataKind.RELIABLE, "alice", "PA_alice")

    assert message is not None
    assert message.destination_identities == frozenset({"bob"})
    forwarded = lk.DataPacket.FromString(message.frame)
    assert getattr(forwarded, kind) == getattr(packet, kind)
    assert forwarded.participant_identity == "alice"


@pytest.mark.parametrize("frame", [b"\xff\xff", b"not a protobuf", b"\x12\x05ab"], ids=["bad-tag", "text", "truncated"])
def test_a_frame_that_is_no_data_packet_is_malformed(frame: bytes) -> None:
    assert codec.decode(frame, DataKind.RELIABLE, "alice", "PA_alice") is None


def test_a_message_from_the_server_api_becomes_a_user_packet_with_no_sender() -> None:
    message = DataMessage(DataKind.LOSSY, "", "", b"notice", topic="ops", destination_identities=frozenset({"bob"}))
    packet = lk.DataPacket.FromString(codec.encode(message))

    assert packet.kind == lk.DataPacket.LOSSY
    assert (packet.user.payload, packet.user.topic, packet.user.participant_identity) == (b"notice", "ops", "")
    assert list(packet.destination_identities) == ["bob"]
