"""A real `switchboard-operator` process for tests, with its log in a file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import IO

from mediapod.config import DEV_API_KEY, DEV_API_SECRET


@dataclass
class OperatorProcess:
    """One operator replica; several may share a Lease (only one acts)."""

    name: str
    kubeconfig: str
    namespace: str
    redis_address: str
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    log_path: str = ""

    def start(self, log_dir: str) -> OperatorProcess:
        self.log_path = os.path.join(log_dir, f"operator-{self.name}.log")
        log: IO[bytes] = open(self.log_path, "ab")
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "KUBECONFIG": self.kubeconfig,
            "SWITCHBOARD_API_KEY": DEV_API_KEY,
            "SWITCHBOARD_API_SECRET": DEV_API_SECRET,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", "sfu_operator.main", "--namespace", self.namespace, "--redis-address", self.redis_address,
             "--identity", self.name, "--metrics-host", "127.0.0.1", "--metrics-port", "0", *self.args],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        return self

    def wait_leading(self, timeout: float = 30.0) -> None:
        """Until this replica holds the lease and kopf has started."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_text()
            if " leads (lease " in text and "Activity 'start' succeeded" in text:
                return
            if not self.alive:
                break
            time.sleep(0.1)
        raise RuntimeError(f"operator {self.name} did not start leading; see {self.log_path}:\n{self.log_text()[-3000:]}")

    @property
    def metrics_url(self) -> str:
        """Where this replica serves /metrics (any free port; it logs the one it bound)."""
        match = re.search(r"metrics: (http://\S+/metrics)", self.log_text())
        if match is None:
            raise RuntimeError(f"operator {self.name} has not logged its metrics address yet; see {self.log_path}")
        return match.group(1)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, the lease is not released."""
        if self.alive:
            assert self.process is not None
            self.process.kill()
            self.process.wait(5)

    def stop(self) -> None:
        if not self.alive:
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log_text(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()
