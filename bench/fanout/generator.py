"""Raise the load on one SFU until it saturates; latency at 50 % and 90 % of that comes from the ramp's windows.

Load is rooms x fan-out: each room has one publisher (VP8 + Opus) and
``fanout`` subscribers. Handshakes happen here, in the asyncio process; the
media is sent and counted by forked processes (publisher.py,
subscribers.py), a pair per step (per 200 sockets on big steps), all
pinned to the generator's CPU while the SFU has the other one to itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench.fanout import procstat, publisher, subscribers
from bench.fanout.endpoint import Connected, Endpoint
from bench.fanout.media import MediaLoop
from bench.fanout.network import Network
from bench.fanout.sdp import LocalTransport
from bench.fanout.target import Target
from mediapod.transport.dtls import DtlsCertificate

DELIVERY_FLOOR = 0.99
CORE_FULL = 0.95
# An SFU past its capacity queues in its socket's receive buffer (megabytes:
# seconds of media) before it drops anything, so delivery alone would call
# it keeping up; a median added latency past this says it is not.
QUEUEING_MS = 50.0
HANDSHAKES_AT_ONCE = 16
SOCKETS_PER_PROCESS = 200
# Not plain fork: the parent has gRPC threads by then, and a child forked
# while one of them holds a lock can hang. The fork server is started early
# (start_processes), before any thread, inside the namespace and on the
# generator's CPU, and children inherit both from it.
_fork = multiprocessing.get_context("forkserver")


def start_processes() -> None:
    """Start the fork server now, from a process that has no threads yet."""
    _fork.set_forkserver_preload(["bench.fanout.publisher", "bench.fanout.subscribers"])
    multiprocessing.forkserver.ensure_running()


@dataclass(frozen=True)
class Plan:
    """How hard and how long: rooms per step, subscribers per room, seconds per window."""

    fanout: int
    room_steps: tuple[int, ...]
    window: float
    settle: float


@dataclass
class _Group:
    """The rooms one step added, and the two processes that send and count their media."""

    publications: list[publisher.Publication]
    subscriptions: list[subscribers.Subscription]
    sent: Any  # shared: RTP packets the publisher sent per room
    received: Any  # shared: RTP packets each subscriber got
    sender: multiprocessing.process.BaseProcess
    counter: multiprocessing.process.BaseProcess
    control: Connection


@dataclass
class Load:
    """Everything the generator has set up against one target."""

    target: Target
    network: Network
    media: MediaLoop
    plan: Plan
    # The cores the SFU's processes may use, and the generator's: a core is
    # "full" against these. Shared (--workers), both are the machine's.
    sfu_cores: float = 1.0
    generator_cores: float = 1.0
    label: str = ""  # how progress lines name the target (default: its name)
    certificate: DtlsCertificate = field(default_factory=DtlsCertificate.generate)
    groups: list[_Group] = field(default_factory=list)

    @property
    def rooms(self) -> int:
        return sum(len(g.publications) for g in self.groups)

    async def add_rooms(self, count: int) -> None:
        """count more rooms, each published and fully subscribed, then a sender and a counter for them."""
        limit = asyncio.Semaphore(HANDSHAKES_AT_ONCE)
        first = self.rooms
        publications = [await self._publish(first + i) for i in range(count)]

        async def subscribe(room: int, sampled: bool) -> subscribers.Subscription:
            async with limit:
                return subscribers.Subscription(room, await self._subscribe(room), sampled)

        subscriptions = await asyncio.gather(
            *(subscribe(p.room, n == 0) for p in publications for n in range(self.plan.fanout))
        )
        # A fork-server child is handed at most 256 descriptors: big steps
        # are split over several sender/counter pairs.
        per_group = max(1, SOCKETS_PER_PROCESS // self.plan.fanout)
        for start in range(0, count, per_group):
            rooms = {p.room for p in publications[start : start + per_group]}
            self._start_group(
                [p for p in publications if p.room in rooms], [s for s in subscriptions if s.room in rooms]
            )

    def _start_group(self, publications: list[publisher.Publication], subscriptions: list[subscribers.Subscription]) -> None:
        sent = _fork.Array("Q", len(publications))
        sender = _fork.Process(target=publisher.run, args=(publications, self.media, sent), daemon=True)
        received = _fork.Array("Q", len(subscriptions))
        ours, theirs = _fork.Pipe()
        counter = _fork.Process(target=subscribers.run, args=(subscriptions, received, theirs), daemon=True)
        sender.start()
        counter.start()
        self.groups.append(_Group(publications, subscriptions, sent, received, sender, counter, ours))

    async def _publish(self, room: int) -> publisher.Publication:
        endpoint = Endpoint(self.network.generator_ip, self.certificate)
        audio_ssrc, video_ssrc = publisher.new_ssrcs()
        remote = await self.target.publish(room, _local(endpoint), audio_ssrc, video_ssrc)
        connected = await endpoint.connect(remote, we_offered=True)
        return publisher.Publication(room, connected, audio_ssrc, video_ssrc)

    async def _subscribe(self, room: int) -> Connected:
        endpoint = Endpoint(self.network.generator_ip, self.certificate)
        remote = await self.target.subscribe(room, _local(endpoint))
        return await endpoint.connect(remote, we_offered=False)

    def _snapshot(self) -> dict[str, Any]:
        # Both counts live in shared memory: read back to back, the window's ends match.
        sent = [count for group in self.groups for count in group.sent[:]]
        received = [count for group in self.groups for count in group.received[:]]
        generator = [p.pid for g in self.groups for p in (g.sender, g.counter) if p.pid is not None]
        return {
            "time": time.monotonic(),
            "expected": sent,
            "received": received,
            "sfu_cpu": procstat.cpu_seconds(self.target.pids()),
            "sfu_wait": procstat.runqueue_wait_seconds(self.target.pids()),
            "generator_cpu": procstat.cpu_seconds(generator),
            "machine_cpu": procstat.machine_cpu_seconds(),
        }

    def _samples(self) -> subscribers.Samples:
        """The sampled subscribers' packets and latencies since the last call."""
        for group in self.groups:
            group.control.send("samples")
        replies = [group.control.recv() for group in self.groups]
        return subscribers.Samples(
            sum(r.packets for r in replies), sum(r.undecryptable for r in replies), [ns for r in replies for ns in r.latencies_ns]
        )

    async def measure(self) -> dict[str, Any]:
        """Settle, then one window: throughput, delivery, CPU, latency percentiles, RSS."""
        await asyncio.sleep(self.plan.settle)  # key frame waits, first-packet work
        self._samples()
        start = self._snapshot()
        await asyncio.sleep(self.plan.window)
        end = self._snapshot()
        samples = self._samples()
        wall = end["time"] - start["time"]
        sent = [b - a for a, b in zip(start["expected"], end["expected"])]
        got = [b - a for a, b in zip(start["received"], end["received"])]
        rooms = [s.room for g in self.groups for s in g.subscriptions]
        expected, received = sum(sent) * self.plan.fanout, sum(got)
        each = [n / sent[room] for n, room in zip(got, rooms) if sent[room]]
        sfu_cpu = end["sfu_cpu"] - start["sfu_cpu"]
        latencies = sorted(samples.latencies_ns)
        return {
            "rooms": self.rooms,
            "subscribers": self.rooms * self.plan.fanout,
            "window_s": wall,
            "expected_packets": expected,
            "received_packets": received,
            "offered_packets_per_s": expected / wall,
            "forwarded_packets_per_s": received / wall,
            "delivery": received / expected if expected else 0.0,
            "delivery_min_subscriber": min(each, default=0.0),
            "delivery_max_subscriber": max(each, default=0.0),
            "sfu_cpu_cores": sfu_cpu / wall,
            "sfu_cores_available": self.sfu_cores,
            "generator_cores_available": self.generator_cores,
            "sfu_cpu_us_per_packet": 1e6 * sfu_cpu / received if received else None,
            # Runnable but not running: an SFU that waits for a CPU is starved, not saturated by its own work.
            "sfu_runqueue_wait_cores": (end["sfu_wait"] - start["sfu_wait"]) / wall,
            "generator_cpu_cores": (end["generator_cpu"] - start["generator_cpu"]) / wall,
            # The machine's cores by kind over the window (irq + softirq: the kernel delivering datagrams).
            "machine_cpu_cores": {kind: (end["machine_cpu"][kind] - start["machine_cpu"][kind]) / wall
                                  for kind in end["machine_cpu"]},
            "sampled_packets": samples.packets,
            "undecryptable": samples.undecryptable,
            "latency_samples": len(latencies),
            "latency_ms": {name: _percentile(latencies, q) for name, q in (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999))},
            "sfu_rss_bytes": procstat.rss_bytes(self.target.pids()),
        }

    def close(self) -> None:
        for group in self.groups:
            group.sender.kill()
            with contextlib.suppress(BrokenPipeError, EOFError):
                group.control.send("stop")
            group.counter.join(2)
            if group.counter.is_alive():
                group.counter.kill()
            group.sender.join(2)
            for s in group.subscriptions:
                s.connection.sock.close()
            for p in group.publications:
                p.connection.sock.close()


