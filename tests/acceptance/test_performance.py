"""Issue: Performance at saturation — the fan-out load generator and its comparison with Janus and mediasoup.

The figures live in bench/ (README, bench/results/); these tests check the
instrument, never a speed: the quick mode runs against every SFU installed
here and writes JSON whose columns are all present and whose counts and
latency samples agree with each other, and the README's table is the
committed JSON of one full run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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
    # every packet it read carried a readable send stamp.
    assert row["sampled_packets"] == pytest.approx(row["received_packets"] / fanout, rel=0.1)
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


def test_item_3_optimised_hot_path_forwards_byte_identical_packets_to_the_previous_implementation() -> None:
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
