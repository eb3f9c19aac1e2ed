"""What a LiveKit client's connect (or /rtc/validate) request asks for, and whether its token allows it.

LiveKit's v0 URL carries the session's options as query parameters and the
token as ``Authorization: Bearer`` (the Rust and Python SDKs) or as the
``access_token`` parameter (the browser SDK, which cannot set headers on a
WebSocket). Access is judged before the WebSocket is accepted, as LiveKit
does, so a refused client sees an HTTP status instead of an opened and
closed socket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mediapod import auth
from mediapod.protocol import signal_pb2
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.signal.access import authenticate, check_room_join
from mediapod.signal.livekit.data_codec import FORMAT as DATA_FORMAT

# The HTTP status LiveKit answers for each refusal; a refused token is 401 whatever the reason.
_HTTP_STATUS = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 401,
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.UNAVAILABLE: 503,
}


@dataclass(frozen=True, slots=True)
class ConnectParams:
    """A LiveKit v0 connect request's options (the /rtc query string and its token)."""

    token: str
    room: str = ""              # empty: the room the token grants
    auto_subscribe: bool = True
    adaptive_stream: bool = False
    reconnect: bool = False     # a resume of participant_sid's dropped signal connection
    participant_sid: str = ""
    sdk: str = ""

    def join_request(self) -> signal_pb2.JoinRequest:
        """The JoinRequest our session layer reads first, as a gRPC client would send it."""
        return signal_pb2.JoinRequest(
            token=self.token, room=self.room, disable_auto_subscribe=not self.auto_subscribe, data_format=DATA_FORMAT
        )


def connect_params(headers: Mapping[str, str], query: Mapping[str, str]) -> ConnectParams:
    """Read a connect request.

    Raises:
        RequestError: UNAUTHENTICATED when it carries no token.
    """
    authorization = headers.get("Authorization", "")
    token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else query.get("access_token", "")
    if not token:
        raise RequestError(ErrorCode.UNAUTHENTICATED, "no access token: send 'Authorization: Bearer <token>' or ?access_token=")
    return ConnectParams(
        token=token,
        room=query.get("room", ""),
        auto_subscribe=_flag(query.get("auto_subscribe"), default=True),
        adaptive_stream=_flag(query.get("adaptive_stream"), default=False),
        reconnect=_flag(query.get("reconnect"), default=False),
        participant_sid=query.get("sid", ""),
        sdk=query.get("sdk", ""),
    )


def check_access(verifier: auth.TokenVerifier, params: ConnectParams) -> auth.Claims:
    """The token's claims if they let it join the room it asks for.

    Raises:
        RequestError: UNAUTHENTICATED (bad signature, expired, malformed) or
            PERMISSION_DENIED (no roomJoin, another room).
    """
    claims = authenticate(verifier, params.token).claims
    check_room_join(claims, params.room or claims.video.room)
    return claims


def http_status(code: ErrorCode) -> int:
    """The HTTP status of a refused connect, as LiveKit answers it."""
    return _HTTP_STATUS.get(code, 500)


def _flag(value: str | None, *, default: bool) -> bool:
    """LiveKit's boolean query parameters: "1"/"true" or "0"/"false"; absent means the default."""
    if value is None or value == "":
        return default
    return value.lower() in ("1", "true")
