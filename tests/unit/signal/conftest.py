"""Fixtures of the signal layer's tests: a real MediaNode on a socket-free media context."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mediapod.rtc.node import MediaNode
from tests.support.fake_signal import new_node


@pytest.fixture
async def node() -> AsyncIterator[MediaNode]:
    node = new_node()
    yield node
    node.close()
