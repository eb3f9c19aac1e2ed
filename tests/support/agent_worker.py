"""A real livekit-agents worker process (tests/agents/echo_agent.py in .venv-agents) pointed at a media pod."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mediapod.config import DEV_API_KEY, DEV_API_SECRET

ROOT = Path(__file__).resolve().parents[2]
AGENTS_PYTHON = ROOT / ".venv-agents" / "bin" / "python"
ECHO_AGENT = ROOT / "tests" / "agents" / "echo_agent.py"


@dataclass
class AgentWorkerProcess:
    """`python echo_agent.py start` with LIVEKIT_URL/API key/secret, as a LiveKit user deploys an agent."""

    name: str
    http_url: str
    agent_name: str = ""
    process: subprocess.Popen[bytes] | None = None
    log_path: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def start(self, log_dir: str) -> AgentWorkerProcess:
        if not AGENTS_PYTHON.exists():
            raise RuntimeError(f"{AGENTS_PYTHON} is missing: run scripts/agents-venv (scripts/test does)")
        self.log_path = os.path.join(log_dir, f"agent-{self.name}.log")
        log: IO[bytes] = open(self.log_path, "wb")
        env = {
            **os.environ,
            "PYTHONSAFEPATH": "1",
            "LIVEKIT_URL": "ws" + self.http_url.removeprefix("http"),
            "LIVEKIT_API_KEY": DEV_API_KEY,
            "LIVEKIT_API_SECRET": DEV_API_SECRET,
            "ECHO_AGENT_NAME": self.agent_name,
            **self.env,
        }
        self.process = subprocess.Popen(
            [str(AGENTS_PYTHON), str(ECHO_AGENT), "start"], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(ECHO_AGENT.parent),
            start_new_session=True,
        )
        return self

    def wait_registered(self, timeout: float = 30.0) -> None:
        """Until the worker logs its registration (its own word that the server answered RegisterWorkerRequest)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "registered worker" in self.log_text():
                return
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"agent worker {self.name} did not register:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker and its job processes (its session): a worker lost mid-job."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
