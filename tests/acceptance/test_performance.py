"""Issue: Performance at saturation — the fan-out load generator and its comparison with Janus and mediasoup.

The figures live in bench/ (README, bench/results/); these tests check the
instrument, never a speed: the quick mode runs against every SFU installed
here and writes JSON whose columns are all present and whose counts and
latency samples agree with each other, and the README's table is the
committed JSON of one full run.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from redis.asyncio import Redis

from mediapod import client
from mediapod.config import usable_cores
from mediapod.protocol import node_pb2
from mediapod.routing.pods import pods
from tests.support.livekit_sdk import SdkClient, sdk_token
from tests.support.mediapod_process import MediaPodProcess
from tests.support.peers import count_frames, eventually
from tests.support.redis_server import RedisServer
from tests.support.routing_table import registered_nodes, room_host
from tests.support.worker_pod import create_room, list_rooms, worker_pids

ROOT = Path(__file__).resolve().parents[2]
MEDIASOUP_WORKER = (
    Path(os.environ.get("BENCH_PEERS_CACHE", Path.home() / ".cache" / "switchboard-bench"))
    / "mediasoup/node_modules/mediasoup/worker/out/Release/mediasoup-worker"
)
# The table: throughput and cost at saturation, latency at 50 % and 90 % of it, memory.
COLUMNS = (
    "forwarded_packets_per_s", "sfu_cpu_us_per_packet", "packets_per_s_per_core",
    "p50_ms_at_50", "p99_ms_at_50", "p99.9_ms_at_50", "p50_ms_at_90", "p99_ms_at_90", "p99.9_ms_at_90",
    "rss_per_track_kib", "idle_rss_mib",
)


def _expected_targets() -> dict[str, bool]:
    """Which SFUs the bench must measure on this machine (Janus needs root for its network namespace)."""
    return {
        "switchboard": True,
        "janus": shutil.which("janus") is not None and os.geteuid() == 0,
        "mediasoup": MEDIASOUP_WORKER.exists() and shutil.which("node") is not None,
    }


def _check_row(row: dict[str, Any], fanout: int) -> None:
    """One measured window: its rates, delivery and latency samples follow from its own counts."""
    assert row["received_packets"] > 0 and row["expected_packets"] > 0, row
    assert row["forwarded_packets_per_s"] == pytest.approx(row["received_packets"] / row["window_s"])
    assert row["delivery"] == pytest.approx(row["received_packets"] / row["expected_packets"])
    assert row["delivery_min_subscriber"] <= row["delivery"] <= row["delivery_max_subscriber"]
    assert row["subscribers"] == row["rooms"] * fanout
    # One subscriber per room is sampled: it read its share of the packets, and
    # every packet it read carried a readable send stamp. Its count is taken by
    # asking its process, the others' from shared memory, so the two windows
    # differ by that round trip: on a busy machine, up to a fifth of a quick window.
    assert row["sampled_packets"] == pytest.approx(row["received_packets"] / fanout, rel=0.2)
    assert row["undecryptable"] == 0
    assert row["latency_samples"] == row["sampled_packets"]
    latency = row["latency_ms"]
    # Every packet takes some time from the publisher's stamp to the subscriber's socket.
    assert 0 < latency["p50"] <= latency["p99"] <= latency["p99.9"], latency
    assert row["sfu_rss_bytes"] > 0


def test_item1_fanout_quick_runs_and_writes_consistent_json(tmp_path: Path) -> None:
    out = tmp_path / "fanout.json"
    run = subprocess.run(
        [sys.executable, "-P", str(ROOT / "bench" / "fanout"), "--quick", "--json", str(out)],
        check=False, capture_output=True, text=True, timeout=110, cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "fwd pkt/s" in run.stdout and f"wrote {out}" in run.stdout, run.stdout

    document = json.loads(out.read_text())
    assert document["columns"] == list(COLUMNS)
    fanout = document["settings"]["fanout"]
    results = {r["target"]: r for r in document["results"]}
    assert set(results) == {"switchboard", "janus", "mediasoup"}
    for name, installed in _expected_targets().items():
        result = results[name]
        assert result["available"] is installed, result.get("reason")
        if not installed:
            assert result["reason"] and f"{name}: not measured" in run.stdout
            continue
        assert set(result["summary"]) == set(COLUMNS), result["summary"]
        summary = result["summary"]
        measured = [c for c in COLUMNS if not (c == "packets_per_s_per_core" and summary["sfu_cpu_us_per_packet"] == 0)]
        assert all(isinstance(summary[c], float) for c in measured), summary
        rows = [*result["ramp"], result["at_50_percent"], result["at_90_percent"]]
        for row in rows:
            _check_row(row, fanout)
        assert result["saturation"] in result["ramp"]
        assert result["summary"]["forwarded_packets_per_s"] == result["saturation"]["forwarded_packets_per_s"]
        assert result["summary"]["p99_ms_at_90"] == result["at_90_percent"]["latency_ms"]["p99"]
        assert result["idle_rss_bytes"] > 0


def test_item4_readme_shows_one_full_run_beside_janus_and_mediasoup_and_how_to_rerun_it() -> None:
    """The README's table is the committed JSON of a full run (not the quick one), all three SFUs measured."""
    readme = (ROOT / "README.md").read_text()
    section = readme.partition("\n### Fan-out at saturation")[2].partition("\n## ")[0]
    assert "bench/peers/setup" in section and ".venv/bin/python bench/fanout" in section, "how to rerun it"
    name = re.findall(r"`(bench/results/fanout-[\d-]+\.json)`", section)[0]  # the table's; a second run may follow
    document = json.loads((ROOT / name).read_text())
    assert document["settings"]["quick"] is False and document["settings"]["fanout"] == 50
    for result in document["results"]:
        assert result["available"], result
        label = {"switchboard": "Switchboard", "janus": "Janus", "mediasoup": "mediasoup"}[result["target"]]
        [row] = [line for line in section.splitlines() if line.startswith(f"| {label}")]
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        summary = result["summary"]
        assert cells[1].startswith(f"{summary['forwarded_packets_per_s']:,.0f} "), (cells[1], summary)
        assert cells[2] == f"{summary['sfu_cpu_us_per_packet']:.1f}", (cells[2], summary)
        assert cells[4].startswith(f"{summary['p50_ms_at_50']:.2f} / "), (cells[4], summary)


