"""The fan-out table, and the JSON written beside it."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

COLUMNS = (
    "forwarded_packets_per_s", "sfu_cpu_us_per_packet", "packets_per_s_per_core",
    "p50_ms_at_50", "p99_ms_at_50", "p99.9_ms_at_50", "p50_ms_at_90", "p99_ms_at_90", "p99.9_ms_at_90",
    "rss_per_track_kib", "idle_rss_mib",
)


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """One table row: saturation throughput and cost, latency at 50 % and 90 % of it, memory."""
    saturation = result["saturation"]
    row: dict[str, Any] = {
        "forwarded_packets_per_s": saturation["forwarded_packets_per_s"],
        "sfu_cpu_us_per_packet": saturation["sfu_cpu_us_per_packet"],
        # What one whole core would forward at that cost: on a shared machine
        # the SFU may saturate (lose, queue) before it gets its core to itself.
        # (None when the window saw less than one clock tick of its CPU: /proc counts in 10 ms.)
        "packets_per_s_per_core": 1e6 / saturation["sfu_cpu_us_per_packet"] if saturation["sfu_cpu_us_per_packet"] else None,
    }
    for at in ("50", "90"):
        latency = result[f"at_{at}_percent"]["latency_ms"]
        for name in ("p50", "p99", "p99.9"):
            row[f"{name}_ms_at_{at}"] = latency[name]
    largest = result["largest_step"]
    tracks = 2 * largest["rooms"] * result["fanout"]
    row["rss_per_track_kib"] = (largest["sfu_rss_bytes"] - result["idle_rss_bytes"]) / tracks / 1024
    row["idle_rss_mib"] = result["idle_rss_bytes"] / 2**20
    return row


def _cell(value: Any, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(results: list[dict[str, Any]]) -> str:
    header = (f"{'SFU':<12} | {'fwd pkt/s':>9} | {'CPU µs/pkt':>10} | {'pkt/s/core':>10} | {'p50/p99/p99.9 ms @50 %':>22} | "
              f"{'p50/p99/p99.9 ms @90 %':>22} | {'RSS/track KiB':>13} | {'idle RSS MiB':>12} | stopped by")
    lines = [header, "-" * len(header)]
    for result in results:
        label = f"{result['target']} x{result['workers']}" if "workers" in result else result["target"]
        if not result["available"]:
            lines.append(f"{label:<12} | not measured: {result['reason']}")
            continue
        s = result["summary"]
        at50 = "/".join(_cell(s[f"{n}_ms_at_50"], 2) for n in ("p50", "p99", "p99.9"))
        at90 = "/".join(_cell(s[f"{n}_ms_at_90"], 2) for n in ("p50", "p99", "p99.9"))
        lines.append(
            f"{label:<12} | {s['forwarded_packets_per_s']:>9.0f} | {_cell(s['sfu_cpu_us_per_packet'], 1):>10} | "
            f"{_cell(s['packets_per_s_per_core'], 0):>10} | "
            f"{at50:>22} | {at90:>22} | {s['rss_per_track_kib']:>13.1f} | {s['idle_rss_mib']:>12.1f} | {result['stop_reason']}"
        )
    return "\n".join(lines)


def workers_table(results: list[dict[str, Any]]) -> str:
    """A row per worker count (where each saturated, what it cost, who had the CPU), then the scaling ratio."""
    header = (f"{'workers':>7} | {'fwd pkt/s':>9} | {'rooms':>5} | {'delivery':>8} | {'SFU cores':>9} | {'CPU µs/pkt':>10} | "
              f"{'generator cores':>15} | {'irq+softirq cores':>17} | {'other cores':>11} | {'idle cores':>10} | {'SFU waiting':>11} | rooms per worker | stopped by")
    lines = [header, "-" * len(header)]
    measured = [r for r in results if r["available"]]
    for result in measured:
        saturation = result["saturation"]
        spread = " ".join(str(n) for n in result.get("rooms_per_worker", {}).values()) or "-"
        machine = saturation["machine_cpu_cores"]
        kernel = machine["irq"] + machine["softirq"]
        lines.append(
            f"{result['workers']:>7} | {saturation['forwarded_packets_per_s']:>9.0f} | {saturation['rooms']:>5} | "
            f"{100 * saturation['delivery']:>7.2f}% | {saturation['sfu_cpu_cores']:>9.2f} | "
            f"{_cell(saturation['sfu_cpu_us_per_packet'], 1):>10} | {saturation['generator_cpu_cores']:>15.2f} | "
            f"{kernel:>17.2f} | {other_cores(saturation):>11.2f} | {machine['idle']:>10.2f} | {_cell(saturation.get('sfu_runqueue_wait_cores'), 2):>11} | {spread:<16} | {result['stop_reason']}"
        )
    one = [r for r in measured if r["workers"] == 1]
    for result in measured:
        if one and result["workers"] > 1:
            lines.append(f"{result['workers']} workers forward {scaling(one[0], result):.2f}x what 1 does at saturation "
                         f"({scaling(one[0], result, offered=True):.2f}x counting no window above what was offered)")
    return "\n".join(lines)


def other_cores(row: dict[str, Any]) -> float:
    """Cores busy with neither the SFU nor the generator in a window: other work on the machine.

    Interrupt time counts: the kernel's tick accounting charges it to the
    process it interrupted, mostly the SFU, whose sends it is delivering.
    """
    machine = row["machine_cpu_cores"]
    busy = machine["user"] + machine["nice"] + machine["system"] + machine["irq"] + machine["softirq"]
    return float(busy - row["sfu_cpu_cores"] - row["generator_cpu_cores"])


def scaling(one: dict[str, Any], many: dict[str, Any], offered: bool = False) -> float:
    """Forwarded packets/s at saturation, many workers over one.

    offered: each capped at what the publishers sent, since a window that
    drains a backlog queued in the one before delivers more than 100 %.
    """
    def rate(result: dict[str, Any]) -> float:
        row = result["saturation"]
        return float(min(row["forwarded_packets_per_s"], row["offered_packets_per_s"]) if offered else row["forwarded_packets_per_s"])

    return rate(many) / rate(one)


def write(path: Path, results: list[dict[str, Any]], settings: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "fanout",
        "note": ("rooms x fan-out, each room one publisher of VP8 + Opus; forwarded = RTP packets the subscribers "
                 "received; CPU from /proc of the SFU's processes, pinned to their own core; latency from the "
                 "publisher's send stamp to the kernel receive time of one sampled subscriber per room"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "settings": settings,
        "columns": list(COLUMNS),
        "results": results,
    }
    path.write_text(json.dumps(document, indent=2))
