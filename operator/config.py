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
    redis_address: str = ""             # host:port of the routing table
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
        if not self.identity:
            self.identity = f"{socket.gethostname()}-{os.getpid()}"
        return self


def load_config(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> OperatorConfig:
    env = os.environ if env is None else env
    d = OperatorConfig()
    parser = argparse.ArgumentParser(prog="switchboard-operator", description="Switchboard Room/SFUNode operator")
    parser.add_argument("--namespace", default=env.get("SWITCHBOARD_NAMESPACE") or env.get("POD_NAMESPACE") or d.namespace)
    parser.add_argument("--redis-address", default=env.get("SWITCHBOARD_REDIS__ADDRESS", ""))
    parser.add_argument("--api-key", default=env.get("SWITCHBOARD_API_KEY", ""))
    parser.add_argument("--api-secret", default=env.get("SWITCHBOARD_API_SECRET", ""))
    parser.add_argument("--stale-timeout", type=float, default=float(env.get("SWITCHBOARD_ROUTING__STALE_TIMEOUT", d.stale_timeout)))
    parser.add_argument("--sort-by", default=env.get("SWITCHBOARD_ROUTING__SORT_BY", d.sort_by))
    parser.add_argument("--max-rooms", type=int, default=d.max_rooms)
    parser.add_argument("--max-participants", type=int, default=d.max_participants)
    parser.add_argument("--sync-interval", type=float, default=d.sync_interval)
    parser.add_argument("--lease-name", default=d.lease_name)
    parser.add_argument("--lease-duration", type=float, default=d.lease_duration)
    parser.add_argument("--identity", default=env.get("POD_NAME", ""))
    args = parser.parse_args(argv)
    return OperatorConfig(**vars(args)).finalize()
