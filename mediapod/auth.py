"""Access tokens: HS256 JWTs with LiveKit's claim names, and the checks on them.

The claim layout (``iss`` = API key, ``sub`` = identity, ``video`` = grant
with camelCase names) is LiveKit's, so tokens minted by LiveKit's server SDKs
or ``lk token create`` work here and ours work with LiveKit tooling.

Only HS256 with a secret we know is accepted: the API key in ``iss`` selects
the secret, so the header's ``alg`` must never be trusted to choose how a
token is checked (the classic ``alg: none`` / algorithm-confusion attacks).

Every failure surfaces as an :class:`AuthError` whose ``reason`` a person can
act on; signaling maps :class:`PermissionDenied` to PERMISSION_DENIED and every
other :class:`AuthError` to UNAUTHENTICATED.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
from jwt.warnings import InsecureKeyLengthWarning

ALGORITHM = "HS256"
DEFAULT_TTL = timedelta(hours=6)
# Media pods and token issuers do not share a clock; a few seconds of skew
# must not reject a token that was minted "just now" elsewhere.
CLOCK_SKEW_LEEWAY = timedelta(seconds=10)


class AuthError(Exception):
    """A token or its grants did not allow the request; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidToken(AuthError):
    """The token is malformed, forged, signed the wrong way, or for an unknown key."""


class ExpiredToken(AuthError):
    """The token's ``exp`` has passed (beyond the clock-skew leeway)."""


class TokenNotYetValid(AuthError):
    """The token's ``nbf`` is still in the future (beyond the clock-skew leeway)."""


class PermissionDenied(AuthError):
    """The token is genuine but its grants do not cover the request.

    Kept apart from the other errors because it is PERMISSION_DENIED, not
    UNAUTHENTICATED: retrying with the same identity and a better token helps.
    """


@dataclass(frozen=True)
class VideoGrant:
    """What a token lets its holder do, carried in the JWT ``video`` claim.

    Defaults follow LiveKit: a token may publish, subscribe and send data
    unless it says otherwise, and grants nothing else.
    """

    room_join: bool = False
    room: str = ""
    can_publish: bool = True
    can_subscribe: bool = True
    can_publish_data: bool = True
    room_admin: bool = False
    room_create: bool = False
    room_list: bool = False
    hidden: bool = False
    # An agent worker may register at /agent (livekit-agents' worker token); job tokens carry it too.
    agent: bool = False

    def to_claim(self) -> dict[str, bool | str]:
        """Return the ``video`` claim, every grant spelled out with LiveKit's name."""
        return {claim: getattr(self, attr) for attr, claim in _VIDEO_CLAIM_NAMES.items()}

    @classmethod
    def from_claim(cls, claim: object) -> VideoGrant:
        """Parse a ``video`` claim; absent grants take their defaults.

        Unknown keys are ignored because LiveKit defines more grants
        (recorder, agent, ...) than Switchboard acts on.

        Raises:
            InvalidToken: the claim is not an object or a grant has the wrong type.
        """
        if not isinstance(claim, dict):
            raise InvalidToken(f"token 'video' claim must be an object, got {_json_type(claim)}")
        values: dict[str, Any] = {}
        for grant_field in dataclasses.fields(cls):
            name = _VIDEO_CLAIM_NAMES[grant_field.name]
            if name not in claim:
                continue
            value = claim[name]
            expected = type(grant_field.default)  # every grant is a bool or str
            if not isinstance(value, expected):
                wanted = "a string" if expected is str else "a boolean"
                raise InvalidToken(f"video grant '{name}' must be {wanted}, got {_json_type(value)}")
            values[grant_field.name] = value
        return cls(**values)


_VIDEO_CLAIM_NAMES: dict[str, str] = {
    "room_join": "roomJoin",
    "room": "room",
    "can_publish": "canPublish",
    "can_subscribe": "canSubscribe",
    "can_publish_data": "canPublishData",
    "room_admin": "roomAdmin",
    "room_create": "roomCreate",
    "room_list": "roomList",
    "hidden": "hidden",
    "agent": "agent",
}


