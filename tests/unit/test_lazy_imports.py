"""Each process imports what its mode needs (issue 14: idle RSS no more than the imports cost).

Measured on an idle --dev pod: Redis's client is 4 MiB, and a supervisor of
workers that imported what serving needs would cost as much as a pod.
"""

from __future__ import annotations

import subprocess
import sys


def _loaded(module: str, candidates: set[str]) -> set[str]:
    """Which of candidates a fresh interpreter has loaded after importing module."""
    probe = f"import sys, {module}; print(' '.join(set({sorted(candidates)!r}) & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-P", "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_a_pod_without_redis_never_imports_the_redis_client() -> None:
    assert _loaded("mediapod.pod", {"redis", "mediapod.cluster"}) == set()
    assert _loaded("mediapod.cluster", {"redis"}) == {"redis"}  # the probe sees an import when there is one


def test_the_supervisor_of_workers_imports_nothing_that_serves_media_or_signaling() -> None:
    heavy = {"grpc", "mediapod.pod", "livekit", "aioice", "OpenSSL", "pylibsrtp", "aiortc"}
    assert _loaded("mediapod.main", heavy) == set()
    assert _loaded("mediapod.workers.supervisor", heavy) == set()
