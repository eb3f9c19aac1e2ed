"""connect_params and check_access: a LiveKit v0 connect's URL and token, judged before any socket (no sockets)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from livekit import api

from mediapod import auth
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.signal.livekit.connect import (
    ConnectParams,
    check_access,
    connect_params,
    http_status,
)

KEY, SECRET = "lk-key", "lk-secret-long-enough-for-hmac-sha256"
VERIFIER = auth.TokenVerifier({KEY: SECRET})


def token(room: str = "room", *, secret: str = SECRET, ttl: timedelta = timedelta(minutes=5), **grants: object) -> str:
    """Signed by livekit-api, LiveKit's own token library."""
    video = api.VideoGrants(room_join=True, room=room, **grants)  # type: ignore[arg-type]
    return api.AccessToken(KEY, secret).with_identity("alice").with_grants(video).with_ttl(ttl).to_jwt()


def test_the_bearer_header_wins_and_the_query_carries_the_options() -> None:
    query = {"access_token": "from-query", "auto_subscribe": "0", "adaptive_stream": "1", "sdk": "python", "room": "r"}
    params = connect_params({"Authorization": "Bearer from-header"}, query)
    assert params == ConnectParams(token="from-header", room="r", auto_subscribe=False, adaptive_stream=True, sdk="python")
    assert params.join_request().disable_auto_subscribe and params.join_request().room == "r"


def test_the_browser_sdk_token_comes_from_the_query_and_options_default_as_livekit_does() -> None:
    params = connect_params({}, {"access_token": "t"})
    assert (params.token, params.auto_subscribe, params.adaptive_stream, params.reconnect) == ("t", True, False, False)


def test_a_resume_names_the_participant() -> None:
    params = connect_params({}, {"access_token": "t", "reconnect": "1", "sid": "PA_1"})
    assert (params.reconnect, params.participant_sid) == (True, "PA_1")


def test_no_token_is_unauthenticated_and_says_how_to_send_one() -> None:
    with pytest.raises(RequestError) as refused:
        connect_params({"Authorization": "Basic abc"}, {})
    assert refused.value.code == ErrorCode.UNAUTHENTICATED and "Bearer" in refused.value.message


def test_a_good_token_for_its_room_is_admitted() -> None:
    claims = check_access(VERIFIER, connect_params({}, {"access_token": token("room")}))
    assert (claims.identity, claims.video.room) == ("alice", "room")


# Tokens are minted when the test runs, not when it is collected: the suite
# can take longer than a token lives.
@pytest.mark.parametrize(
    ("case", "query", "code"),
    [
        ("bad signature", lambda: {"access_token": token(secret="another-secret-that-is-long-enough")}, ErrorCode.UNAUTHENTICATED),
        ("expired", lambda: {"access_token": token(ttl=timedelta(minutes=-5))}, ErrorCode.UNAUTHENTICATED),
        ("not a jwt", lambda: {"access_token": "garbage"}, ErrorCode.UNAUTHENTICATED),
        ("another room", lambda: {"access_token": token("elsewhere"), "room": "room"}, ErrorCode.PERMISSION_DENIED),
    ],
)
def test_refused_tokens_are_401_as_livekit_answers_them(
    case: str, query: Callable[[], dict[str, str]], code: ErrorCode
) -> None:
    with pytest.raises(RequestError) as refused:
        check_access(VERIFIER, connect_params({}, query()))
    assert refused.value.code == code, case
    assert http_status(refused.value.code) == 401


def test_other_refusals_keep_their_http_meaning() -> None:
    assert [http_status(c) for c in (ErrorCode.NOT_FOUND, ErrorCode.RESOURCE_EXHAUSTED, ErrorCode.INTERNAL)] == [404, 429, 500]
