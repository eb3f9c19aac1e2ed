"""Fan-out benchmark (issue 14): load an SFU with cheap WebRTC peers until it saturates.

Rooms of one publisher (pre-built VP8 + Opus, ~120 packets/s) and N
subscribers are added step by step until delivery drops below 99 % or the
SFU's core is full. Prints forwarded packets/s at saturation, the SFU's CPU
µs per forwarded packet, p50/p99/p99.9 added latency at 50 % and 90 % of
saturation, RSS per subscribed track and idle RSS, for our pod, Janus and
mediasoup in one run (bench/peers/setup installs the other two), and writes
the JSON to bench/results/fanout-<date>.json.

    .venv/bin/python bench/fanout                 # the full run (several minutes)
    .venv/bin/python bench/fanout --quick         # a small one, well under a minute
    .venv/bin/python bench/fanout --targets switchboard
    .venv/bin/python bench/fanout --workers 1 2   # our pod with 1, then 2 worker processes

--workers runs the ramp on our pod once per worker count (N > 1: a
supervisor and N workers on a redis-server the bench starts, rooms spread
over them by the selector) and pins nothing: the SFU's processes and the
generator share the machine's cores, and the table adds the ratio of what
the largest count forwards at saturation to what one worker does. The JSON
goes to bench/results/fanout-workers-<date>.json.

Needs root for the network namespace (Janus needs a non-loopback address);
without it the pod and mediasoup run on loopback and Janus is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fanout import media, procstat, report
from bench.fanout.generator import Load, Plan, saturate, start_processes
from bench.fanout.network import Network, bench_network
from bench.fanout.target import Target, Unavailable

FULL = Plan(fanout=50, room_steps=(1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40), window=5.0, settle=3.0)
QUICK = Plan(fanout=4, room_steps=(1, 2), window=1.0, settle=1.5)
GENERATOR_CPU, SFU_CPU = {0}, {1}
# The machine may be shared (other test suites): the bench's processes, the
# SFU's and the generator's alike, run ahead of them, or an SFU measured
# while something else holds its core would look saturated early.
NICENESS = -10


TARGETS = {"switchboard": "bench.fanout.pod:PodTarget", "janus": "bench.fanout.janus:JanusTarget",
           "mediasoup": "bench.fanout.mediasoup:MediasoupTarget"}


def target(name: str) -> Target:
    module, _, cls = TARGETS[name].partition(":")
    return getattr(importlib.import_module(module), cls)()  # type: ignore[no-any-return]


async def measure(
    target: Target, network: Network, loop_media: media.MediaLoop, plan: Plan, workers: int | None = None
) -> dict[str, Any]:
    """One target's ramp; with ``workers`` (our pod only) nothing is pinned and the SFU may use that many cores."""
    # Other work on the machine takes CPU from the SFU and the generator alike: say how busy it was.
    result: dict[str, Any] = {"target": target.name, "fanout": plan.fanout, "load_average_before": os.getloadavg()[0]}
    if workers is not None:
        result["workers"] = workers
    try:
        await target.start(network.sfu_ip)
    except Unavailable as missing:
        print(f"{target.name}: not measured: {missing}", flush=True)
        return {**result, "available": False, "reason": str(missing)}
    load = Load(target, network, loop_media, plan)
    try:
        if workers is not None:
            cores = len(os.sched_getaffinity(0))
            load.sfu_cores, load.generator_cores = min(workers, cores), cores
            load.label = f"{target.name} ({workers} worker{'s' if workers > 1 else ''})"
            procstat.renice(target.pids(), NICENESS)
        elif os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
            procstat.pin(target.pids(), SFU_CPU, NICENESS)
        await asyncio.sleep(plan.settle)
        result["idle_rss_bytes"] = procstat.rss_bytes(target.pids())
        result.update(await saturate(load))
        if workers is not None:
            result["rooms_per_worker"] = await target.rooms_per_worker()  # type: ignore[attr-defined]
        result["load_average_after"] = os.getloadavg()[0]
        result["available"] = True
        result["summary"] = report.summary(result)
        return result
    finally:
        load.close()
        await target.stop()


async def run(names: list[str], plan: Plan, network: Network, workers: list[int] | None = None) -> list[dict[str, Any]]:
    loop_media = media.build()
    print(f"media: {loop_media.packets_per_second:.0f} packets/s per room (VP8 + Opus)", flush=True)
    if workers:
        from bench.fanout.pod import PodTarget

        return [await measure(PodTarget(workers=n), network, loop_media, plan, workers=n) for n in workers]
    results = []
    for name in names:
        if name == "janus" and network.namespace is None:
            reason = "needs a network namespace (run as root)"
            print(f"janus: not measured: {reason}", flush=True)
            results.append({"target": "janus", "available": False, "reason": reason})
            continue
        results.append(await measure(target(name), network, loop_media, plan))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 small steps, short windows: a smoke run for the test")
    parser.add_argument("--targets", nargs="+", choices=list(TARGETS), help="default: all three")
    parser.add_argument("--fanout", type=int, help="subscribers per room (default 50, quick 4)")
    parser.add_argument("--rooms", type=int, nargs="+", help="the ramp's steps, in rooms (default 1 2 3 ... 40, quick 1 2)")
    parser.add_argument("--workers", type=int, nargs="+", metavar="N",
                        help="our pod only, once per worker count (e.g. 1 2), nothing pinned: the generator shares the cores")
    parser.add_argument("--json", type=Path, help="default bench/results/fanout-<date>.json (fanout-workers-<date>.json)")
    args = parser.parse_args()
    if args.workers:
        if args.targets not in (None, ["switchboard"]):
            parser.error("--workers measures our pod only: leave --targets out or give --targets switchboard")
        if min(args.workers) < 1:
            parser.error("--workers counts must be at least 1")
        args.targets = ["switchboard"]
    args.targets = args.targets or list(TARGETS)
    plan = QUICK if args.quick else FULL
    plan = Plan(args.fanout or plan.fanout, tuple(args.rooms or plan.room_steps), plan.window, plan.settle)
    if not args.workers and os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
        os.sched_setaffinity(0, GENERATOR_CPU)  # before any thread: all of ours inherit it
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, NICENESS)
    # A terminated run still stops its SFUs and removes its namespace.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with bench_network() as network:
        start_processes()
        results = asyncio.run(run(args.targets, plan, network, args.workers))
    print(report.table(results))
    name = "fanout-workers" if args.workers else "fanout"
    path = args.json or ROOT / "bench" / "results" / f"{name}-{datetime.date.today().isoformat()}.json"
    settings = {"quick": args.quick, "fanout": plan.fanout, "room_steps": list(plan.room_steps), "window_s": plan.window,
                "network": "veth pair in a namespace" if network.namespace else "loopback"}
    if args.workers:
        print(report.workers_table(results))
        settings |= {"workers": args.workers, "pinning": "none: the SFU's processes and the generator share every core"}
    report.write(path, results, settings)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
