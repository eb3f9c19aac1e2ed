"""``sbctl room list/create/delete`` and ``sbctl participant list/remove``: the pod's gRPC RoomService.

Why gRPC and not LiveKit's Twirp: the stubs ship in this package and grpcio
is a runtime dependency, so these commands work right after ``scripts/dev``
with nothing more installed, and ``room join`` (mediapod.client) speaks gRPC
too, so one ``--url`` serves every command. Each call carries a short-lived
token minted from ``--api-key``/``--api-secret``, with only the grants the
call needs, as LiveKit's ``lk`` does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta

import grpc
from google.protobuf.message import Message

from mediapod.auth import AccessToken, VideoGrant
from mediapod.protocol import models_pb2, room_service_pb2, room_service_pb2_grpc

CALL_TIMEOUT = 10.0
ADMIN_TOKEN_TTL = timedelta(minutes=5)

_STATES = {value: name.lower() for name, value in models_pb2.ParticipantInfo.State.items()}
_KINDS = {models_pb2.AUDIO: "audio", models_pb2.VIDEO: "video", models_pb2.DATA: "data"}


def add_commands(commands: argparse._SubParsersAction, server: argparse.ArgumentParser) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    """Register ``room list|create|delete`` and ``participant list|remove``; ``server`` holds --url and the key.

    Returns the ``room`` subcommands, where ``room join`` (mediapod.cli_join) goes too.
    """
    room = commands.add_parser("room", help="rooms on the pods")
    room_commands = room.add_subparsers(dest="room_command", required=True, metavar="COMMAND")

    listing = room_commands.add_parser("list", parents=[server], help="list rooms (every pod's, through any pod)")
    listing.add_argument("names", nargs="*", metavar="ROOM", help="only these rooms")
    listing.set_defaults(handler=_room_list)

    create = room_commands.add_parser("create", parents=[server], help="create a room before anyone joins")
    create.add_argument("room", metavar="ROOM")
    create.add_argument("--empty-timeout", type=int, default=0, metavar="SECONDS", help="close after this long with nobody in (0: the pod's default)")
    create.add_argument("--max-participants", type=int, default=0, metavar="N", help="0: unlimited")
    create.add_argument("--metadata", default="", help="room metadata, sent to every participant")
    create.set_defaults(handler=_room_create)

    delete = room_commands.add_parser("delete", parents=[server], help="close a room; everyone in it is disconnected")
    delete.add_argument("room", metavar="ROOM")
    delete.set_defaults(handler=_room_delete)

    participant = commands.add_parser("participant", help="participants of a room")
    participant_commands = participant.add_subparsers(dest="participant_command", required=True, metavar="COMMAND")

    plist = participant_commands.add_parser("list", parents=[server], help="list who is in a room")
    plist.add_argument("room", metavar="ROOM")
    plist.set_defaults(handler=_participant_list)

    remove = participant_commands.add_parser("remove", parents=[server], help="disconnect a participant")
    remove.add_argument("room", metavar="ROOM")
    remove.add_argument("identity", metavar="IDENTITY")
    remove.set_defaults(handler=_participant_remove)
    return room_commands


def _room_list(args: argparse.Namespace) -> int:
    reply = _call(args, "ListRooms", room_service_pb2.ListRoomsRequest(names=args.names))
    rows = [(r.name, r.sid, str(r.num_participants), str(r.num_publishers), r.node_id) for r in reply.rooms]
    _print_table(("NAME", "SID", "PARTICIPANTS", "PUBLISHERS", "NODE"), rows)
    return 0


def _room_create(args: argparse.Namespace) -> int:
    request = room_service_pb2.CreateRoomRequest(
        name=args.room, empty_timeout=args.empty_timeout, max_participants=args.max_participants, metadata=args.metadata
    )
    room = _call(args, "CreateRoom", request)
    print(f"{room.name} {room.sid} on {room.node_id}")
    return 0


def _room_delete(args: argparse.Namespace) -> int:
    _call(args, "DeleteRoom", room_service_pb2.DeleteRoomRequest(room=args.room))
    print(f"deleted {args.room}")
    return 0


def _participant_list(args: argparse.Namespace) -> int:
    reply = _call(args, "ListParticipants", room_service_pb2.ListParticipantsRequest(room=args.room))
    rows = [
        (p.identity, p.sid, _STATES.get(p.state, str(p.state)), " ".join(f"{_KINDS.get(t.type, '?')}:{t.sid}" for t in p.tracks))
        for p in reply.participants
    ]
    _print_table(("IDENTITY", "SID", "STATE", "TRACKS"), rows)
    return 0


def _participant_remove(args: argparse.Namespace) -> int:
    request = room_service_pb2.RoomParticipantIdentity(room=args.room, identity=args.identity)
    _call(args, "RemoveParticipant", request)
    print(f"removed {args.identity} from {args.room}")
    return 0


def _call(args: argparse.Namespace, method: str, request: Message) -> Message:
    """One RoomService call with an admin token; a failure exits 1 with the server's code and message."""
    # roomAdmin holds only for the room the token names (as in LiveKit).
    grant = VideoGrant(room_create=True, room_list=True, room_admin=True, room=getattr(args, "room", ""))
    token = AccessToken(args.api_key, args.api_secret).with_grant(grant).with_ttl(ADMIN_TOKEN_TTL).to_jwt()
    with grpc.insecure_channel(args.url) as channel:
        stub: Callable[..., Message] = getattr(room_service_pb2_grpc.RoomServiceStub(channel), method)
        try:
            return stub(request, timeout=CALL_TIMEOUT, metadata=(("authorization", f"Bearer {token}"),))
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details()  # type: ignore[attr-defined]
            print(f"sbctl: {method} at {args.url} failed: {code.name}: {details}", file=sys.stderr)
            raise SystemExit(1) from None


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns, as ``lk`` and ``kubectl get`` print them; nothing but the header when empty."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