@dataclass(frozen=True)
class Claims:
    """The verified contents of an access token."""

    identity: str  # JWT `sub`; "" for server-to-server tokens without a participant
    name: str
    metadata: str
    video: VideoGrant
    api_key: str  # JWT `iss`
    exp: datetime
    nbf: datetime | None
    # LiveKit's `attributes` claim: string key/value pairs about the participant.
    attributes: Mapping[str, str] = field(default_factory=dict)
    # LiveKit's `roomConfig.agents`: (agent name, metadata) of each agent to dispatch
    # when this participant's join creates the room.
    room_agents: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AccessToken:
    """Builds a signed access token.

    Immutable, so a base token (key, secret, grant) can be shared and
    specialised per participant without one caller's ``with_*`` leaking into
    another's token.
    """

    api_key: str
    api_secret: str = field(repr=False)
    _: KW_ONLY
    identity: str = ""
    name: str = ""
    metadata: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)
    grant: VideoGrant = VideoGrant()
    ttl: timedelta = DEFAULT_TTL

    def with_identity(self, identity: str) -> AccessToken:
        """Return a copy whose token names this participant (``sub`` and ``jti``)."""
        return replace(self, identity=identity)

    def with_name(self, name: str) -> AccessToken:
        """Return a copy with this display name."""
        return replace(self, name=name)

    def with_metadata(self, metadata: str) -> AccessToken:
        """Return a copy with this participant metadata (opaque to the server)."""
        return replace(self, metadata=metadata)

    def with_attributes(self, attributes: Mapping[str, str]) -> AccessToken:
        """Return a copy with these participant attributes (LiveKit's ``attributes`` claim)."""
        return replace(self, attributes=dict(attributes))

    def with_grant(self, grant: VideoGrant) -> AccessToken:
        """Return a copy carrying this grant."""
        return replace(self, grant=grant)

    def with_ttl(self, ttl: timedelta) -> AccessToken:
        """Return a copy whose token stays valid for ``ttl`` after it is minted."""
        return replace(self, ttl=ttl)

    def to_jwt(self, *, now: datetime | None = None) -> str:
        """Sign and return the token, valid from ``now`` (default: the current time).

        Raises:
            ValueError: the token could never be used (no key or secret, a
                non-positive TTL, or a join grant without an identity).
        """
        if not self.api_key or not self.api_secret:
            raise ValueError("an access token needs an API key and secret")
        if self.ttl <= timedelta(0):
            raise ValueError(f"token TTL must be positive, got {self.ttl}")
        if self.grant.room_join and not self.identity:
            raise ValueError("a token that grants roomJoin needs an identity")
        issued = now or datetime.now(timezone.utc)
        payload: dict[str, Any] = {
            "iss": self.api_key,
            "nbf": int(issued.timestamp()),
            "exp": int((issued + self.ttl).timestamp()),
            "video": self.grant.to_claim(),
        }
        # LiveKit omits empty optional claims; so do we, so tokens look alike.
        if self.identity:
            payload["sub"] = self.identity
            payload["jti"] = self.identity
        if self.name:
            payload["name"] = self.name
        if self.metadata:
            payload["metadata"] = self.metadata
        if self.attributes:
            payload["attributes"] = dict(self.attributes)
        with warnings.catch_warnings():
            # Short secrets are reported once, by the media pod at start
            # (see weak_secrets), not on every token.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return jwt.encode(payload, self.api_secret, algorithm=ALGORITHM)


