"""What a new user runs in their first hour, as processes: the dev pod, ``sbctl room join --publish-demo``, a busy port.

Each runs the installed commands in ``.venv/bin`` (where the README says
they live) from the repository root, as a user in a terminal would.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.support.readme import ROOT

VENV_BIN = ROOT / ".venv" / "bin"
# Every port flag switchboard-media takes, so a test's pod takes free ones.
FREE_PORTS = ["--http-port", "0", "--grpc-port", "0", "--udp-port", "0", "--metrics-port", "0"]
_BANNER = {
    "http": re.compile(r"HTTP:\s+(http://\S+)"),
    "grpc": re.compile(r"signaling \(gRPC\):\s+(\S+:\d+)"),
    "demo_page": re.compile(r"demo page:\s+(http://\S+)"),
}


@dataclass
class DevPod:
    """A pod started by the README's first command; its addresses as its banner printed them."""

    process: subprocess.Popen[str]
    http_url: str
    grpc_target: str
    demo_page: str


@contextmanager
def dev_pod(command: str, log_path: Path, *, within: float = 180) -> Iterator[DevPod]:
    """Run command (e.g. ``scripts/dev``) plus free-port flags; yield once its banner is out, stop its process group after."""
    log: IO[str] = open(log_path, "w")
    process = subprocess.Popen(
        [*command.split(), *FREE_PORTS], cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )
    try:
        found: dict[str, str] = {}
        deadline = time.monotonic() + within  # a first run installs into .venv
        assert process.stdout is not None
        while len(found) < len(_BANNER) and time.monotonic() < deadline and (line := process.stdout.readline()):
            found.update((key, m.group(1)) for key, pattern in _BANNER.items() if (m := pattern.search(line)))
        if len(found) < len(_BANNER):
            raise AssertionError(f"{command} printed only {sorted(found)} of its banner; log:\n{log_path.read_text()[-3000:]}")
        yield DevPod(process, found["http"], found["grpc"], found["demo_page"])
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)
        log.close()


@contextmanager
def sbctl_join(command: str, *extra: str, within: float = 20) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """Run an ``sbctl room join ... --publish-demo`` command line; yield once it says it is publishing.

    Its stdout lines so far are in the yielded list; it is interrupted (Ctrl-C) on the way out if still running.
    """
    args = command.split()
    program = ROOT / args[0] if "/" in args[0] else VENV_BIN / args[0]
    process = subprocess.Popen([str(program), *args[1:], *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + within
        assert process.stdout is not None
        while time.monotonic() < deadline and (line := process.stdout.readline()):
            lines.append(line.rstrip("\n"))
            if line.startswith("publishing"):
                break
        if not lines or not lines[-1].startswith("publishing"):
            process.kill()
            raise AssertionError(f"{command} did not start publishing: {lines}; stderr: {process.communicate(timeout=5)[1][-2000:]}")
        yield process, lines
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def busy_port_errors() -> dict[str, tuple[int, int, str]]:
    """Start ``switchboard-media --dev`` with each of its ports taken by another socket.

    Returns:
        per port flag: (the busy port, the exit status, what it wrote to stderr).
    """
    held: list[socket.socket] = []
    runs: dict[str, tuple[int, subprocess.Popen[str]]] = {}
    try:
        for flag, kind in (("--http-port", socket.SOCK_STREAM), ("--grpc-port", socket.SOCK_STREAM),
                           ("--udp-port", socket.SOCK_DGRAM), ("--metrics-port", socket.SOCK_STREAM)):
            sock = socket.socket(socket.AF_INET, kind)
            sock.bind(("127.0.0.1", 0))
            if kind == socket.SOCK_STREAM:
                sock.listen()
            held.append(sock)
            port = sock.getsockname()[1]
            flags = FREE_PORTS.copy()
            flags[flags.index(flag) + 1] = str(port)
            runs[flag] = port, subprocess.Popen(
                [str(VENV_BIN / "switchboard-media"), "--dev", *flags], cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
        results = {}
        for flag, (port, process) in runs.items():
            try:
                _, err = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                _, err = process.communicate()
            results[flag] = (port, process.returncode, err)
        return results
    finally:
        for sock in held:
            sock.close()
