"""Who is calling: access tokens checked into the model's error vocabulary.

Signal sessions and room administration, on whichever node and behind
whichever front end, verify tokens here so a refusal reads the same
everywhere: UNAUTHENTICATED for a token that does not verify,
PERMISSION_DENIED for one that does not allow what is asked.
"""

from __future__ import annotations

from dataclasses import dataclass

from mediapod import auth
from mediapod.rtc.errors import ErrorCode, RequestError


@dataclass(frozen=True, slots=True)
class Caller:
    """A verified caller; the token travels on with a call relayed to another node, which checks it again."""

    token: str
    claims: auth.Claims


def authenticate(verifier: auth.TokenVerifier, token: str) -> Caller:
    """Verify token.

    Raises:
        RequestError: UNAUTHENTICATED (malformed, forged, expired) or PERMISSION_DENIED.
    """
    try:
        return Caller(token, verifier.verify(token))
    except auth.PermissionDenied as exc:
        raise RequestError(ErrorCode.PERMISSION_DENIED, exc.reason) from None
    except auth.AuthError as exc:
        raise RequestError(ErrorCode.UNAUTHENTICATED, exc.reason) from None


def check_room_join(claims: auth.Claims, room_name: str) -> None:
    """Raises RequestError (PERMISSION_DENIED) unless the claims may join room_name."""
    try:
        auth.require_room_join(claims, room_name)
    except auth.PermissionDenied as exc:
        raise RequestError(ErrorCode.PERMISSION_DENIED, exc.reason) from None
