"""Where each worker of a pod listens: its own node id and UDP port, the pod's HTTP and gRPC ports shared."""

from __future__ import annotations

import dataclasses

from mediapod.config import MediaConfig, WorkerPlacement
from mediapod.ports import claim_tcp_port

# Workers serve their metrics here; only the supervisor's merged /metrics is public.
WORKER_METRICS_HOST = "127.0.0.1"


def worker_id(pod: str, index: int) -> str:
    """The node id worker ``index`` of ``pod`` registers in Redis (and names its SFUNode)."""
    return f"{pod}-w{index}"


def worker_config(pod: MediaConfig, index: int) -> MediaConfig:
    """The config worker ``index`` runs with: the pod's, moved to the worker's node id and UDP port.

    An ephemeral UDP port (0) stays ephemeral for every worker. The HTTP and
    gRPC ports must already be concrete (see claim_shared_ports): workers
    that each bound port 0 would get different ports.
    """
    rtc = dataclasses.replace(
        pod.rtc,
        udp_port=pod.rtc.udp_port + index if pod.rtc.udp_port else 0,
        advertised_port=pod.rtc.advertised_port + index if pod.rtc.advertised_port else 0,
    )
    return dataclasses.replace(
        pod,
        node_id=worker_id(pod.node_id, index),
        metrics_host=WORKER_METRICS_HOST,
        metrics_port=0,
        rtc=rtc,
        worker=WorkerPlacement(pod=pod.node_id, index=index),
    )


def claim_shared_ports(pod: MediaConfig) -> MediaConfig:
    """The pod's config with its HTTP and gRPC ports checked free and made concrete (0 -> a free port).

    Workers bind these with SO_REUSEPORT, which would let a second pod on
    the same ports start and share the first one's connections; checking
    here first keeps "port in use" an error, as it is for a single process.

    Raises:
        PortInUse: one of them is taken (the message names it).
    """
    http_port = claim_tcp_port("HTTP", pod.http_host, pod.http_port)
    grpc_port = claim_tcp_port("gRPC", pod.grpc_host, pod.grpc_port)
    return dataclasses.replace(pod, http_port=http_port, grpc_port=grpc_port)
