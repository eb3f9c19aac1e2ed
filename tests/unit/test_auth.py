"""Access tokens: LiveKit-compatible claims, and every bad token is an InvalidToken."""

from __future__ import annotations

import base64
import json
import random
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediapod.auth import (
    AccessToken,
    AuthError,
    Claims,
    ExpiredToken,
    InvalidToken,
    PermissionDenied,
    TokenNotYetValid,
    TokenVerifier,
    VideoGrant,
    require_room_join,
)

API_KEY = "APIkey1"
# 32+ bytes: PyJWT warns about shorter HS256 secrets.
API_SECRET = "s3cr3t-long-enough-for-hs256-0123456789"
VERIFIER = TokenVerifier({API_KEY: API_SECRET})
HS256_HEADER = b'{"alg": "HS256", "typ": "JWT"}'


def _token() -> AccessToken:
    """A valid join token for alice in room "standup"."""
    grant = VideoGrant(room_join=True, room="standup")
    return AccessToken(API_KEY, API_SECRET).with_identity("alice").with_grant(grant)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(payload: dict[str, object]) -> str:
    """A correctly signed token with an arbitrary payload, to test claim checks."""
    base = {"iss": API_KEY, "sub": "alice", "exp": int(datetime.now(timezone.utc).timestamp()) + 600}
    # Signed at the JWS layer because jwt.encode refuses some of the bad claims under test.
    return jwt.PyJWS().encode(json.dumps({**base, **payload}).encode(), API_SECRET, algorithm="HS256")


def test_token_round_trips_through_the_verifier() -> None:
    grant = VideoGrant(room_join=True, room="standup", can_publish=False, room_admin=True, hidden=True)
    token = (
        AccessToken(API_KEY, API_SECRET)
        .with_identity("alice")
        .with_name("Alice")
        .with_metadata('{"team": "media"}')
        .with_grant(grant)
        .with_ttl(timedelta(minutes=5))
    )
    now = datetime.now(timezone.utc).replace(microsecond=0)

    claims = VERIFIER.verify(token.to_jwt(now=now))

    assert claims == Claims(
        identity="alice",
        name="Alice",
        metadata='{"team": "media"}',
        video=grant,
        api_key=API_KEY,
        exp=now + timedelta(minutes=5),
        nbf=now,
    )


def test_attributes_claim_round_trips_as_livekit_spells_it() -> None:
    token = AccessToken(API_KEY, API_SECRET).with_identity("alice").with_attributes({"role": "host", "desk": "4"})
    encoded = token.to_jwt()
    assert jwt.decode(encoded, options={"verify_signature": False})["attributes"] == {"role": "host", "desk": "4"}
    assert VERIFIER.verify(encoded).attributes == {"role": "host", "desk": "4"}
    assert VERIFIER.verify(AccessToken(API_KEY, API_SECRET).with_identity("bob").to_jwt()).attributes == {}


def test_payload_uses_livekit_claim_names() -> None:
    raw = jwt.decode(_token().with_name("Alice").to_jwt(), options={"verify_signature": False})

    assert raw["iss"] == API_KEY
    assert raw["sub"] == raw["jti"] == "alice"
    assert raw["name"] == "Alice"
    assert {"exp", "nbf", "video"} <= raw.keys()
    assert raw["video"] == {
        "roomJoin": True,
        "room": "standup",
        "canPublish": True,
        "canSubscribe": True,
        "canPublishData": True,
        "roomAdmin": False,
        "roomCreate": False,
        "roomList": False,
        "hidden": False,
        "agent": False,
    }
    assert jwt.get_unverified_header(_token().to_jwt())["alg"] == "HS256"


def test_default_ttl_is_six_hours() -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    claims = VERIFIER.verify(_token().to_jwt(now=now))
    assert claims.exp - now == timedelta(hours=6)


def test_absent_publish_subscribe_and_data_grants_default_to_true() -> None:
    claims = VERIFIER.verify(_signed({"video": {"roomJoin": True, "room": "standup"}}))

    assert claims.video == VideoGrant(room_join=True, room="standup")
    assert claims.video.can_publish and claims.video.can_subscribe and claims.video.can_publish_data
    assert not (claims.video.room_admin or claims.video.room_create or claims.video.room_list)


def test_token_without_video_claim_grants_nothing_beyond_defaults() -> None:
    claims = VERIFIER.verify(_signed({}))
    assert claims.video == VideoGrant()
    assert not claims.video.room_join


def test_unknown_livekit_grants_are_ignored() -> None:
    claims = VERIFIER.verify(_signed({"video": {"roomJoin": True, "room": "r", "recorder": True}}))
    assert claims.video.room_join


def test_builder_is_immutable_so_a_base_token_can_be_shared() -> None:
    base = AccessToken(API_KEY, API_SECRET)
    base.with_identity("alice")
    assert base.identity == ""
    assert API_SECRET not in repr(base)


