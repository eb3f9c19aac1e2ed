"""What a node reports about itself at every heartbeat: room sizes, traffic rates, CPU load."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from mediapod.config import usable_cores
from mediapod.metrics import MediaCounters, RoomGauges
from mediapod.protocol import node_pb2


def _read_cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of all cores from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != b"cpu":
        return None
    values = [float(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


class StatsSampler:
    """Turns the node's gauges and counters into NodeStats, with rates since the last sample."""

    def __init__(self, gauges: Callable[[], RoomGauges], counters: MediaCounters, workers: int = 1) -> None:
        """workers: the worker processes of this node's pod; each registers its share of the cores."""
        self._gauges = gauges
        self._counters = counters
        self._cpus = os.cpu_count() or 1
        # A pod's workers sum to its cores, so the selector and the operator see the pod's capacity once.
        self._cpu_share = max(1, usable_cores() // max(1, workers))
        self.started_at = int(time.time() * 1000)
        self._last_time = time.monotonic()
        self._last_counts = self._counts()
        self._last_cpu = _read_cpu_times()

    def _counts(self) -> tuple[int, int, int, int]:
        c = self._counters
        return c.rtp_bytes_in, c.rtp_bytes_out, c.rtp_packets_in, c.rtp_packets_out

    def _cpu_load(self) -> float:
        now = _read_cpu_times()
        previous, self._last_cpu = self._last_cpu, now
        if now is None or previous is None or now[1] <= previous[1]:
            return 0.0
        return max(0.0, min(1.0, (now[0] - previous[0]) / (now[1] - previous[1])))

    def sample(self) -> node_pb2.NodeStats:
        now = time.monotonic()
        elapsed = max(now - self._last_time, 1e-3)
        counts = self._counts()
        rates = [(new - old) / elapsed for new, old in zip(counts, self._last_counts)]
        self._last_time, self._last_counts = now, counts
        gauges = self._gauges()
        try:
            sys_load = os.getloadavg()[0] / self._cpus
        except OSError:
            sys_load = 0.0
        return node_pb2.NodeStats(
            started_at=self.started_at,
            updated_at=int(time.time() * 1000),
            num_rooms=gauges.rooms,
            num_clients=gauges.participants,
            num_tracks_in=gauges.published_tracks,
            num_tracks_out=gauges.subscribed_tracks,
            bytes_in_per_sec=rates[0],
            bytes_out_per_sec=rates[1],
            packets_in_per_sec=rates[2],
            packets_out_per_sec=rates[3],
            cpu_load=self._cpu_load(),
            sys_load=sys_load,
            num_cpus=self._cpu_share,
        )