class TokenVerifier:
    """Checks access tokens against the configured API keys."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        """Accept tokens issued by any of ``keys`` (API key -> secret).

        Raises:
            ValueError: a key has an empty secret, which anyone could sign with.
        """
        empty = sorted(key for key, secret in keys.items() if not secret)
        if empty:
            raise ValueError(f"API keys with an empty secret: {', '.join(empty)}")
        self._keys = dict(keys)

    def verify(self, token: str) -> Claims:
        """Return the claims of a genuine, currently valid token.

        Raises:
            InvalidToken: malformed, wrong algorithm, unknown API key, bad
                signature, or claims of the wrong type.
            ExpiredToken: past ``exp``.
            TokenNotYetValid: before ``nbf``.
        """
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"token is malformed: {exc}") from exc

        alg = header.get("alg")
        if alg != ALGORITHM:
            raise InvalidToken(f"token algorithm {alg!r} is not accepted, only {ALGORITHM}")

        # The signature can only be checked once we know whose secret to use.
        api_key = unverified.get("iss")
        if not isinstance(api_key, str) or not api_key:
            raise InvalidToken("token has no API key in its 'iss' claim")
        secret = self._keys.get(api_key)
        if secret is None:
            raise InvalidToken(f"unknown API key {api_key!r}")

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InsecureKeyLengthWarning)
                payload = jwt.decode(
                    token,
                    secret,
                    algorithms=[ALGORITHM],
                    leeway=CLOCK_SKEW_LEEWAY,
                    options={"require": ["exp", "iss"]},
                )
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken("token signature is invalid") from exc
        except jwt.ExpiredSignatureError as exc:
            raise ExpiredToken("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenNotYetValid("token is not valid yet (its nbf or iat is in the future)") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"token has no '{exc.claim}' claim") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"token is invalid: {exc}") from exc

        return Claims(
            identity=_optional_str(payload, "sub"),
            name=_optional_str(payload, "name"),
            metadata=_optional_str(payload, "metadata"),
            video=VideoGrant.from_claim(payload.get("video", {})),
            api_key=api_key,
            exp=_numeric_date(payload, "exp"),
            nbf=_numeric_date(payload, "nbf") if "nbf" in payload else None,
            attributes=_attributes(payload),
            room_agents=_room_agents(payload),
        )


# HS256 wants a key at least as long as its output (RFC 7518 section 3.2).
MIN_SECRET_BYTES = 32


def weak_secrets(keys: Mapping[str, str]) -> list[str]:
    """API keys whose secret is shorter than HS256 wants; the pod warns about them at start."""
    return [key for key, secret in keys.items() if len(secret.encode()) < MIN_SECRET_BYTES]


def require_room_join(claims: Claims, room_name: str) -> None:
    """Allow joining ``room_name`` only with a roomJoin grant for that room.

    Raises:
        PermissionDenied: no roomJoin grant, no identity, or another room.
    """
    grant = claims.video
    if not grant.room_join:
        raise PermissionDenied("token does not grant roomJoin")
    if not claims.identity:
        raise PermissionDenied("token has no identity ('sub'); joining a room needs one")
    if not grant.room:
        raise PermissionDenied(f"token names no room, so it cannot join {room_name!r}")
    if grant.room != room_name:
        raise PermissionDenied(f"token is for room {grant.room!r}, not {room_name!r}")


def _optional_str(payload: Mapping[str, Any], claim: str) -> str:
    """Return a string claim, "" when absent; reject any other type."""
    value = payload.get(claim, "")
    if not isinstance(value, str):
        raise InvalidToken(f"token '{claim}' claim must be a string, got {_json_type(value)}")
    return value


def _attributes(payload: Mapping[str, Any]) -> dict[str, str]:
    """Return the ``attributes`` claim, {} when absent; it must map strings to strings."""
    value = payload.get("attributes", {})
    if not isinstance(value, dict):
        raise InvalidToken(f"token 'attributes' claim must be an object, got {_json_type(value)}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise InvalidToken(f"token attribute {key!r} must be a string, got {_json_type(item)}")
    return value


def _room_agents(payload: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The agents of the ``roomConfig`` claim (LiveKit's RoomConfiguration as protobuf JSON); the rest is not acted on."""
    config = payload.get("roomConfig", {})
    if not isinstance(config, dict):
        raise InvalidToken(f"token 'roomConfig' claim must be an object, got {_json_type(config)}")
    agents = config.get("agents", [])
    if not isinstance(agents, list):
        raise InvalidToken(f"token roomConfig 'agents' must be an array, got {_json_type(agents)}")
    found = []
    for agent in agents:
        if not isinstance(agent, dict):
            raise InvalidToken(f"token roomConfig agent must be an object, got {_json_type(agent)}")
        name, metadata = agent.get("agentName", agent.get("agent_name", "")), agent.get("metadata", "")
        if not isinstance(name, str) or not isinstance(metadata, str):
            raise InvalidToken("token roomConfig agent's agentName and metadata must be strings")
        found.append((name, metadata))
    return tuple(found)


def _numeric_date(payload: Mapping[str, Any], claim: str) -> datetime:
    """Convert a JWT NumericDate claim; PyJWT accepts some values Python cannot date."""
    value = payload[claim]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"token '{claim}' claim must be a number, got {_json_type(value)}")
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidToken(f"token '{claim}' claim {value!r} is not a representable time") from exc


def _json_type(value: object) -> str:
    """Name a decoded JSON value's type the way a token author would say it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
