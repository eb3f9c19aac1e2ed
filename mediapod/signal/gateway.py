"""Where every client signal stream begins: the join is checked, then hosted here or forwarded.

Any node accepts any participant. The gateway reads the JoinRequest,
verifies the token and the room grant, asks the router which node hosts the
room, and serves the session here (SessionHost) or hands it to a
SessionForwarder (the Redis relay) that carries it to the hosting node.
Front ends (gRPC today, LiveKit's WebSocket next) wrap their stream in a
SignalTransport and call serve.
"""

from __future__ import annotations

from typing import Protocol

from mediapod import auth
from mediapod.protocol import signal_pb2
from mediapod.routing.router import Router
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.signal.access import authenticate, check_room_join
from mediapod.signal.session import SessionHost, read_join
from mediapod.signal.stream import SignalTransport


class SessionForwarder(Protocol):
    """Carries a session to the node hosting its room."""

    async def forward(
        self, host: str, join: signal_pb2.JoinRequest, claims: auth.Claims, room_name: str, transport: SignalTransport
    ) -> None:
        """Relay the session to host until either side ends it; raises as SessionHost.serve does."""
        ...


class SignalGateway:
    """Starts each client's session on the node that hosts its room."""

    def __init__(
        self, sessions: SessionHost, router: Router, verifier: auth.TokenVerifier, forwarder: SessionForwarder | None
    ) -> None:
        """forwarder is None when every room is hosted here (LocalRouter)."""
        self._sessions = sessions
        self._router = router
        self._verifier = verifier
        self._forwarder = forwarder

    async def serve(self, transport: SignalTransport) -> None:
        """Run one client's session from its JoinRequest to its end.

        Raises:
            RequestError: the session ends with this status: UNAUTHENTICATED,
                PERMISSION_DENIED, no room for it, a join refused, a
                ProtocolViolation.
            StreamAbandoned: the client is not reading.
        """
        join = await read_join(transport)
        claims = authenticate(self._verifier, join.token).claims
        room_name = join.room or claims.video.room
        check_room_join(claims, room_name)
        host = await self._router.node_for_room(room_name)
        if host == self._router.node_id:
            await self._sessions.serve(join, claims, room_name, transport)
        elif self._forwarder is None:
            raise RequestError(ErrorCode.UNAVAILABLE, f"room {room_name!r} is hosted on node {host!r}")
        else:
            await self._forwarder.forward(host, join, claims, room_name, transport)
