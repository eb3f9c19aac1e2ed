"""Forwarding benchmark: one publisher, N subscribers, real SRTP on loopback.

Starts a dev media pod process, publishes aiortc audio + VP8 video (random
pixels, several packets per frame) into one room, adds N subscribers, and over a fixed window measures what the
pod forwarded (from its Prometheus counters) and the CPU time the pod process
spent (from /proc). Prints a table and writes JSON.

Subscribers are aiortc peers (``--subscriber aiortc``), which negotiate no
congestion control, or LiveKit's Python SDK (``--subscriber livekit``), whose
libwebrtc takes transport-wide sequence numbers and sends TWCC feedback: the
pod then stamps, paces, estimates and allocates for every subscriber.

    .venv/bin/python bench/forwarding.py --subscribers 1 2 4 --duration 10
    .venv/bin/python bench/forwarding.py --baseline ad3b1c0 --repeats 3
    .venv/bin/python bench/forwarding.py --subscriber livekit --baseline 22ce268

With --baseline the same measurement runs against a media pod built from
another commit (a temporary git worktree), the two pods taking turns row by
row so that drift in the machine's speed hits both; the table then shows
both figures, medians over --repeats turns, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiortc.mediastreams import AudioStreamTrack, MediaStreamError  # noqa: E402

from mediapod import client  # noqa: E402
from tests.support.mediapod_process import MediaPodProcess  # noqa: E402
from tests.support.peers import NoisyVideoTrack  # noqa: E402

FORWARDED = "switchboard_rtp_packets_forwarded_total"
RECEIVED = "switchboard_rtp_packets_received_total"
TWCC_RECEIVED = 'switchboard_congestion_feedback_total{direction="received",kind="twcc"'


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


async def drain(remote: client.RemoteTrack) -> None:
    """Consume decoded frames so aiortc's queues stay short, as a real app would."""
    try:
        while True:
            await remote.track.recv()
    except MediaStreamError:
        return


def twcc_feedback_received(pod: MediaPodProcess) -> float:
    """TWCC feedback packets the pod read (0 for a pod from before congestion control, which has no such series)."""
    return sum(value for name, value in pod.metrics().items() if name.startswith(TWCC_RECEIVED))


@contextlib.asynccontextmanager
async def aiortc_subscribers(pod: MediaPodProcess, room: str, count: int) -> AsyncIterator[None]:
    sessions = [await client.connect(pod.grpc_target, pod.token(room, f"sub-{i}")) for i in range(count)]
    drains: list[asyncio.Task[None]] = []
    try:
        for session in sessions:
            for remote in await session.wait_for_tracks(2, timeout=20):
                drains.append(asyncio.create_task(drain(remote)))
        yield
    finally:
        for task in drains:
            task.cancel()
        for session in sessions:
            await session.leave()


@contextlib.asynccontextmanager
async def livekit_subscribers(pod: MediaPodProcess, room: str, count: int) -> AsyncIterator[None]:
    from tests.support.livekit_sdk import SdkClient, sdk_token  # the SDK loads libwebrtc: only when asked for

    clients = [SdkClient() for _ in range(count)]
    try:
        for i, sdk in enumerate(clients):
            await sdk.connect(pod.http_url, sdk_token(room, f"sub-{i}"))
        deadline = time.monotonic() + 20
        while any(len(sdk.reception.subscribed) < 2 for sdk in clients):
            if time.monotonic() > deadline:
                raise TimeoutError("LiveKit SDK subscribers did not get both tracks within 20 s")
            await asyncio.sleep(0.1)
        yield
    finally:
        for sdk in clients:
            await sdk.close()


SUBSCRIBERS = {"aiortc": aiortc_subscribers, "livekit": livekit_subscribers}


async def measure(pod: MediaPodProcess, subscribers: int, duration: float, kind: str = "aiortc") -> dict[str, float]:
    room = f"bench-{subscribers}"
    assert pod.process is not None
    async with await client.connect(pod.grpc_target, pod.token(room, "publisher")) as publisher:
        await publisher.publish(AudioStreamTrack())
        # Noise encodes to several packets per frame, like camera video does.
        await publisher.publish(NoisyVideoTrack())
        async with SUBSCRIBERS[kind](pod, room, subscribers):
            await asyncio.sleep(2.0)  # past keyframe waits and DTLS: measure the steady state
            forwarded0, received0, feedback0 = pod.metric(FORWARDED), pod.metric(RECEIVED), twcc_feedback_received(pod)
            cpu0, wall0 = process_cpu_seconds(pod.process.pid), time.monotonic()
            await asyncio.sleep(duration)
            forwarded = pod.metric(FORWARDED) - forwarded0
            received = pod.metric(RECEIVED) - received0
            cpu = process_cpu_seconds(pod.process.pid) - cpu0
            wall = time.monotonic() - wall0
            feedback = twcc_feedback_received(pod) - feedback0
    return {
        "subscribers": subscribers,
        "received_packets_per_s": received / wall,
        "forwarded_packets_per_s": forwarded / wall,
        "pod_cpu_percent": 100 * cpu / wall,
        "cpu_seconds_per_1000_packets": 1000 * cpu / max(forwarded + received, 1),
        "twcc_feedback_per_s": feedback / wall,
    }


