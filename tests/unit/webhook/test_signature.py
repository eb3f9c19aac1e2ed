"""Webhook signatures verify with LiveKit's own receiver (livekit-api), and only for the body they were made for."""

from __future__ import annotations

import pytest
from livekit import api

from mediapod.webhook.signature import authorization, body_digest

KEY, SECRET = "hookkey", "a-secret-long-enough-for-hs256-000000"


def receiver(secret: str = SECRET) -> api.WebhookReceiver:
    return api.WebhookReceiver(api.TokenVerifier(KEY, secret))


def test_livekit_api_verifies_a_signed_body() -> None:
    body = '{"event": "room_started", "room": {"name": "r"}}'
    event = receiver().receive(body, authorization(body.encode(), KEY, SECRET))
    assert event.event == "room_started" and event.room.name == "r"


def test_a_changed_body_does_not_verify() -> None:
    token = authorization(b'{"event": "room_started"}', KEY, SECRET)
    with pytest.raises(Exception, match="hash mismatch"):
        receiver().receive('{"event": "room_finished"}', token)


def test_another_secret_does_not_verify() -> None:
    body = '{"event": "room_started"}'
    with pytest.raises(Exception):
        receiver("some-other-secret-000000000000000000").receive(body, authorization(body.encode(), KEY, SECRET))


def test_an_expired_signature_does_not_verify() -> None:
    body = '{"event": "room_started"}'
    with pytest.raises(Exception):
        receiver().receive(body, authorization(body.encode(), KEY, SECRET, now=1_000_000))


def test_the_digest_is_standard_base64_of_sha256() -> None:
    # sha256("abc"), RFC 6234's test vector, in base64.
    assert body_digest(b"abc") == "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
