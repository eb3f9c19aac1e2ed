"""Fixtures of the signal layer's tests: a real MediaNode on a socket-free media context, and verified claims."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest

from mediapod import auth
from mediapod.config import LimitsConfig, MediaConfig
from mediapod.rtc.node import MediaNode
from tests.support.fake_client import media_pod


def claims(identity: str = "alice", room: str = "room", **grant: object) -> auth.Claims:
    """What TokenVerifier.verify returns for a token with these grants (joining room unless told otherwise)."""
    video = auth.VideoGrant(**{"room_join": True, "room": room, **grant})  # type: ignore[arg-type]
    return auth.Claims(
        identity=identity,
        name=identity.title(),
        metadata="",
        video=video,
        api_key="key",
        exp=datetime.now(timezone.utc) + timedelta(hours=1),
        nbf=None,
    )


def new_node(limits: LimitsConfig | None = None, node_id: str = "node-test") -> MediaNode:
    """A MediaNode whose UdpMux is real and whose socket is a recorder (tests.support.fake_client)."""
    config = dataclasses.replace(MediaConfig(), node_id=node_id, limits=limits or LimitsConfig())
    return MediaNode(config, dataclasses.replace(media_pod().context, node_id=node_id))


@pytest.fixture
async def node() -> AsyncIterator[MediaNode]:
    node = new_node()
    yield node
    node.close()
