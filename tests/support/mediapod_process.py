"""A real media pod process for integration and acceptance tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from typing import IO

from mediapod.auth import AccessToken, VideoGrant
from mediapod.config import DEV_API_KEY, DEV_API_SECRET

_BANNER = {
    "http": re.compile(r"HTTP:\s+(http://\S+)"),
    "grpc": re.compile(r"signaling \(gRPC\):\s+(\S+):(\d+)"),
    "udp": re.compile(r"media \(UDP\):\s+(\S+):(\d+)"),
    "metrics": re.compile(r"metrics:\s+(http://\S+)"),
}


@dataclass
class MediaPodProcess:
    """`switchboard-media --dev` on ephemeral ports, read back from its banner."""

    node_id: str = "test-node"
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)  # extra switchboard-media flags
    grpc_target: str = ""
    udp_port: int = 0
    metrics_url: str = ""
    http_url: str = ""
    process: subprocess.Popen[str] | None = None
    log_path: str = ""

    def start(self, log_dir: str) -> MediaPodProcess:
        self.log_path = os.path.join(log_dir, f"{self.node_id}.log")
        log: IO[str] = open(self.log_path, "w")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", "mediapod.main", "--dev", "--node-id", self.node_id,
             "--http-port", "0", "--grpc-port", "0", "--udp-port", "0", "--metrics-port", "0", *self.args],
            stdout=subprocess.PIPE, stderr=log, text=True, env=env,
        )
        assert self.process.stdout is not None
        found: dict[str, re.Match[str]] = {}
        deadline = time.monotonic() + 20
        while len(found) < len(_BANNER) and time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            for key, pattern in _BANNER.items():
                match = pattern.search(line)
                if match:
                    found[key] = match
        if len(found) < len(_BANNER):
            self.stop()
            raise RuntimeError(f"media pod did not start; see {self.log_path}:\n{open(self.log_path).read()[-3000:]}")
        self.grpc_target = f"{found['grpc'].group(1)}:{found['grpc'].group(2)}"
        self.udp_port = int(found["udp"].group(2))
        self.metrics_url = found["metrics"].group(1)
        self.http_url = found["http"].group(1)
        return self

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL: the node vanishes without unregistering, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def log_text(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def token(self, room: str, identity: str, *, ttl: timedelta = timedelta(minutes=10), **grants: object) -> str:
        grant = VideoGrant(room_join=True, room=room, **grants)  # type: ignore[arg-type]
        return AccessToken(DEV_API_KEY, DEV_API_SECRET).with_identity(identity).with_grant(grant).with_ttl(ttl).to_jwt()

    def admin_token(self, room: str = "") -> str:
        """Create, list and delete rooms; administer ``room`` (roomAdmin is for one named room, as in LiveKit)."""
        grant = VideoGrant(room_create=True, room_list=True, room_admin=True, room=room)
        return AccessToken(DEV_API_KEY, DEV_API_SECRET).with_grant(grant).to_jwt()

    def metrics(self) -> dict[str, float]:
        """Scrape /metrics into {'name{labels}': value}."""
        text = urllib.request.urlopen(self.metrics_url, timeout=5).read().decode()
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        return samples

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of one metric whose labels include ``labels``."""
        total = 0.0
        for key, value in self.metrics().items():
            metric_name, _, label_text = key.partition("{")
            if metric_name != name:
                continue
            if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
                total += value
        return total
