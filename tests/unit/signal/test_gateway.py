"""The gateway: a stream's join is checked, then hosted here; without a forwarder a room elsewhere is unavailable."""

from __future__ import annotations

import pytest

from mediapod import auth
from mediapod.protocol import signal_pb2
from mediapod.routing.local import LocalRouter
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.node import MediaNode
from mediapod.signal import session
from mediapod.signal.decoding import UndecodableRequest
from mediapod.signal.gateway import SignalGateway
from mediapod.signal.session import SessionHost
from mediapod.signal.stream import ProtocolViolation
from tests.support.fake_signal import FakeTransport

KEY, SECRET = "gateway-test", "g" * 32


class ElsewhereRouter(LocalRouter):
    """Every room is hosted on another node."""

    async def node_for_room(self, room_name: str) -> str:
        return "other-node"


def token(identity: str = "alice", **grant: object) -> str:
    video = auth.VideoGrant(**{"room_join": True, "room": "room", **grant})  # type: ignore[arg-type]
    return auth.AccessToken(KEY, SECRET).with_identity(identity).with_grant(video).to_jwt()


def gateway(node: MediaNode, router: LocalRouter | None = None) -> SignalGateway:
    router = router or LocalRouter(node.context.node_id)
    return SignalGateway(SessionHost(node), router, auth.TokenVerifier({KEY: SECRET}), forwarder=None)


async def refusal(gateway: SignalGateway, first: signal_pb2.SignalRequest | UndecodableRequest | None) -> RequestError:
    client = FakeTransport()
    client.send(first)
    with pytest.raises(RequestError) as refused:
        await gateway.serve(client)
    assert client.taken == []
    return refused.value


async def test_a_verified_join_for_a_room_here_is_hosted_here(node: MediaNode) -> None:
    client = FakeTransport()
    client.request(join=signal_pb2.JoinRequest(token=token()))
    client.hang_up()
    await gateway(node).serve(client)
    assert client.kinds() == ["join"] and client.taken[0].join.room.name == "room"


@pytest.mark.parametrize(
    ("join", "code", "words"),
    [
        (signal_pb2.JoinRequest(token="a.b.c"), ErrorCode.UNAUTHENTICATED, "malformed"),
        (signal_pb2.JoinRequest(token=token(), room="elsewhere"), ErrorCode.PERMISSION_DENIED, "not 'elsewhere'"),
        (signal_pb2.JoinRequest(token=token(room_join=False)), ErrorCode.PERMISSION_DENIED, "roomJoin"),
    ],
)
async def test_a_join_the_token_does_not_allow_is_refused(node: MediaNode, join: signal_pb2.JoinRequest, code: ErrorCode, words: str) -> None:
    refused = await refusal(gateway(node), signal_pb2.SignalRequest(join=join))
    assert refused.code == code and words in refused.message
    assert not node.rooms


async def test_undecodable_bytes_first_are_a_protocol_violation(node: MediaNode) -> None:
    refused = await refusal(gateway(node), UndecodableRequest("a SignalRequest of 4 bytes could not be decoded (x)"))
    assert isinstance(refused, ProtocolViolation) and "could not be decoded" in refused.message


async def test_no_join_in_time_is_deadline_exceeded(node: MediaNode, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "JOIN_TIMEOUT", 0.01)
    with pytest.raises(RequestError) as refused:
        await gateway(node).serve(FakeTransport())
    assert refused.value.code == ErrorCode.DEADLINE_EXCEEDED


async def test_a_room_hosted_elsewhere_without_a_relay_is_unavailable(node: MediaNode) -> None:
    refused = await refusal(gateway(node, ElsewhereRouter("here")), signal_pb2.SignalRequest(join=signal_pb2.JoinRequest(token=token())))
    assert refused.code == ErrorCode.UNAVAILABLE and "other-node" in refused.message
