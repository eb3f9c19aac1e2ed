"""``sbctl room join``: take part in a room from a terminal, optionally publishing demo media.

With ``--publish-demo`` it publishes scrolling colour bars and a 440 Hz tone
(mediapod.demo_media), so a new user sees and hears something in the demo
page or a LiveKit SDK client without a camera or a browser. It joins with our
own client (mediapod.client: gRPC signaling, aiortc media), which the base
install carries, and stays until Ctrl-C or until the server ends the session.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys

from mediapod import client
from mediapod.auth import AccessToken, VideoGrant
from mediapod.demo_media import MovingBarsTrack, SineTrack
from mediapod.protocol import models_pb2


def add_command(room_commands: argparse._SubParsersAction, server: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """Register ``room join``; ``server`` holds --url and the API key."""
    join = room_commands.add_parser(
        "join",
        parents=[server],
        help="join a room (and publish a test pattern and a tone)",
        description="Join ROOM and stay until Ctrl-C.",
    )
    join.add_argument("room", metavar="ROOM")
    join.add_argument("--identity", default="", help="participant identity (default: sbctl-<random>)")
    join.add_argument("--publish-demo", action="store_true", help="publish scrolling colour bars and a 440 Hz tone")
    join.set_defaults(handler=_join)


def _join(args: argparse.Namespace) -> int:
    identity = args.identity or f"sbctl-{secrets.token_hex(2)}"
    token = (
        AccessToken(args.api_key, args.api_secret)
        .with_identity(identity)
        .with_grant(VideoGrant(room_join=True, room=args.room))
        .to_jwt()
    )
    try:
        return asyncio.run(_stay(args.url, token, args.room, identity, args.publish_demo))
    except KeyboardInterrupt:  # Ctrl-C: asyncio.run cancelled _stay, which left the room on its way out
        return 0


async def _stay(url: str, token: str, room: str, identity: str, publish_demo: bool) -> int:
    try:
        session = await client.connect(url, token, auto_subscribe=False)
    except client.JoinError as exc:
        print(f"sbctl: cannot join {room} at {url}: {exc}", file=sys.stderr)
        return 1
    async with session:
        others = sorted(p.identity for p in session.participants.values())
        print(f"joined {room} as {identity}; also here: {', '.join(others) or 'nobody'}", flush=True)
        if publish_demo:
            bars = MovingBarsTrack()
            await session.publish(bars, name="demo-pattern", source=models_pb2.CAMERA)
            await session.publish(SineTrack(), name="demo-tone", source=models_pb2.MICROPHONE)
            print(f"publishing {bars.width}x{bars.height} colour bars and a 440 Hz tone; Ctrl-C to leave", flush=True)
        await session.closed.wait()
    print(f"sbctl: the server ended the session: {session.close_reason or 'no reason given'}", file=sys.stderr)
    return 1