def test_builder_refuses_join_token_without_identity() -> None:
    with pytest.raises(ValueError, match="identity"):
        AccessToken(API_KEY, API_SECRET).with_grant(VideoGrant(room_join=True, room="r")).to_jwt()


def test_builder_refuses_non_positive_ttl() -> None:
    with pytest.raises(ValueError, match="TTL"):
        _token().with_ttl(timedelta(0)).to_jwt()


def test_verifier_refuses_empty_secret() -> None:
    with pytest.raises(ValueError, match="empty secret"):
        TokenVerifier({"k": ""})


def test_bad_signature_is_invalid() -> None:
    forged = AccessToken(API_KEY, "another-secret-that-is-long-enough-0123").with_identity("eve").to_jwt()
    with pytest.raises(InvalidToken, match="token signature is invalid"):
        VERIFIER.verify(forged)


def test_tampered_payload_is_invalid() -> None:
    header, _, signature = _token().to_jwt().split(".")
    payload = _b64(json.dumps({"iss": API_KEY, "sub": "mallory", "exp": 2**31}).encode())
    with pytest.raises(InvalidToken, match="signature is invalid"):
        VERIFIER.verify(f"{header}.{payload}.{signature}")


def test_alg_none_is_refused() -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps({"iss": API_KEY, "sub": "eve", "exp": 2**31}).encode())
    with pytest.raises(InvalidToken, match="'none' is not accepted"):
        VERIFIER.verify(f"{header}.{payload}.")


def test_hs512_is_refused_even_with_the_right_secret() -> None:
    secret = API_SECRET * 2  # HS512 wants a 64-byte key
    token = jwt.encode({"iss": API_KEY, "sub": "alice", "exp": 2**31}, secret, algorithm="HS512")
    with pytest.raises(InvalidToken, match="'HS512' is not accepted, only HS256"):
        TokenVerifier({API_KEY: secret}).verify(token)


def test_expired_token() -> None:
    issued = datetime.now(timezone.utc) - timedelta(hours=2)
    with pytest.raises(ExpiredToken, match="token expired"):
        VERIFIER.verify(_token().with_ttl(timedelta(hours=1)).to_jwt(now=issued))


def test_token_expired_within_clock_skew_leeway_is_accepted() -> None:
    issued = datetime.now(timezone.utc) - timedelta(seconds=65)
    VERIFIER.verify(_token().with_ttl(timedelta(minutes=1)).to_jwt(now=issued))


def test_token_with_nbf_in_the_future_is_not_yet_valid() -> None:
    issued = datetime.now(timezone.utc) + timedelta(minutes=5)
    with pytest.raises(TokenNotYetValid, match="not valid yet"):
        VERIFIER.verify(_token().to_jwt(now=issued))


def test_token_with_nbf_within_clock_skew_leeway_is_accepted() -> None:
    issued = datetime.now(timezone.utc) + timedelta(seconds=5)
    VERIFIER.verify(_token().to_jwt(now=issued))


def test_unknown_api_key_is_invalid() -> None:
    token = AccessToken("x", API_SECRET).with_identity("alice").to_jwt()
    with pytest.raises(InvalidToken, match="unknown API key 'x'"):
        VERIFIER.verify(token)


def test_token_without_exp_is_invalid() -> None:
    token = jwt.encode({"iss": API_KEY, "sub": "alice"}, API_SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken, match="no 'exp' claim"):
        VERIFIER.verify(token)


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param("", id="empty"),
        pytest.param("a.b", id="two-segments"),
        pytest.param("a.b.c", id="three-junk-segments"),
        pytest.param(random.Random(7).randbytes(64).decode("latin-1"), id="random-bytes"),
        pytest.param("Bearer " + "x" * 20, id="bearer-prefix"),
        pytest.param(f"{_b64(b'[1]')}.{_b64(b'{}')}.", id="header-not-an-object"),
        pytest.param(f"{_b64(b'{}')}.{_b64(b'{}')}.", id="header-without-alg"),
        pytest.param(f"{_b64(HS256_HEADER)}.{_b64(b'[]')}.c2ln", id="payload-not-an-object"),
        pytest.param(f"{_b64(HS256_HEADER)}.{_b64(b'{')}.c2ln", id="payload-not-json"),
    ],
)
def test_garbage_strings_are_invalid_tokens(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        VERIFIER.verify(garbage)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param({"video": "admin"}, "'video' claim must be an object, got string", id="video-string"),
        pytest.param({"video": [True]}, "'video' claim must be an object, got array", id="video-array"),
        pytest.param({"video": None}, "'video' claim must be an object, got null", id="video-null"),
        pytest.param({"video": {"roomJoin": "yes"}}, "'roomJoin' must be a boolean, got string", id="bool-str"),
        pytest.param({"video": {"canPublish": 0}}, "'canPublish' must be a boolean, got number", id="bool-int"),
        pytest.param({"video": {"room": 5}}, "'room' must be a string, got number", id="room-as-number"),
        pytest.param({"name": {"first": "a"}}, "'name' claim must be a string, got object", id="name-object"),
        pytest.param({"metadata": 1}, "'metadata' claim must be a string, got number", id="metadata-number"),
        pytest.param({"attributes": "a=b"}, "'attributes' claim must be an object, got string", id="attributes-string"),
        pytest.param({"attributes": {"a": 1}}, "attribute 'a' must be a string, got number", id="attribute-number"),
        pytest.param({"iss": ["APIkey1"]}, "no API key", id="iss-array"),
        pytest.param({"sub": 42}, None, id="sub-number"),
        pytest.param({"exp": "soon"}, None, id="exp-string"),
        pytest.param({"exp": "99999999999"}, None, id="exp-numeric-string"),
        pytest.param({"exp": 1e300}, None, id="exp-too-far"),
        pytest.param({"nbf": "now"}, None, id="nbf-string"),
    ],
)
def test_signed_tokens_with_wrongly_typed_claims_are_invalid(
    payload: dict[str, object], reason: str | None
) -> None:
    with pytest.raises(InvalidToken, match=reason):
        VERIFIER.verify(_signed(payload))


