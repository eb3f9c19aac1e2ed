"""Fuzz every parser that reads untrusted input: STUN, RTP (+ extensions, RTX,
codec descriptors), RTCP (+ the TWCC feedback FCI), SDP, the signal protobufs
and access tokens.

Each target (bench/fuzz_targets.py) runs in its own atheris process
(bench/fuzz_worker.py), coverage-guided, starting from real inputs
(bench/fuzz_seeds.py), until it has seen --runs inputs or spent --seconds.
A failure is an exception other than the parser's documented error, a
libFuzzer timeout or out-of-memory, or an input that takes more than 10 ms:
the slowest inputs a worker saw are timed again here, without atheris'
instrumentation, because that is the speed the pod parses at. Prints a table
and writes JSON. The item-9 acceptance test runs the same targets through
fuzz_all() with a few seconds each.

    .venv/bin/python bench/fuzz.py                       # full run, 1M inputs per parser
    .venv/bin/python bench/fuzz.py --seconds 5 --targets rtp sdp
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fuzz_seeds import SEEDS  # noqa: E402
from bench.fuzz_targets import TARGETS  # noqa: E402

WORKER = ROOT / "bench" / "fuzz_worker.py"
SLOW_INPUT_MS = 10.0
RETIME_REPEATS = 5
LIBFUZZER_TIMEOUT_S = 5
"""libFuzzer's own hang detector (whole seconds only); the 10 ms budget is judged here."""

_ARTIFACT_PREFIXES = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-")


@dataclass
class FuzzResult:
    """What fuzzing one target found."""

    target: str
    documented_error: str
    inputs: int
    seconds: float
    slowest_ms: float  # re-timed without instrumentation, best of RETIME_REPEATS
    slowest_input_bytes: int
    failures: list[str] = field(default_factory=list)

    @property
    def inputs_per_s(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0


def _write_corpus(name: str, corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(SEEDS[name]()):
        (corpus / f"seed-{index:03d}").write_bytes(seed)


def _dictionary_line(token: bytes) -> str:
    """One libFuzzer dictionary entry: the token in quotes, every byte escaped as \\xNN."""
    return '"' + "".join("\\x%02x" % b for b in token) + '"\n'


def _write_dictionary(name: str, path: Path) -> bool:
    tokens = TARGETS[name].dictionary
    if tokens:
        path.write_text("".join(_dictionary_line(token) for token in tokens))
    return bool(tokens)


def _run_worker(name: str, runs: int, seconds: float, workdir: Path, seed: int) -> tuple[int, Path, Path]:
    """Start one worker and wait for it; returns (exit code, stats path, log path)."""
    workdir.mkdir(parents=True, exist_ok=True)
    corpus, stats, log = workdir / "corpus", workdir / "stats.json", workdir / "worker.log"
    _write_corpus(name, corpus)
    command = [
        sys.executable, str(WORKER), name, str(stats), str(runs), str(seconds),
        f"-max_len={TARGETS[name].max_len}", f"-seed={seed}", f"-timeout={LIBFUZZER_TIMEOUT_S}",
        f"-artifact_prefix={workdir}/", "-print_final_stats=0",
    ]
    if _write_dictionary(name, workdir / "tokens.dict"):
        command.append(f"-dict={workdir / 'tokens.dict'}")
    command.append(str(corpus))
    with log.open("wb") as out:
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONSAFEPATH": "1"})
    return code, stats, log


def _uncaught(log: Path) -> str:
    """The Python traceback atheris printed for a crash, last lines first in importance."""
    text = log.read_text(errors="replace")
    marker = text.rfind("=== Uncaught Python exception: ===")
    if marker < 0:
        return text[-600:].strip()
    lines = [line for line in text[marker:].splitlines()[1:] if line and not line.startswith("==")]
    return "\n".join(lines[:40])


def _failures_from_exit(code: int, workdir: Path, log: Path) -> list[str]:
    if code == 0:
        return []
    artifacts = sorted(p for p in workdir.iterdir() if p.name.startswith(_ARTIFACT_PREFIXES))
    described = ", ".join(f"{p} ({p.stat().st_size} bytes: {p.read_bytes()[:48].hex()})" for p in artifacts)
    return [f"worker exited {code}; input: {described or 'none saved'}\n{_uncaught(log)}"]


def _best_time_ms(name: str, data: bytes) -> float:
    run = TARGETS[name].run
    best = float("inf")
    for _ in range(RETIME_REPEATS):
        start = time.perf_counter()
        run(data)
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def _collect(name: str, code: int, stats_path: Path, log: Path) -> FuzzResult:
    failures = _failures_from_exit(code, stats_path.parent, log)
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {"inputs": 0, "seconds": 0.0, "slowest": []}
    slowest_ms, slowest_len = 0.0, 0
    if code == 0:
        for candidate in stats["slowest"]:
            data = bytes.fromhex(candidate["input"])
            took = _best_time_ms(name, data)
            if took > slowest_ms:
                slowest_ms, slowest_len = took, len(data)
            if took > SLOW_INPUT_MS:
                failures.append(f"slow input: {took:.1f} ms for {len(data)} bytes: {data[:64].hex()}")
    return FuzzResult(name, TARGETS[name].documented, stats["inputs"], stats["seconds"], slowest_ms, slowest_len, failures)


def fuzz_all(
    names: list[str], *, runs: int, seconds: float, workdir: Path, jobs: int = 1, seed: int = 1
) -> list[FuzzResult]:
    """Fuzz each named target in its own worker (``jobs`` at a time), then re-time their slowest inputs.

    Re-timing waits until every worker has finished, so it is not measured
    against a busy machine.
    """
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        outcomes = list(pool.map(lambda n: _run_worker(n, runs, seconds, workdir / n, seed), names))
    return [_collect(name, *outcome) for name, outcome in zip(names, outcomes)]


def print_table(results: list[FuzzResult]) -> None:
    header = f"{'parser':<15} | {'inputs':>10} | {'inputs/s':>9} | {'slowest ms':>10} | failures"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r.target:<15} | {r.inputs:>10} | {r.inputs_per_s:>9.0f} | {r.slowest_ms:>10.3f} | {len(r.failures)}")
    for r in results:
        for failure in r.failures:
            print(f"\n{r.target} FAILURE: {failure}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", nargs="+", choices=sorted(TARGETS), default=list(TARGETS))
    parser.add_argument("--runs", type=int, default=1_000_000, help="inputs per parser")
    parser.add_argument("--seconds", type=float, default=float("inf"), help="time cap per parser")
    parser.add_argument("--jobs", type=int, default=1, help="parsers fuzzed at once, one process each")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer's random seed")
    parser.add_argument("--workdir", type=Path, help="corpora, logs and failing inputs (default: a new temp dir)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "fuzz.json")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="switchboard-fuzz-"))
    results = fuzz_all(args.targets, runs=args.runs, seconds=args.seconds, workdir=workdir, jobs=args.jobs, seed=args.seed)
    print_table(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "benchmark": "fuzz",
                "note": "atheris (libFuzzer) with coverage instrumentation, so inputs/s is below the pod's parsing "
                "speed; slowest_ms is re-timed without instrumentation",
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
                "runs": args.runs,
                "seconds_cap": None if args.seconds == float("inf") else args.seconds,
                "slow_input_ms": SLOW_INPUT_MS,
                "results": [{**asdict(r), "inputs_per_s": round(r.inputs_per_s)} for r in results],
            },
            indent=2,
        )
    )
    print(f"wrote {args.json}; corpora and logs in {workdir}")
    return 1 if any(r.failures for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