def test_item3_optimised_hot_path_forwards_byte_identical_packets_to_the_previous_implementation() -> None:
    """The recorded simulcast camera and microphone, replayed through today's forwarding core, give each subscriber
    the very packets the implementation before the hot-path work gave it (bench/hotpath/reference.txt names its
    commit): sequence number, timestamp, SSRC, payload type, marker, payload, read by aiortc's RTP parser, and a hash
    of every byte."""
    from bench.hotpath import replay

    reference = replay.read_reference()
    sent = replay.digest()
    assert replay.lines(sent) == reference
    # The replay exercised what the hot path does: every subscriber got audio and video, retransmissions went out
    # over RTX, and layer switches moved subscribers between the recording's three video SSRCs' packets.
    assert all(any(f" pt={replay.AUDIO_PT} " in line for line in reference if line.startswith(f"{index} ")) for index in range(len(sent)))
    assert any(f" pt={replay.RTX_PT} " in line for line in reference)
    assert len({len(packets) for packets in sent}) == len(sent), "subscribers with different wishes got different streams"


WORKER_HEARTBEAT = 0.5
WORKER_STALE = 5.0  # the dead worker's participants must hear of it well before its heartbeat goes stale


async def _room_with_media(pod: MediaPodProcess, room: str) -> tuple[client.Session, client.Session]:
    """A publisher and a subscriber joined through the pod's shared gRPC port; the subscriber decodes both tracks."""
    publisher = await client.connect(pod.grpc_target, pod.token(room, "publisher"))
    await publisher.publish(AudioStreamTrack())
    await publisher.publish(VideoStreamTrack())
    subscriber = await client.connect(pod.grpc_target, pod.token(room, "subscriber"))
    await subscriber.wait_for_tracks(2, timeout=10)
    return publisher, subscriber


async def _sdk_room_with_media(pod: MediaPodProcess, room: str) -> None:
    """A LiveKit SDK publisher (tone and pattern) and subscriber in room; the subscriber must decode both."""
    publisher, subscriber = SdkClient(), SdkClient()
    try:
        await publisher.connect(pod.http_url, sdk_token(room, "sdk-publisher"))
        await publisher.publish(video=True)
        await subscriber.connect(pod.http_url, sdk_token(room, "sdk-subscriber"))
        seen = subscriber.reception
        await eventually(lambda: seen.tone_frames >= 20 and seen.video_frames >= 10, timeout=15)
    finally:
        await asyncio.gather(publisher.close(), subscriber.close(), return_exceptions=True)


async def _decodes(session: client.Session) -> bool:
    counts = await count_frames(list(session.remote_tracks.values()), {"video": 20, "audio": 40}, timeout=10)
    return counts.get("video", 0) >= 20 and counts.get("audio", 0) >= 40


