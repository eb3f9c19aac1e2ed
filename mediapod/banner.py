"""What a media process tells the user once it listens: the ports to connect to, the way `livekit-server --dev` does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mediapod.config import DEV_API_KEY, DEV_API_SECRET, MediaConfig


@dataclass(frozen=True)
class Serving:
    """The ports one media process listens on, once it is up."""

    http_port: int
    grpc_port: int
    udp_port: int
    metrics_port: int


def print_banner(config: MediaConfig, serving: Serving, workers: Sequence[Serving] = ()) -> None:
    """Print the pod's addresses; with workers (a supervisor's banner), one media line per worker's UDP port."""
    http_port, grpc_port = serving.http_port, serving.grpc_port
    lines = [
        f"switchboard media pod {config.node_id} is up",
        f"  HTTP:              http://{config.http_host}:{http_port}",
        f"  LiveKit SDKs:      ws://{config.http_host}:{http_port}  (signaling v0 at /rtc, Twirp RoomService)",
        f"  signaling (gRPC):  {config.grpc_host}:{grpc_port}",
    ]
    advertised = config.rtc.advertised_port
    for index, process in enumerate(workers or [serving]):
        udp_port = process.udp_port
        public = advertised + index if advertised else udp_port
        worker = f" (worker {index})" if workers else ""
        lines.append(
            f"  media (UDP):       {config.rtc.bind_ip}:{udp_port}, advertised as {config.rtc.advertised_ip}:{public}{worker}"
        )
    lines.append(f"  metrics:           http://{config.metrics_host}:{serving.metrics_port}/metrics")
    if config.dev:
        lines += [
            f"  demo page:         http://{config.http_host}:{http_port}/  (dev mode only)",
            f"  API key / secret:  {DEV_API_KEY} / {DEV_API_SECRET}  (dev mode: do not expose this pod)",
            (
                f"  a token:           sbctl token create --api-key {DEV_API_KEY} --api-secret {DEV_API_SECRET} "
                "--room my-room --identity me"
            ),
        ]
    print("\n".join(lines), flush=True)
