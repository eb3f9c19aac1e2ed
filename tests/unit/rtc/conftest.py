"""Fixtures of the room model's tests: a pod without a socket, and a room on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mediapod.rtc.room import Room
from tests.support.fake_client import Pod, media_pod, new_room


@pytest.fixture
async def pod() -> AsyncIterator[Pod]:
    pod = media_pod()
    yield pod
    pod.context.mux.close()


@pytest.fixture
async def room(pod: Pod) -> AsyncIterator[Room]:
    room = new_room(pod)
    yield room
    room.close(reason="test over")