def print_table(rows: list[dict[str, float]]) -> None:
    header = f"{'subscribers':>11} | {'in packets/s':>12} | {'fwd packets/s':>13} | {'pod CPU %':>9} | {'CPU s / 1000 pkts':>17}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['subscribers']:>11} | {row['received_packets_per_s']:>12.1f} | {row['forwarded_packets_per_s']:>13.1f}"
            f" | {row['pod_cpu_percent']:>9.1f} | {row['cpu_seconds_per_1000_packets']:>17.4f}"
        )


def print_comparison(rows: list[dict[str, float]], baseline: str) -> None:
    header = (
        f"{'subscribers':>11} | {'fwd packets/s':>13} | {'CPU s/1000 pkts':>15} | {'baseline ' + baseline[:10]:>19}"
        f" | {'ratio':>6} | {'spread (min-max)':>17} | {'TWCC fb/s':>9} | {'baseline':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['subscribers']:>11} | {row['forwarded_packets_per_s']:>13.1f} | {row['cpu_seconds_per_1000_packets']:>15.4f}"
            f" | {row['baseline_cpu_seconds_per_1000_packets']:>19.4f} | {row['ratio']:>6.3f}"
            f" | {row['ratio_min']:>7.3f}-{row['ratio_max']:<7.3f} | {row['twcc_feedback_per_s']:>9.1f}"
            f" | {row['baseline_twcc_feedback_per_s']:>8.1f}"
        )


@contextlib.contextmanager
def baseline_tree(revision: str) -> Iterator[dict[str, str]]:
    """Environment that makes a media pod process import mediapod from ``revision``.

    Only mediapod goes on PYTHONPATH (through a symlink): the repository root
    also holds operator/, which would shadow the standard library's operator.
    """
    with tempfile.TemporaryDirectory() as scratch:
        tree, path = Path(scratch) / "tree", Path(scratch) / "path"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), revision], check=True, capture_output=True)
        try:
            path.mkdir()
            (path / "mediapod").symlink_to(tree / "mediapod")
            yield {"PYTHONPATH": str(path)}
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False, capture_output=True)


async def measure_once(env: dict[str, str], subscribers: int, duration: float, kind: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as log_dir:
        pod = MediaPodProcess(node_id="bench", env=env).start(log_dir)
        try:
            return await measure(pod, subscribers, duration, kind)
        finally:
            pod.stop()


async def run(subscriber_counts: list[int], duration: float, kind: str) -> list[dict[str, float]]:
    return [await measure_once({}, n, duration, kind) for n in subscriber_counts]


async def compare(
    subscriber_counts: list[int], duration: float, baseline: str, repeats: int, kind: str
) -> list[dict[str, float]]:
    """Candidate and baseline pods in turns; medians of each, and of their pairwise CPU ratio."""
    rows = []
    with baseline_tree(baseline) as baseline_env:
        for n in subscriber_counts:
            ours, theirs, ratios = [], [], []
            for _ in range(repeats):
                a = await measure_once({}, n, duration, kind)
                b = await measure_once(baseline_env, n, duration, kind)
                ours.append(a)
                theirs.append(b)
                ratios.append(a["cpu_seconds_per_1000_packets"] / b["cpu_seconds_per_1000_packets"])
            row = {key: statistics.median(r[key] for r in ours) for key in ours[0]}
            row["baseline_cpu_seconds_per_1000_packets"] = statistics.median(r["cpu_seconds_per_1000_packets"] for r in theirs)
            row["baseline_forwarded_packets_per_s"] = statistics.median(r["forwarded_packets_per_s"] for r in theirs)
            row["baseline_twcc_feedback_per_s"] = statistics.median(r["twcc_feedback_per_s"] for r in theirs)
            row["ratio"], row["ratio_min"], row["ratio_max"] = statistics.median(ratios), min(ratios), max(ratios)
            rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--duration", type=float, default=10.0, help="measurement window per row, seconds")
    parser.add_argument("--baseline", help="a git revision to measure against, in turns with this tree")
    parser.add_argument("--repeats", type=int, default=3, help="turns per row with --baseline")
    parser.add_argument(
        "--subscriber", choices=sorted(SUBSCRIBERS), default="aiortc",
        help="aiortc peers (no congestion control) or LiveKit SDK peers (TWCC: stamping, pacing, estimation)",
    )
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "forwarding.json")
    args = parser.parse_args()
    if args.baseline:
        rows = asyncio.run(compare(args.subscribers, args.duration, args.baseline, args.repeats, args.subscriber))
        print_comparison(rows, args.baseline)
    else:
        rows = asyncio.run(run(args.subscribers, args.duration, args.subscriber))
        print_table(rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "benchmark": "forwarding",
                "note": "CPU s / 1000 pkts counts packets in + out; the pod also runs DTLS, RTCP and signaling",
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
                "duration_s": args.duration,
                "subscriber": args.subscriber,
                "baseline": args.baseline,
                "results": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
