"""Fixtures shared by integration and acceptance tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.mediapod_process import MediaPodProcess


@pytest.fixture
def media_pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaPodProcess]:
    """A dev media pod process with short room timeouts."""
    pod = MediaPodProcess(env={"SWITCHBOARD_ROOM__DEPARTURE_TIMEOUT": "1"})
    pod.start(str(tmp_path_factory.mktemp("mediapod")))
    yield pod
    pod.stop()
