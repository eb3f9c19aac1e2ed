"""A real Prometheus server (Debian's `prometheus` package) on loopback, scraping the given targets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import yaml

from tests.support.redis_server import free_port


@dataclass
class PrometheusServer:
    """`prometheus` with a config written here: one job per target list, scraped every ``interval``."""

    directory: str
    jobs: dict[str, list[str]] = field(default_factory=dict)  # job name -> ["127.0.0.1:6789", ...]
    interval: str = "1s"
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        executable = shutil.which("prometheus")
        if executable is None:
            raise RuntimeError("prometheus is not installed; scripts/test installs Debian's package with apt-get")
        self.port = self.port or free_port()
        config = {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in self.jobs.items()
            ],
        }
        path = os.path.join(self.directory, "prometheus.yml")
        with open(path, "w") as f:
            yaml.safe_dump(config, f)
        log = open(os.path.join(self.directory, "prometheus.log"), "ab")
        self.process = subprocess.Popen(
            [executable, f"--config.file={path}", f"--storage.tsdb.path={os.path.join(self.directory, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"{self.url}/-/ready", timeout=1).status == 200:
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"prometheus did not become ready; see {self.directory}/prometheus.log")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query through the HTTP API; the result vector (AssertionError on an error answer)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            answer = json.loads(urllib.request.urlopen(url, timeout=10).read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"Prometheus refused {expr!r}: {exc.read().decode(errors='replace')}") from None
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def targets_up(self) -> dict[str, bool]:
        """scrape URL -> whether its last scrape succeeded."""
        answer = json.loads(urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=10).read())
        return {t["scrapeUrl"]: t["health"] == "up" for t in answer["data"]["activeTargets"]}
