"""The media pod's configuration: defaults < YAML file < environment < flags.

One dataclass tree holds every setting. ``--dev`` swaps in embedded
development defaults (LocalRouter, API key ``devkey`` / secret ``secret``,
loopback addresses), the way ``livekit-server --dev`` does.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"
ENV_PREFIX = "SWITCHBOARD_"


class ConfigError(ValueError):
    """A setting is missing, unknown or of the wrong type."""


@dataclass
class RtcConfig:
    """Media transport settings."""

    udp_port: int = 7882
    bind_ip: str = "0.0.0.0"
    # The address put in host candidates. hostNetwork pods advertise the node
    # IP; empty means "the first non-loopback IPv4 address of this host".
    advertised_ip: str = ""
    # The port put in host candidates when it differs from udp_port (a port
    # mapping or a relay in front of the pod); 0 means udp_port.
    advertised_port: int = 0
    # Seconds a negotiated PeerConnection may take to complete ICE and DTLS
    # before it is given up (its participant stays). Once connected, RFC 7675
    # consent (30 s without checks) decides instead.
    connect_timeout: float = 20.0
    # A participant sending RTP on more unannounced SSRCs than this, or more
    # unannounced packets than max_unknown_ssrc_packets within 10 s, is
    # disconnected (leave reason PROTOCOL_VIOLATION).
    max_unknown_ssrcs: int = 32
    max_unknown_ssrc_packets: int = 1000
    # Congestion control: send transport-wide CC feedback to publishers (so
    # browsers ramp up to all their simulcast layers) and estimate each
    # subscriber's bandwidth from its feedback to choose the layers it gets.
    # Off, nothing is negotiated and every subscriber gets what it asks for.
    congestion_control: bool = True


@dataclass
class RoomDefaults:
    """Settings of rooms created implicitly by a join."""

    auto_create: bool = True
    empty_timeout: int = 300      # seconds a room nobody joined stays open
    departure_timeout: int = 20   # seconds a room stays open after the last one left
    max_participants: int = 0     # 0 = unlimited


@dataclass
class LimitsConfig:
    """What one participant may send or leave unread; a request over a limit is refused with a message.

    Identity, name, metadata and attributes use LiveKit's defaults (its
    ``limit`` section), so tokens that work there work here. SDP limits are
    checked on the raw text before parsing, so an oversized description costs
    no parse time; the largest one allowed parses off the event loop.
    """

    max_identity_length: int = 256       # bytes (UTF-8) of a token's identity (`sub`)
    max_name_length: int = 256           # bytes of a token's display name
    max_metadata_size: int = 64000       # bytes of a token's participant metadata
    max_attributes_size: int = 64000     # bytes of a token's attributes, keys plus values
    max_published_tracks: int = 32       # tracks one participant publishes at once
    max_pending_tracks: int = 8          # AddTracks announced but not yet in an offer
    max_sdp_size: int = 128 * 1024       # bytes of one offer or answer
    max_sdp_media: int = 64              # m-lines of one offer or answer
    signal_queue_size: int = 1024 * 1024  # bytes of responses queued for one client that is not reading
    signal_write_timeout: float = 10.0   # seconds one response may wait for a client to take it


@dataclass
class RedisConfig:
    """Where the shared routing table lives; an empty address means one node, no Redis."""

    address: str = ""  # host:port; empty = LocalRouter (dev mode, tests)
    username: str = ""
    password: str = ""
    db: int = 0
    timeout: float = 2.0  # seconds for any one Redis call; routing never waits longer


# What the node selector sorts by (LiveKit's node_selector.sort_by).
SORT_BY = ("sysload", "cpuload", "rooms", "clients", "tracks", "bytespersec", "random")


@dataclass
class RoutingConfig:
    """How nodes share rooms through Redis: heartbeats, staleness, selection, drain."""

    heartbeat_interval: float = 2.0  # seconds between stats refreshes in `nodes`
    stale_timeout: float = 10.0      # a node whose stats are older is treated as gone
    drain_timeout: float = 0.0       # seconds a draining node waits for its rooms; 0 = until they empty
    sort_by: str = "sysload"
    sysload_limit: float = 0.0       # nodes above this sys_load get no new rooms; 0 = no limit
    cpuload_limit: float = 0.0
    max_rooms: int = 0               # per node; 0 = unlimited
    max_participants: int = 0
    max_tracks: int = 0


@dataclass
class KubernetesConfig:
    """Whether the pod keeps an SFUNode custom resource for itself (the operator schedules rooms by it)."""

    kubeconfig: str = ""  # a kubeconfig path, or "in-cluster" for the pod's ServiceAccount; empty = no SFUNode


@dataclass
class WebhookConfig:
    """Where LiveKit-format webhooks go and how hard the pod tries; no URLs, no webhooks.

    Events queue per URL and are posted in order; a failed post is retried
    with exponential backoff (``initial_backoff`` doubling to ``max_backoff``)
    until ``retry_window`` has passed since the event was queued, then dropped
    (switchboard_webhooks{result="dropped"}), as is an event arriving at a full queue.
    """

    urls: list[str] = field(default_factory=list)
    api_key: str = ""             # the key whose secret signs them; empty = the first configured key
    request_timeout: float = 5.0  # seconds one POST may take
    retry_window: float = 60.0    # seconds an event is retried before it is dropped
    initial_backoff: float = 0.5
    max_backoff: float = 5.0
    queue_size: int = 1000        # events waiting per URL


@dataclass
class WorkerPlacement:
    """Which worker process of a pod this process is: set by the supervisor (workers.py) for each worker."""

    pod: str = ""   # the pod's node id; empty: this process is the whole pod
    index: int = 0

    @property
    def shares_ports(self) -> bool:
        """Whether the HTTP and gRPC ports are shared with sibling workers (SO_REUSEPORT)."""
        return bool(self.pod)


@dataclass
class MediaConfig:
    """Everything a media pod reads at start."""

    node_id: str = ""
    region: str = ""
    # HTTP + WebSocket: LiveKit's signaling (/rtc), Twirp, health; LiveKit's port.
    http_host: str = "0.0.0.0"
    http_port: int = 7880
    grpc_host: str = "0.0.0.0"
    grpc_port: int = 7881
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 6789
    log_level: str = "INFO"
    keys: dict[str, str] = field(default_factory=dict)  # API key -> secret
    rtc: RtcConfig = field(default_factory=RtcConfig)
    room: RoomDefaults = field(default_factory=RoomDefaults)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    # Worker processes, one per core, each a node of the routing layer with
    # its own UDP port (rtc.udp_port + i); 0 = the number of cores with
    # redis.address set, else 1. More than 1 needs Redis: workers share rooms
    # through the routing table as pods do.
    workers: int = 0
    worker: WorkerPlacement = field(default_factory=WorkerPlacement)
    dev: bool = False

    def finalize(self) -> MediaConfig:
        """Fill derived values and reject settings the pod cannot run with."""
        if not self.node_id:
            self.node_id = f"node-{uuid.uuid4().hex[:12]}"
        if not self.rtc.advertised_ip:
            self.rtc.advertised_ip = "127.0.0.1" if self.dev else detect_ip()
        if not self.keys:
            raise ConfigError("no API keys configured: set keys in the config file, SWITCHBOARD_KEYS, or use --dev")
        ports = (
            ("http_port", self.http_port),
            ("grpc_port", self.grpc_port),
            ("metrics_port", self.metrics_port),
            ("rtc.udp_port", self.rtc.udp_port),
        )
        for name, port in ports:
            if not 0 <= port <= 65535:
                raise ConfigError(f"{name} must be a port number, not {port}")
        routing = self.routing
        if routing.sort_by not in SORT_BY:
            raise ConfigError(f"routing.sort_by must be one of {', '.join(SORT_BY)}, not {routing.sort_by!r}")
        if routing.heartbeat_interval <= 0 or routing.stale_timeout <= routing.heartbeat_interval:
            raise ConfigError(
                f"routing.stale_timeout ({routing.stale_timeout}) must exceed routing.heartbeat_interval "
                f"({routing.heartbeat_interval}), which must be positive"
            )
        for name, value in dataclasses.asdict(self.limits).items():
            if value <= 0:
                raise ConfigError(f"limits.{name} must be positive, not {value}")
        webhook = self.webhook
        if webhook.api_key and webhook.api_key not in self.keys:
            raise ConfigError(f"webhook.api_key {webhook.api_key!r} is not one of the configured API keys")
        for url in webhook.urls:
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"webhook.urls: {url!r} is not an http(s) URL")
        if webhook.queue_size <= 0 or webhook.request_timeout <= 0 or webhook.retry_window <= 0:
            raise ConfigError("webhook.queue_size, request_timeout and retry_window must be positive")
        if self.redis.address and ":" not in self.redis.address:
            raise ConfigError(f"redis.address must be host:port, not {self.redis.address!r}")
        self._finalize_workers()
        if self.kubernetes.kubeconfig:
            if not self.redis.address:
                raise ConfigError("kubernetes.kubeconfig needs redis.address: the operator schedules through Redis")
            if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", self.node_id):
                raise ConfigError(f"node_id {self.node_id!r} must be a lowercase DNS name to name its SFUNode")
        return self

    def _finalize_workers(self) -> None:
        if self.workers < 0:
            raise ConfigError(f"workers must be 0 (one per core) or more, not {self.workers}")
        if self.workers == 0:
            self.workers = usable_cores() if self.redis.address else 1
        if self.workers > 1 and not self.redis.address:
            raise ConfigError(
                f"workers = {self.workers} needs redis.address: workers share rooms through the Redis routing table "
                "as pods do (set --redis-address, or run --workers 1)"
            )
        last_udp = self.rtc.udp_port + self.workers - 1 if self.rtc.udp_port else 0
        last_advertised = self.rtc.advertised_port + self.workers - 1 if self.rtc.advertised_port else 0
        if max(last_udp, last_advertised) > 65535:
            raise ConfigError(f"{self.workers} workers need UDP ports up to {max(last_udp, last_advertised)}, past 65535")


def usable_cores(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may use, not merely the host's: its CPU affinity (which a cpuset narrows), and
    at most its cgroup's CPU quota rounded up (a Kubernetes CPU limit), so a pod limited to 2 CPUs on a
    64-core host starts 2 workers, not 64."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup)
    return max(1, min(cores, math.ceil(quota))) if quota is not None else cores


def cgroup_cpu_quota(root: Path) -> float | None:
    """CPUs the cgroup's quota allows (quota / period): cgroup v2 ``cpu.max``, else v1 ``cpu/cpu.cfs_quota_us``;
    None when unlimited or unreadable."""
    try:
        quota, _, period = (root / "cpu.max").read_text().partition(" ")
        if quota.strip() == "max":
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def detect_ip() -> str:
    """The source address this host would use toward the outside; loopback if none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent by connect()
            return sock.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def dev_config() -> MediaConfig:
    return MediaConfig(
        node_id="dev",
        http_host="127.0.0.1",
        grpc_host="127.0.0.1",
        metrics_host="127.0.0.1",
        keys={DEV_API_KEY: DEV_API_SECRET},
        rtc=RtcConfig(bind_ip="127.0.0.1", advertised_ip="127.0.0.1"),
        workers=1,
        dev=True,
    )


