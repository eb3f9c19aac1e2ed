"""The bench's network: a namespace with a veth pair, the SFU on one end, the generator on the other.

Janus (libnice) skips loopback when it gathers candidates, so, as
shared/TESTING.md records, it needs a veth pair; inside one namespace the
kernel drops packets between the pair's own addresses as martians unless
accept_local is set and the pair is routed over the veth. Every SFU runs
here so all are measured over the same path. This process joins the
namespace with setns(2) before it starts any thread, so every process and
socket it makes later lives there too.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

CLONE_NEWNET = 0x40000000
SFU_IP, GENERATOR_IP = "10.77.0.1", "10.77.0.2"
PREFIX = "sbfanout-"  # and the pid of the bench that made it


@dataclass(frozen=True)
class Network:
    """Where the SFU listens and where the generator's sockets bind; namespace is None on plain loopback."""

    sfu_ip: str
    generator_ip: str
    namespace: str | None


def _ip(namespace: str, *args: str) -> None:
    subprocess.run(["ip", "netns", "exec", namespace, *args], check=True, capture_output=True)


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    with open(path) as f:
        if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {path}")


def _remove_stale() -> None:
    """Delete the namespaces of benches that were killed before they could (their pid is gone)."""
    listed = subprocess.run(["ip", "netns", "list"], check=False, capture_output=True, text=True)
    for line in listed.stdout.splitlines():
        name = line.split(" ", 1)[0]
        pid = name.removeprefix(PREFIX)
        if name.startswith(PREFIX) and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


@contextlib.contextmanager
def bench_network() -> Iterator[Network]:
    """Enter a fresh namespace with the veth pair, or fall back to loopback (say so) when that is not allowed."""
    _remove_stale()
    name = f"{PREFIX}{os.getpid()}"
    try:
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"no network namespace ({error}); SFUs run on loopback and Janus cannot run")
        yield Network("127.0.0.1", "127.0.0.1", None)
        return
    original = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        _ip(name, "ip", "link", "set", "lo", "up")
        _ip(name, "ip", "link", "add", "va", "type", "veth", "peer", "name", "vb")
        _ip(name, "ip", "addr", "add", f"{SFU_IP}/24", "dev", "va")
        _ip(name, "ip", "addr", "add", f"{GENERATOR_IP}/24", "dev", "vb")
        _ip(name, "ip", "link", "set", "va", "up")
        _ip(name, "ip", "link", "set", "vb", "up")
        for interface in ("all", "va", "vb"):
            _ip(name, "sysctl", "-qw", f"net.ipv4.conf.{interface}.accept_local=1")
        _ip(name, "ip", "rule", "add", "pref", "100", "lookup", "local")
        _ip(name, "ip", "rule", "del", "pref", "0")
        _ip(name, "ip", "route", "add", GENERATOR_IP, "dev", "va", "src", SFU_IP, "table", "50")
        _ip(name, "ip", "route", "add", SFU_IP, "dev", "vb", "src", GENERATOR_IP, "table", "50")
        _ip(name, "ip", "rule", "add", "pref", "50", "iif", "lo", "from", SFU_IP, "to", GENERATOR_IP, "lookup", "50")
        _ip(name, "ip", "rule", "add", "pref", "51", "iif", "lo", "from", GENERATOR_IP, "to", SFU_IP, "lookup", "50")
        _setns(f"/run/netns/{name}")
        yield Network(SFU_IP, GENERATOR_IP, name)
    finally:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.setns(original, CLONE_NEWNET)
        os.close(original)
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
