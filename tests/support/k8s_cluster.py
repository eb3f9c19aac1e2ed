"""A real Kubernetes control plane for tests (etcd + kube-apiserver v1.20 + kube-controller-manager).

Started by ``scripts/k8s-cluster`` on free loopback ports, once per test
session; the binaries are built once into a cache directory (about 3 min the
first time, see the script). There is no kubelet: media pods run as local
processes that register with the API server through a kubeconfig.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "k8s-cluster"
# Where the script puts the binaries (same variable, same default); kubectl
# comes from there too, at the server's version.
CACHE = Path(os.environ.get("SWITCHBOARD_K8S_CACHE") or Path.home() / ".cache" / "switchboard-k8s")
KUBECTL = str(CACHE / "kubectl")


@dataclass
class K8sCluster:
    """One control plane in a scratch directory; ``kubectl`` runs against it with its kubeconfig."""

    directory: str

    @property
    def kubeconfig(self) -> str:
        return os.path.join(self.directory, "kubeconfig")

    @property
    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": self.kubeconfig}

    def start(self) -> K8sCluster:
        subprocess.run([str(SCRIPT), "build"], check=True, stdout=subprocess.DEVNULL, timeout=1800)
        ports = {"ETCD_PORT": free_port(), "ETCD_PEER_PORT": free_port(), "APISERVER_PORT": free_port()}
        subprocess.run(
            [str(SCRIPT), "start", self.directory], check=True, stdout=subprocess.DEVNULL, timeout=120,
            env={**os.environ, **{k: str(v) for k, v in ports.items()}},
        )
        return self

    def stop(self) -> None:
        subprocess.run([str(SCRIPT), "stop", self.directory], check=False, timeout=30)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; stdout and stderr captured as text."""
        return subprocess.run(
            [KUBECTL, *args], input=input, text=True, capture_output=True, check=check, timeout=60,
            env={**os.environ, **self.env},
        )

    def service_account_kubeconfig(self, name: str, namespace: str = "default", timeout: float = 30.0) -> str:
        """A kubeconfig with a ServiceAccount's own token, so a process runs with exactly that account's RBAC.

        The token controller of kube-controller-manager (v1.20) writes the
        account's token into a Secret; this waits for it.
        """
        deadline = time.monotonic() + timeout
        while True:
            secret = self.kubectl("-n", namespace, "get", "sa", name, "-o", "jsonpath={.secrets[0].name}", check=False).stdout
            if secret:
                token = self.kubectl("-n", namespace, "get", "secret", secret, "-o", "jsonpath={.data.token}").stdout
                if token:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no token for ServiceAccount {namespace}/{name} within {timeout} s")
            time.sleep(0.2)
        path = os.path.join(self.directory, f"kubeconfig-{namespace}-{name}")
        text = Path(self.kubeconfig).read_text().replace(
            "token: admintoken", f"token: {base64.b64decode(token).decode()}"
        ).replace("namespace: default", f"namespace: {namespace}")
        Path(path).write_text(text)
        return path


@pytest.fixture(scope="session")
def k8s_cluster() -> Iterator[K8sCluster]:
    """A fresh control plane for the session (the first run builds the binaries)."""
    directory = tempfile.mkdtemp(prefix="switchboard-k8s-")
    cluster = K8sCluster(directory)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