def _merge(obj: Any, values: Mapping[str, Any], where: str) -> None:
    """Overlay a nested mapping onto a dataclass, checking names and types."""
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in fields:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: {key!r} must be a mapping")
            _merge(current, value, f"{where}.{key}")
        elif isinstance(current, list):
            # A YAML list, or one comma-separated string from the environment.
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list):
                raise ConfigError(f"{where}: {key!r} must be a list")
            setattr(obj, name, [str(item).strip() for item in items if str(item).strip()])
        elif isinstance(current, dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: {key!r} must be a mapping")
            setattr(obj, name, {str(k): str(v) for k, v in value.items()})
        else:
            setattr(obj, name, _coerce(value, type(current), f"{where}.{key}"))


def _coerce(value: Any, kind: type, where: str) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: expected a boolean, got {value!r}")
    if kind is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    return str(value)


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """SWITCHBOARD_GRPC_PORT=1, SWITCHBOARD_RTC__UDP_PORT=2, SWITCHBOARD_KEYS="k1: s1, k2: s2"."""
    values: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key in ("SWITCHBOARD_CONFIG", "SWITCHBOARD_API_KEY", "SWITCHBOARD_API_SECRET"):
            continue
        path = key[len(ENV_PREFIX) :].lower().split("__")
        if path == ["keys"]:
            pairs = [p.split(":", 1) for p in value.split(",") if ":" in p]
            values["keys"] = {k.strip(): s.strip() for k, s in pairs}
            continue
        node = values
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard-media", description="Switchboard media pod")
    parser.add_argument("--dev", action="store_true", help="embedded defaults: one node, devkey/secret, loopback")
    parser.add_argument("--config", type=Path, help="YAML config file (also SWITCHBOARD_CONFIG)")
    parser.add_argument("--node-id")
    parser.add_argument("--http-port", type=int, help="HTTP + WebSocket: LiveKit signaling, Twirp, health (7880)")
    parser.add_argument("--grpc-port", type=int, help="gRPC signaling and RoomService (7881)")
    parser.add_argument("--metrics-port", type=int)
    parser.add_argument("--udp-port", type=int)
    parser.add_argument("--bind-ip")
    parser.add_argument("--advertised-ip", help="IP put in ICE host candidates (the node IP on hostNetwork)")
    parser.add_argument("--log-level")
    parser.add_argument("--redis-address", help="host:port of the shared Redis (empty: one node, no Redis)")
    parser.add_argument(
        "--workers", type=int,
        help="worker processes, each with its own UDP port from --udp-port up (0: one per core with Redis, else 1)",
    )
    return parser


def load_config(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> MediaConfig:
    """Build the config from flags, environment and an optional YAML file."""
    env = os.environ if env is None else env
    args = build_parser().parse_args(argv)
    config = dev_config() if args.dev else MediaConfig()
    path = args.config or (Path(env["SWITCHBOARD_CONFIG"]) if env.get("SWITCHBOARD_CONFIG") else None)
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"{path}: top level must be a mapping")
        _merge(config, loaded, str(path))
    _merge(config, _from_env(env), "environment")
    flags = {
        "node_id": args.node_id,
        "http_port": args.http_port,
        "grpc_port": args.grpc_port,
        "metrics_port": args.metrics_port,
        "log_level": args.log_level,
        "workers": args.workers,
        "redis": {"address": args.redis_address} if args.redis_address is not None else None,
        "rtc": {k: v for k, v in (("udp_port", args.udp_port), ("bind_ip", args.bind_ip), ("advertised_ip", args.advertised_ip)) if v is not None},
    }
    _merge(config, {k: v for k, v in flags.items() if v is not None}, "flags")
    return config.finalize()
