"""``sbctl``: the operator's command line for a Switchboard deployment, shaped after LiveKit's ``lk``.

``token create`` mints access tokens, so a developer can join a room without
writing a token server first; its output is just the token, so it composes in
shells: ``TOKEN=$(sbctl token create --room r --identity me)``. ``room`` and
``participant`` manage rooms through a pod (mediapod.cli_rooms), and ``room
join --publish-demo`` takes part in one (mediapod.cli_join). Every command
defaults to the dev pod and its dev key, so none needs a flag on a laptop.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta

from mediapod import cli_join, cli_rooms
from mediapod.auth import DEFAULT_TTL, AccessToken, VideoGrant

# The dev-mode credentials (LiveKit's `--dev` uses the same pair), so a token
# minted without flags works against `switchboard-media --dev`.
DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"
# The dev pod's gRPC port, where RoomService and signaling listen.
DEV_URL = "127.0.0.1:7881"

_SECONDS = re.compile(r"\d+", re.ASCII)
_DURATION_PART = re.compile(r"(\d+)([smhd])", re.ASCII)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """Parse ``90s``, ``30m``, ``6h``, ``1d``, ``1h30m`` or plain seconds (``3600``).

    Raises:
        argparse.ArgumentTypeError: not a positive duration in that syntax.
    """
    spec = text.strip()
    if _SECONDS.fullmatch(spec):
        seconds = int(spec)
    elif spec and _DURATION_PART.sub("", spec) == "":
        seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(spec))
    else:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use e.g. 90s, 30m, 6h, 1h30m or a number of seconds"
        )
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: must be longer than zero")
    return timedelta(seconds=seconds)


def build_parser() -> argparse.ArgumentParser:
    """Build the parser; credential defaults are read from the environment now, not at import."""
    parser = argparse.ArgumentParser(prog="sbctl", description="Switchboard command line.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    credentials = _credentials_options()
    server = argparse.ArgumentParser(add_help=False, parents=[credentials])
    server.add_argument(
        "--url",
        type=grpc_target,
        default=os.environ.get("SWITCHBOARD_URL", DEV_URL),
        help=f"a pod's gRPC address host:port (env SWITCHBOARD_URL, else {DEV_URL}, the dev pod)",
    )

    token = commands.add_parser("token", help="access tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="COMMAND")

    create = token_commands.add_parser(
        "create",
        parents=[credentials],
        help="mint a token that joins one room",
        description="Print an HS256 access token that lets IDENTITY join ROOM.",
    )
    create.set_defaults(handler=functools.partial(_token_create, parser=create))
    create.add_argument("--room", required=True, help="room the token may join")
    create.add_argument("--identity", required=True, help="participant identity, unique in the room")
    create.add_argument("--name", default="", help="display name")
    create.add_argument("--metadata", default="", help="participant metadata, opaque to the server")
    create.add_argument(
        "--valid-for",
        type=parse_duration,
        default=DEFAULT_TTL,
        metavar="DURATION",
        help="how long the token stays valid: 90s, 30m, 6h, 1d or seconds (default 6h)",
    )
    create.add_argument("--no-publish", action="store_true", help="deny publishing tracks")
    create.add_argument("--no-subscribe", action="store_true", help="deny subscribing to tracks")
    create.add_argument("--admin", action="store_true", help="grant roomAdmin for this room")
    create.add_argument("--create", action="store_true", help="grant roomCreate")
    create.add_argument("--list", action="store_true", help="grant roomList")
    create.add_argument("--hidden", action="store_true", help="hide the participant from others")

    room_commands = cli_rooms.add_commands(commands, server)
    cli_join.add_command(room_commands, server)
    return parser


def _credentials_options() -> argparse.ArgumentParser:
    """--api-key / --api-secret, shared by every command that signs a token."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--api-key",
        default=os.environ.get("SWITCHBOARD_API_KEY", DEV_API_KEY),
        help=f"API key, the token's issuer (env SWITCHBOARD_API_KEY, else {DEV_API_KEY!r})",
    )
    options.add_argument(
        "--api-secret",
        default=os.environ.get("SWITCHBOARD_API_SECRET", DEV_API_SECRET),
        help=f"secret of the API key (env SWITCHBOARD_API_SECRET, else {DEV_API_SECRET!r})",
    )
    return options


def grpc_target(text: str) -> str:
    """Accept ``host:port``; a LiveKit-style ``http://``/``ws://`` URL gets an error that says which port to use.

    Raises:
        argparse.ArgumentTypeError: not a host:port.
    """
    if "://" in text or not re.fullmatch(r"\[?[\w.:-]+\]?:\d+", text, re.ASCII):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give the pod's gRPC address as host:port (7881 in dev), not its HTTP/WebSocket URL"
        )
    return text


def _token_create(args: argparse.Namespace, *, parser: argparse.ArgumentParser) -> int:
    """Print a join token for ``args.room`` / ``args.identity``."""
    grant = VideoGrant(
        room_join=True,
        room=args.room,
        can_publish=not args.no_publish,
        can_subscribe=not args.no_subscribe,
        room_admin=args.admin,
        room_create=args.create,
        room_list=args.list,
        hidden=args.hidden,
    )
    token = (
        AccessToken(args.api_key, args.api_secret)
        .with_identity(args.identity)
        .with_name(args.name)
        .with_metadata(args.metadata)
        .with_grant(grant)
        .with_ttl(args.valid_for)
    )
    try:
        print(token.to_jwt())
    except ValueError as exc:  # e.g. an empty --identity or --api-secret
        parser.error(str(exc))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sbctl`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