def _local(endpoint: Endpoint) -> LocalTransport:
    return LocalTransport(endpoint.ufrag, endpoint.pwd, endpoint.fingerprint, endpoint.address)


def _percentile(sorted_ns: list[int], q: float) -> float | None:
    if not sorted_ns:
        return None
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1e6


def _saturated(row: dict[str, Any]) -> str | None:
    """Why this window shows a saturated SFU (or generator), or None."""
    if row["delivery"] < DELIVERY_FLOOR:
        return "delivery below 99 %"
    sfu_cores, generator_cores = row["sfu_cores_available"], row["generator_cores_available"]
    if row["sfu_cpu_cores"] >= CORE_FULL * sfu_cores:
        return "SFU core full" if sfu_cores == 1 else f"SFU's {sfu_cores:g} cores full"
    if (row["latency_ms"]["p50"] or 0.0) > QUEUEING_MS:
        return f"SFU queueing (p50 latency over {QUEUEING_MS:.0f} ms)"
    if row["generator_cpu_cores"] >= CORE_FULL * generator_cores:
        return "generator core full (the SFU did not saturate)"
    cpus = os.cpu_count() or 1
    # Shared cores: full when none is left idle, whoever has it (the kernel's softirq delivery is no process's).
    if sfu_cores + generator_cores > cpus and row["machine_cpu_cores"]["idle"] <= (1 - CORE_FULL) * cpus:
        return "machine full (the SFU and the generator share its cores)"
    return None


