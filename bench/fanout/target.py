"""What the generator needs from an SFU under test: start it, publish into a room, subscribe to it."""

from __future__ import annotations

from typing import Protocol

from bench.fanout.sdp import LocalTransport, RemoteDescription


class Unavailable(Exception):
    """The SFU is not installed or cannot run here; the message says how to get it."""


class Target(Protocol):
    """One SFU. Signaling happens here; ICE and DTLS are the generator's (endpoint.py) for all of them."""

    name: str

    async def start(self, ip: str) -> None:
        """Start the SFU on ``ip`` (inside the bench's network namespace); raise Unavailable if it cannot run."""

    def pids(self) -> list[int]:
        """Processes whose CPU time and RSS are the SFU's."""

    async def publish(self, room: int, local: LocalTransport, audio_ssrc: int, video_ssrc: int) -> RemoteDescription:
        """Open room (first call per room) and publish Opus + VP8 with these SSRCs; the SFU's transport parameters."""

    async def subscribe(self, room: int, local: LocalTransport) -> RemoteDescription:
        """A new subscriber to both tracks of room's publisher; the SFU's transport parameters."""

    async def stop(self) -> None:
        """Stop the SFU and everything start() made."""
