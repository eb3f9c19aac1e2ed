"""Twirp's error vocabulary: a refusal as the JSON body ``{"code", "msg"}`` and HTTP status Twirp clients expect.

Twirp (spec v7) always answers errors in JSON, whatever the request's
content type, and ties each code to one HTTP status. LiveKit's server SDKs
read ``code`` and ``msg`` from that body, and livekit-api retries 5xx answers,
so the status matters as much as the code. The model's ErrorCodes map to the
Twirp codes of the same name; ``malformed`` and ``bad_route`` are Twirp's own,
for a body that does not decode and a request that names no method we serve.
"""

from __future__ import annotations

from mediapod.rtc.errors import ErrorCode, RequestError

# Every Twirp code we answer with, and its HTTP status (Twirp spec v7, "Error codes").
HTTP_STATUS: dict[str, int] = {
    "invalid_argument": 400,
    "malformed": 400,
    "deadline_exceeded": 408,
    "not_found": 404,
    "bad_route": 404,
    "permission_denied": 403,
    "unauthenticated": 401,
    "resource_exhausted": 429,
    "failed_precondition": 412,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
}

_FROM_MODEL = {code: code.value.lower() for code in ErrorCode}
assert set(_FROM_MODEL.values()) <= set(HTTP_STATUS), "every ErrorCode needs a Twirp status"


class TwirpError(Exception):
    """A Twirp call refused; ``code`` is one of HTTP_STATUS's keys."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg

    @classmethod
    def from_request_error(cls, error: RequestError) -> TwirpError:
        return cls(_FROM_MODEL[error.code], error.message)

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]

    def body(self) -> dict[str, str]:
        return {"code": self.code, "msg": self.msg}