async def _step(load: Load) -> dict[str, Any]:
    row = await load.measure()
    print(f"  {load.label or load.target.name}: {load.rooms} rooms x {load.plan.fanout}: {row['forwarded_packets_per_s']:.0f} pkt/s, "
          f"delivery {100 * row['delivery']:.2f} %, p50 {row['latency_ms']['p50'] or 0:.2f} ms, "
          f"SFU {100 * row['sfu_cpu_cores']:.0f} % of a core, generator {100 * row['generator_cpu_cores']:.0f} %"
          + (f", irq+softirq {100 * (row['machine_cpu_cores']['irq'] + row['machine_cpu_cores']['softirq']):.0f} %, "
             f"idle {100 * row['machine_cpu_cores']['idle']:.0f} %, SFU waited for a CPU "
             f"{100 * row['sfu_runqueue_wait_cores']:.0f} % of a core" if load.label else ""), flush=True)
    return row


async def saturate(load: Load) -> dict[str, Any]:
    """The ramp, the saturation point, and the ramp's windows nearest 50 % and 90 % of it."""
    ramp = []
    stop_reason = "largest step reached"
    for rooms in load.plan.room_steps:
        await load.add_rooms(rooms - load.rooms)
        row = await _step(load)
        ramp.append(row)
        reason = _saturated(row)
        if reason is not None:
            # One bad window can be the machine's (other work on a shared
            # host): a step counts as saturated when it fails twice in a row.
            row = await _step(load)
            ramp.append(row)
            reason = _saturated(row)
        if reason is not None:
            stop_reason = reason
            break
    good = [r for r in ramp if _saturated(r) is None] or ramp
    saturation = max(good, key=lambda r: r["forwarded_packets_per_s"])
    at = {}
    for fraction in (0.5, 0.9):
        # The ramp's own windows: pausing rooms to make these loads would
        # measure how an SFU recovers from a silent publisher instead.
        row = dict(min(good, key=lambda r: abs(r["forwarded_packets_per_s"] - fraction * saturation["forwarded_packets_per_s"])))
        row["load_fraction"] = row["forwarded_packets_per_s"] / saturation["forwarded_packets_per_s"]
        at[f"at_{int(fraction * 100)}_percent"] = row
    return {"ramp": ramp, "stop_reason": stop_reason, "saturation": saturation, **at, "largest_step": ramp[-1]}