@given(st.text())
def test_arbitrary_text_is_never_anything_but_an_invalid_token(text: str) -> None:
    with pytest.raises(InvalidToken):
        VERIFIER.verify(text)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_claim_names = st.sampled_from(["iss", "sub", "exp", "nbf", "iat", "jti", "aud", "name", "metadata", "video"])
_video_names = st.sampled_from(["roomJoin", "room", "canPublish", "canSubscribe", "roomAdmin", "hidden"])


@given(
    st.dictionaries(_claim_names, _json, max_size=5),
    st.dictionaries(_video_names, _json, max_size=4),
)
def test_signed_tokens_with_arbitrary_claims_verify_or_raise_auth_error(
    claims: dict[str, object], video: dict[str, object]
) -> None:
    payload = {**claims, "video": video} if video else claims
    try:
        VERIFIER.verify(_signed(payload))
    except (InvalidToken, ExpiredToken, TokenNotYetValid):
        pass


def _claims(video: VideoGrant, identity: str = "alice") -> Claims:
    return Claims(
        identity=identity,
        name="",
        metadata="",
        video=video,
        api_key=API_KEY,
        exp=datetime.now(timezone.utc),
        nbf=None,
    )


def test_room_join_allowed_for_the_granted_room() -> None:
    require_room_join(_claims(VideoGrant(room_join=True, room="standup")), "standup")


def test_room_mismatch_is_permission_denied() -> None:
    with pytest.raises(PermissionDenied, match="token is for room 'a', not 'b'"):
        require_room_join(_claims(VideoGrant(room_join=True, room="a")), "b")


def test_missing_room_join_grant_is_permission_denied() -> None:
    with pytest.raises(PermissionDenied, match="does not grant roomJoin"):
        require_room_join(_claims(VideoGrant(room_join=False, room="standup")), "standup")


def test_join_without_identity_is_permission_denied() -> None:
    with pytest.raises(PermissionDenied, match="no identity"):
        require_room_join(_claims(VideoGrant(room_join=True, room="standup"), identity=""), "standup")


def test_join_grant_without_room_is_permission_denied() -> None:
    with pytest.raises(PermissionDenied, match="names no room"):
        require_room_join(_claims(VideoGrant(room_join=True)), "standup")


def test_permission_denied_is_an_auth_error_but_not_an_invalid_token() -> None:
    assert issubclass(PermissionDenied, AuthError)
    assert not issubclass(PermissionDenied, InvalidToken)
    assert PermissionDenied("why").reason == "why"


def test_a_livekit_token_room_configuration_names_the_agents_to_dispatch() -> None:
    from livekit import api
    from livekit.protocol.agent_dispatch import RoomAgentDispatch
    from livekit.protocol.room import RoomConfiguration

    config = RoomConfiguration(agents=[RoomAgentDispatch(agent_name="receptionist", metadata="vip")])
    token = (
        api.AccessToken(API_KEY, API_SECRET).with_identity("caller")
        .with_grants(api.VideoGrants(room_join=True, room="r")).with_room_config(config).to_jwt()
    )
    assert VERIFIER.verify(token).room_agents == (("receptionist", "vip"),)
    assert VERIFIER.verify(_signed({"video": {}})).room_agents == ()


@pytest.mark.parametrize(
    "room_config",
    [pytest.param("agents", id="not-an-object"), pytest.param({"agents": {}}, id="agents-not-an-array"),
     pytest.param({"agents": ["x"]}, id="agent-not-an-object"), pytest.param({"agents": [{"agentName": 5}]}, id="name-not-a-string")],
)
def test_a_malformed_room_configuration_is_refused(room_config: object) -> None:
    with pytest.raises(InvalidToken):
        VERIFIER.verify(_signed({"video": {}, "roomConfig": room_config}))
