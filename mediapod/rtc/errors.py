"""Errors the room model raises at a participant's request.

Each carries a status name from gRPC's vocabulary so any signaling front end
(gRPC today, LiveKit's WebSocket protocol later) can map it without knowing
the model's internals. The signaling session layer uses the same codes for
what ends a session (a token that does not verify, no join in time), so
front ends have one vocabulary to translate.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.Enum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    NOT_FOUND = "NOT_FOUND"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    INTERNAL = "INTERNAL"
    UNAVAILABLE = "UNAVAILABLE"


class RequestError(Exception):
    """A request was refused; the participant's state is as it was before it."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
