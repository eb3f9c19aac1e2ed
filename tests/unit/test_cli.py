"""``sbctl``: tokens the media pod's verifier accepts; room and participant commands make the right RoomService calls."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message

from mediapod.auth import Claims, TokenVerifier, VideoGrant
from mediapod.cli import DEV_API_KEY, DEV_API_SECRET, DEV_URL, build_parser, main
from mediapod.protocol import models_pb2, room_service_pb2, room_service_pb2_grpc

API_KEY = "APIcli"
API_SECRET = "cli-secret-long-enough-for-hs256-012345"
CREDENTIALS = ["--api-key", API_KEY, "--api-secret", API_SECRET]
SBCTL = Path(sys.executable).with_name("sbctl")


@pytest.fixture(autouse=True)
def _no_credentials_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own SWITCHBOARD_* variables must not change what tests see."""
    monkeypatch.delenv("SWITCHBOARD_API_KEY", raising=False)
    monkeypatch.delenv("SWITCHBOARD_API_SECRET", raising=False)
    monkeypatch.delenv("SWITCHBOARD_URL", raising=False)


def _create(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["token", "create", *args]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "stdout must hold only the token"
    return out.strip()


def test_token_create_prints_a_verifiable_join_token(capsys: pytest.CaptureFixture[str]) -> None:
    token = _create(
        capsys, *CREDENTIALS, "--room", "standup", "--identity", "alice", "--name", "Alice", "--metadata", "m"
    )

    claims = TokenVerifier({API_KEY: API_SECRET}).verify(token)

    assert (claims.identity, claims.name, claims.metadata, claims.api_key) == ("alice", "Alice", "m", API_KEY)
    assert claims.video == VideoGrant(room_join=True, room="standup")
    assert claims.nbf is not None and claims.exp - claims.nbf == timedelta(hours=6)


def test_token_create_flags_set_grants(capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["--no-publish", "--no-subscribe", "--admin", "--create", "--list", "--hidden"]
    token = _create(capsys, *CREDENTIALS, "--room", "r", "--identity", "bot", *flags)

    grant = TokenVerifier({API_KEY: API_SECRET}).verify(token).video

    assert grant == VideoGrant(
        room_join=True,
        room="r",
        can_publish=False,
        can_subscribe=False,
        room_admin=True,
        room_create=True,
        room_list=True,
        hidden=True,
    )


@pytest.mark.parametrize(
    ("valid_for", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("6h", timedelta(hours=6)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(minutes=90)),
        ("3600", timedelta(hours=1)),
    ],
)
def test_valid_for_sets_token_lifetime(
    capsys: pytest.CaptureFixture[str], valid_for: str, expected: timedelta
) -> None:
    token = _create(capsys, *CREDENTIALS, "--room", "r", "--identity", "a", "--valid-for", valid_for)
    claims = TokenVerifier({API_KEY: API_SECRET}).verify(token)
    assert claims.nbf is not None and claims.exp - claims.nbf == expected


@pytest.mark.parametrize("valid_for", ["5x", "h", "-1h", "1.5h", "0", "0s", "6 h", ""])
def test_bad_valid_for_is_a_usage_error(capsys: pytest.CaptureFixture[str], valid_for: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["token", "create", "--room", "r", "--identity", "a", f"--valid-for={valid_for}"])

    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--valid-for" in err and "invalid duration" in err


def test_credentials_default_to_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_API_KEY", API_KEY)
    monkeypatch.setenv("SWITCHBOARD_API_SECRET", API_SECRET)

    token = _create(capsys, "--room", "r", "--identity", "a")

    assert TokenVerifier({API_KEY: API_SECRET}).verify(token).api_key == API_KEY


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_credentials_default_to_dev_mode_pair(capsys: pytest.CaptureFixture[str]) -> None:
    token = _create(capsys, "--room", "r", "--identity", "a")
    assert TokenVerifier({DEV_API_KEY: DEV_API_SECRET}).verify(token).api_key == "devkey"


def test_empty_identity_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["token", "create", *CREDENTIALS, "--room", "r", "--identity", ""])
    assert exit_info.value.code == 2
    assert "needs an identity" in capsys.readouterr().err


def test_missing_subcommand_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


def test_installed_console_script_prints_a_token() -> None:
    assert SBCTL.exists(), f"{SBCTL} is missing; run `pip install -e .`"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}

    result = subprocess.run(
        [str(SBCTL), "token", "create", *CREDENTIALS, "--room", "r", "--identity", "alice"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert TokenVerifier({API_KEY: API_SECRET}).verify(result.stdout.strip()).identity == "alice"


# -- room and participant commands, against a RoomService that records calls --


class RecordingRoomService(room_service_pb2_grpc.RoomServiceServicer):
    """Answers with canned replies and keeps each call's request and verified token claims."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Message, Claims]] = []
        self.fail_with: tuple[grpc.StatusCode, str] | None = None

    def _record(self, method: str, request: Message, context: grpc.ServicerContext, reply: Message) -> Message:
        token = dict(context.invocation_metadata())["authorization"].removeprefix("Bearer ")
        self.calls.append((method, request, TokenVerifier({API_KEY: API_SECRET}).verify(token)))
        if self.fail_with:
            context.abort(*self.fail_with)
        return reply

    def ListRooms(self, request, context):  # noqa: N802, ANN001, ANN201
        rooms = [
            models_pb2.Room(name="standup", sid="RM_1", num_participants=3, num_publishers=2, node_id="node-a"),
            models_pb2.Room(name="lobby", sid="RM_2", node_id="node-b"),
        ]
        return self._record("ListRooms", request, context, room_service_pb2.ListRoomsResponse(rooms=rooms))

    def CreateRoom(self, request, context):  # noqa: N802, ANN001, ANN201
        return self._record("CreateRoom", request, context, models_pb2.Room(name=request.name, sid="RM_9", node_id="node-a"))

    def DeleteRoom(self, request, context):  # noqa: N802, ANN001, ANN201
        return self._record("DeleteRoom", request, context, room_service_pb2.DeleteRoomResponse())

    def ListParticipants(self, request, context):  # noqa: N802, ANN001, ANN201
        alice = models_pb2.ParticipantInfo(
            identity="alice",
            sid="PA_1",
            state=models_pb2.ParticipantInfo.ACTIVE,
            tracks=[models_pb2.TrackInfo(sid="TR_a", type=models_pb2.AUDIO), models_pb2.TrackInfo(sid="TR_v", type=models_pb2.VIDEO)],
        )
        bob = models_pb2.ParticipantInfo(identity="bob", sid="PA_2", state=models_pb2.ParticipantInfo.JOINED)
        return self._record("ListParticipants", request, context, room_service_pb2.ListParticipantsResponse(participants=[alice, bob]))

    def RemoveParticipant(self, request, context):  # noqa: N802, ANN001, ANN201
        return self._record("RemoveParticipant", request, context, room_service_pb2.RemoveParticipantResponse())


@pytest.fixture
def room_service() -> Iterator[tuple[RecordingRoomService, list[str]]]:
    """A RoomService on a free loopback port, and the flags that point sbctl at it."""
    service = RecordingRoomService()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    room_service_pb2_grpc.add_RoomServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield service, ["--url", f"127.0.0.1:{port}", *CREDENTIALS]
    server.stop(None)


def _lines(capsys: pytest.CaptureFixture[str]) -> list[list[str]]:
    return [line.split() for line in capsys.readouterr().out.splitlines()]


def test_room_list_prints_a_row_per_room_and_asks_with_a_room_list_token(
    room_service: tuple[RecordingRoomService, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    service, flags = room_service

    assert main(["room", "list", *flags]) == 0

    assert _lines(capsys) == [
        ["NAME", "SID", "PARTICIPANTS", "PUBLISHERS", "NODE"],
        ["standup", "RM_1", "3", "2", "node-a"],
        ["lobby", "RM_2", "0", "0", "node-b"],
    ]
    [(method, request, claims)] = service.calls
    assert (method, list(request.names), claims.api_key, claims.video.room_list) == ("ListRooms", [], API_KEY, True)
    assert claims.exp - claims.nbf <= timedelta(minutes=5), "admin tokens sbctl mints must be short-lived"


def test_room_create_and_delete_send_the_room_and_its_settings(
    room_service: tuple[RecordingRoomService, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    service, flags = room_service

    assert main(["room", "create", "standup", "--empty-timeout", "30", "--max-participants", "5", "--metadata", "m", *flags]) == 0
    assert main(["room", "delete", "standup", *flags]) == 0

    assert _lines(capsys) == [["standup", "RM_9", "on", "node-a"], ["deleted", "standup"]]
    (create, create_request, create_claims), (delete, delete_request, _) = service.calls
    assert (create, create_request.name, create_request.empty_timeout, create_request.max_participants, create_request.metadata) == (
        "CreateRoom", "standup", 30, 5, "m",
    )
    assert create_claims.video.room_create
    assert (delete, delete_request.room) == ("DeleteRoom", "standup")


def test_participant_list_and_remove_use_a_room_admin_token_for_that_room(
    room_service: tuple[RecordingRoomService, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    service, flags = room_service

    assert main(["participant", "list", "standup", *flags]) == 0
    assert main(["participant", "remove", "standup", "bob", *flags]) == 0

    assert _lines(capsys) == [
        ["IDENTITY", "SID", "STATE", "TRACKS"],
        ["alice", "PA_1", "active", "audio:TR_a", "video:TR_v"],
        ["bob", "PA_2", "joined"],
        ["removed", "bob", "from", "standup"],
    ]
    (_, list_request, list_claims), (method, remove_request, remove_claims) = service.calls
    assert list_request.room == "standup"
    assert (method, remove_request.room, remove_request.identity) == ("RemoveParticipant", "standup", "bob")
    for claims in (list_claims, remove_claims):
        assert (claims.video.room_admin, claims.video.room) == (True, "standup")


def test_a_refused_call_exits_1_with_the_servers_code_and_message(
    room_service: tuple[RecordingRoomService, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    service, flags = room_service
    service.fail_with = (grpc.StatusCode.NOT_FOUND, "room 'gone' does not exist")

    with pytest.raises(SystemExit) as exit_info:
        main(["room", "delete", "gone", *flags])

    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip().endswith("DeleteRoom at " + flags[1] + " failed: NOT_FOUND: room 'gone' does not exist")


def test_unreachable_pod_exits_1_naming_the_address(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening: connections are refused
        with pytest.raises(SystemExit) as exit_info:
            main(["room", "list", "--url", address])

    assert exit_info.value.code == 1
    assert f"ListRooms at {address} failed: UNAVAILABLE" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["http://127.0.0.1:7880", "ws://127.0.0.1:7880", "127.0.0.1"])
def test_a_livekit_style_url_is_a_usage_error_naming_the_grpc_port(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["room", "list", "--url", url])

    assert exit_info.value.code == 2
    assert "host:port (7881 in dev)" in capsys.readouterr().err


def test_url_defaults_to_the_dev_pod_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert build_parser().parse_args(["room", "list"]).url == DEV_URL == "127.0.0.1:7881"
    monkeypatch.setenv("SWITCHBOARD_URL", "10.0.0.5:7881")
    assert build_parser().parse_args(["participant", "list", "r"]).url == "10.0.0.5:7881"


def test_room_join_to_an_unreachable_pod_exits_1_naming_room_address_and_code(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{closed.getsockname()[1]}"
        status = main(["room", "join", "standup", "--publish-demo", "--url", address])

    assert status == 1
    assert f"cannot join standup at {address}: UNAVAILABLE" in capsys.readouterr().err
