"""The operator's configuration: flags, with environment variables as defaults.

The Redis and API key variables are the media pods' own
(``SWITCHBOARD_REDIS__ADDRESS``, ``SWITCHBOARD_API_KEY`` / ``_SECRET``) so one
ConfigMap and one Secret serve both programs.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mediapod.config import SORT_BY
from mediapod.routing.selector import Limits
from sfu_operator.scheduler import SchedulingPolicy


class ConfigError(ValueError):
    """A setting the operator cannot run with."""


@dataclass
class OperatorConfig:
    """Everything the operator reads at start."""

    namespace: str = "default"          # where Rooms live (and the Lease)
    kubeconfig: str = ""                # a kubeconfig path; empty = in-cluster in a pod, else $KUBECONFIG or ~/.kube/config
    redis_address: str = ""             # host:port of the routing table
    redis_password: str = field(default="", repr=False)
    redis_timeout: float = 2.0          # seconds for one Redis or media pod call
    api_key: str = ""                   # signs the admin tokens for media pods' RoomService
    api_secret: str = field(default="", repr=False)
    stale_timeout: float = 10.0         # a node heartbeat older than this is NotReady; its rooms move
    sort_by: str = "sysload"
    max_rooms: int = 0                  # per node, on top of SFUNode spec.capacity; 0 = no limit
    max_participants: int = 0
    sync_interval: float = 0.5          # seconds between snapshots of Redis and the media pods
    lease_name: str = "switchboard-operator"
    lease_duration: float = 15.0        # a leader that stops renewing loses the lease after this
    identity: str = ""
    closed_room_retention: float = 300.0  # seconds a Closed auto-created Room is kept; 0 = forever
    node_gone_grace: float = 600.0        # seconds a gone pod's SFUNode and Redis entry are kept; 0 = forever
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 8080              # /metrics and /healthz; 0 = any free port (printed at start)
    log_level: str = "INFO"

    @property
    def policy(self) -> SchedulingPolicy:
        limits = Limits(stale_timeout=self.stale_timeout, max_rooms=self.max_rooms, max_participants=self.max_participants)
        return SchedulingPolicy(limits=limits, sort_by=self.sort_by)

    def finalize(self) -> OperatorConfig:
        if not self.redis_address or ":" not in self.redis_address:
            raise ConfigError(f"--redis-address (SWITCHBOARD_REDIS__ADDRESS) must be host:port, not {self.redis_address!r}")
        if not self.api_key or not self.api_secret:
            raise ConfigError("--api-key and --api-secret (SWITCHBOARD_API_KEY / SWITCHBOARD_API_SECRET) are required")
        if self.sort_by not in SORT_BY:
            raise ConfigError(f"--sort-by must be one of {', '.join(SORT_BY)}, not {self.sort_by!r}")
        if self.sync_interval <= 0 or self.stale_timeout <= self.sync_interval:
            raise ConfigError("--stale-timeout must exceed --sync-interval, which must be positive")
        if self.lease_duration < 2:
            raise ConfigError("--lease-duration must be at least 2 s")
        if self.closed_room_retention < 0 or self.node_gone_grace < 0:
            raise ConfigError("--closed-room-retention and --node-gone-grace must not be negative (0 = keep forever)")
        if 0 < self.node_gone_grace <= self.stale_timeout:
            raise ConfigError("--node-gone-grace must exceed --stale-timeout: a node is gone only once it is NotReady")
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"--metrics-port must be a port number, not {self.metrics_port}")
        if self.log_level.upper() not in LOG_LEVELS:
            raise ConfigError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, not {self.log_level!r}")
        self.log_level = self.log_level.upper()
        if self.kubeconfig and not os.path.isfile(self.kubeconfig):
            raise ConfigError(f"--kubeconfig {self.kubeconfig!r} is not a readable file")
        if not self.identity:
            self.identity = f"{socket.gethostname()}-{os.getpid()}"
        return self


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """Every flag with its help text and its default (shown by --help); environment variables give defaults."""
    d = OperatorConfig()
    parser = argparse.ArgumentParser(
        prog="switchboard-operator",
        description="Switchboard operator: schedules Room resources onto media pods (SFUNodes) through the Redis routing table, "
        "and keeps Rooms, SFUNodes and Redis equal. One replica acts at a time (a Lease).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--namespace", default=env.get("SWITCHBOARD_NAMESPACE") or env.get("POD_NAMESPACE") or d.namespace,
        help="namespace of the Rooms and the Lease (env SWITCHBOARD_NAMESPACE or POD_NAMESPACE)")
    add("--kubeconfig", default=d.kubeconfig,
        help="kubeconfig file to use; empty: $KUBECONFIG if set, else the pod's ServiceAccount in a cluster, else ~/.kube/config")
    add("--redis-address", default=env.get("SWITCHBOARD_REDIS__ADDRESS", d.redis_address),
        help="host:port of the Redis the media pods share (env SWITCHBOARD_REDIS__ADDRESS); required")
    # Secrets: no default shown by --help (it would print the variable's value).
    add("--redis-password", default=argparse.SUPPRESS,
        help="Redis password (default: env SWITCHBOARD_REDIS__PASSWORD, else none; prefer the variable, flags show in ps)")
    add("--api-key", default=env.get("SWITCHBOARD_API_KEY", d.api_key),
        help="API key the media pods accept, to call their RoomService (env SWITCHBOARD_API_KEY); required")
    add("--api-secret", default=argparse.SUPPRESS,
        help="its secret (default: env SWITCHBOARD_API_SECRET; prefer the variable); required")
    add("--stale-timeout", type=float, default=float(env.get("SWITCHBOARD_ROUTING__STALE_TIMEOUT", d.stale_timeout)),
        help="seconds without a heartbeat after which a node is NotReady and its rooms move (env SWITCHBOARD_ROUTING__STALE_TIMEOUT)")
    add("--sort-by", default=env.get("SWITCHBOARD_ROUTING__SORT_BY", d.sort_by),
        help=f"how to pick the least loaded node: {', '.join(SORT_BY)} (env SWITCHBOARD_ROUTING__SORT_BY)")
    add("--max-rooms", type=int, default=d.max_rooms, help="rooms per node, on top of SFUNode spec.capacity; 0 = no limit")
    add("--max-participants", type=int, default=d.max_participants, help="participants per node; 0 = no limit")
    add("--sync-interval", type=float, default=d.sync_interval, help="seconds between snapshots of Redis and the media pods")
    add("--lease-name", default=d.lease_name, help="name of the Lease the replicas share (in --namespace)")
    add("--lease-duration", type=float, default=d.lease_duration,
        help="seconds after which a leader that stopped renewing loses the Lease (the takeover time)")
    add("--identity", default=env.get("POD_NAME", d.identity),
        help="this replica's name in the Lease (env POD_NAME); empty = host name and pid")
    add("--closed-room-retention", type=float, default=d.closed_room_retention,
        help="seconds a Closed Room that a join auto-created is kept before the operator deletes it; 0 = keep forever")
    add("--node-gone-grace", type=float, default=d.node_gone_grace,
        help="seconds a media pod may be gone (NotReady) before its SFUNode and Redis entry are removed; 0 = keep forever")
    add("--metrics-host", default=d.metrics_host, help="address of the /metrics and /healthz HTTP endpoint")
    add("--metrics-port", type=int, default=d.metrics_port, help="port of /metrics and /healthz; 0 = any free port")
    add("--log-level", default=env.get("SWITCHBOARD_LOG_LEVEL", d.log_level), help=f"one of {', '.join(LOG_LEVELS)}")
    return parser


def load_config(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> OperatorConfig:
    env = os.environ if env is None else env
    values = vars(build_parser(env).parse_args(argv))
    values.setdefault("redis_password", env.get("SWITCHBOARD_REDIS__PASSWORD", ""))
    values.setdefault("api_secret", env.get("SWITCHBOARD_API_SECRET", ""))
    return OperatorConfig(**values).finalize()