async def test_item2_rooms_spread_over_two_workers_and_a_dead_worker_is_restarted_with_its_rooms_reported_gone(
    redis_server: RedisServer, redis: Redis, tmp_path: Path
) -> None:
    """`--workers 2`: each worker is a node of the routing table (its pod named, its own UDP port); with one room
    per worker allowed, two rooms land on both; media flows in each, the UDP port it reaches being its worker's;
    the merged /metrics counts both; the pod's registered capacity is both workers' cores. A worker killed with
    SIGKILL: its room's participants are told at once (long before its heartbeat would go stale), ListRooms (Twirp)
    and Redis drop its room, the other room keeps serving media (LiveKit SDK clients decode it), and the supervisor
    restarts the worker under its id. A second pod on the same ports fails to start."""
    env = {
        "SWITCHBOARD_REDIS__ADDRESS": redis_server.address,
        "SWITCHBOARD_ROUTING__HEARTBEAT_INTERVAL": str(WORKER_HEARTBEAT),
        "SWITCHBOARD_ROUTING__STALE_TIMEOUT": str(WORKER_STALE),
        "SWITCHBOARD_ROUTING__SORT_BY": "rooms",
        "SWITCHBOARD_ROUTING__MAX_ROOMS": "1",
        # Room 1 outlives its first participants even if the kill cuts both their streams (see below).
        "SWITCHBOARD_ROOM__DEPARTURE_TIMEOUT": "60",
    }
    pod = MediaPodProcess(node_id="pod-a", env=env, args=["--workers", "2"]).start(str(tmp_path))
    sessions: list[client.Session] = []
    try:
        workers = ["pod-a-w0", "pod-a-w1"]

        async def both_serving() -> bool:
            nodes = await registered_nodes(redis)
            return all(w in nodes and nodes[w].state == node_pb2.SERVING for w in workers)

        await eventually(both_serving, timeout=10)
        # The shared ports are shared by this pod's workers only: a second pod on them fails as one process would.
        http_port = pod.http_url.rstrip("/").rsplit(":", 1)[1]
        with pytest.raises(RuntimeError, match=f"HTTP port 127.0.0.1:{http_port} is already in use"):
            MediaPodProcess(node_id="pod-b", env=env, args=["--workers", "2", "--http-port", http_port]).start(str(tmp_path))
        nodes = await registered_nodes(redis)
        assert [(nodes[w].pod, nodes[w].worker) for w in workers] == [("pod-a", 0), ("pod-a", 1)]
        assert nodes["pod-a-w0"].udp_port != nodes["pod-a-w1"].udp_port
        capacity = pods(nodes.values())["pod-a"]
        assert capacity.workers == tuple(workers)
        assert capacity.cpus == 2 * max(1, usable_cores() // 2)  # each worker counts its share of the pod's cores

        # One room, then (once the table shows it) a second: the only worker with room left takes it.
        first = await create_room(pod, "room-1")
        await eventually(lambda: _rooms_registered(redis, first, 1), timeout=5)
        second = await create_room(pod, "room-2")
        assert {first, second} == set(workers)

        for room, host in (("room-1", first), ("room-2", second)):
            publisher, subscriber = await _room_with_media(pod, room)
            sessions += [publisher, subscriber]
            assert publisher.join.node_id == host and subscriber.join.node_id == host
            assert await _decodes(subscriber), room
            # ICE goes to the hosting worker's own UDP port.
            assert host_candidate_ports(subscriber.subscriber_pc.remoteDescription.sdp) == {nodes[host].udp_port}
        assert pod.metric("switchboard_rooms") == 2
        assert pod.metric("switchboard_rooms", switchboard_node=first) == 1
        assert pod.metric("switchboard_rooms", switchboard_node=second) == 1
        capacity = pods((await registered_nodes(redis)).values())["pod-a"]
        assert capacity.rooms == 2 and capacity.clients == 4

        old_pid = worker_pids(pod)[second]
        os.kill(old_pid, signal.SIGKILL)
        told = await eventually(lambda: sessions[2].closed.is_set() and sessions[3].closed.is_set(), timeout=WORKER_STALE)
        assert told < WORKER_STALE / 2, told
        assert await room_host(redis, "room-2") is None
        assert await list_rooms(pod) == {"room-1"}
        # Room 1 lives on: its worker still hosts it (a participant whose signaling stream the kernel had handed
        # to the dead worker lost that stream, as with a dead pod), and newcomers get media there
        # (LiveKit's SDK this time, over the shared WebSocket port).
        await _sdk_room_with_media(pod, "room-1")
        assert await room_host(redis, "room-1") == first

        async def restarted() -> bool:
            node = (await registered_nodes(redis)).get(second)
            return node is not None and node.state == node_pb2.SERVING and worker_pids(pod)[second] != old_pid

        await eventually(restarted, timeout=20)
        assert f"worker {second} (pid {old_pid}) died" in pod.log_text()
    finally:
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        pod.stop(signal.SIGINT)  # at once: SIGTERM would drain until the rooms' departure timeout


async def _rooms_registered(redis: Redis, node_id: str, rooms: int) -> bool:
    node = (await registered_nodes(redis)).get(node_id)
    return node is not None and node.stats.num_rooms == rooms


def host_candidate_ports(sdp: str) -> set[int]:
    return {int(line.split()[5]) for line in sdp.splitlines() if line.startswith("a=candidate:") and "typ host" in line}
