"""Run one fuzz target under atheris (libFuzzer, coverage-guided) within a budget.

    fuzz_worker.py TARGET STATS_JSON RUNS SECONDS [libFuzzer flags] [corpus dir]

Started by bench/fuzz.py, one process per target: atheris owns its process
(libFuzzer's loop never returns) and instruments the imported parsers for
coverage feedback. The worker stops itself after RUNS inputs or SECONDS,
whichever comes first, because libFuzzer's own exit skips Python's exit
hooks and its counters are not precise enough for a rate. It writes
STATS_JSON (inputs, elapsed seconds, the slowest inputs) whenever the slowest
inputs change and at the end. A crash is libFuzzer's business: the traceback
goes to stderr, the input to an artifact file, and the exit code is non-zero.
"""

from __future__ import annotations

import heapq
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import atheris  # noqa: E402

SLOWEST_KEPT = 8
"""Slow candidates handed back; several, because the first calls of a parser are slow for warm-up reasons."""

_CHECK_CLOCK_EVERY = 256

INSTRUMENTED = ("mediapod", "bench", "sdp_transform", "jwt", "aioice")
"""Packages whose code parses untrusted input and so guides the fuzzer. Instrumenting
everything imported (cryptography, protobuf, prometheus ...) costs ~25 s per start."""


class Budget:
    """Counts inputs, times each one, and ends the process when the budget is spent."""

    def __init__(self, stats_path: Path, runs: int, seconds: float) -> None:
        self.stats_path = stats_path
        self.runs = runs
        self.seconds = seconds
        self.inputs = 0
        self.started = time.perf_counter()
        self.slowest: list[tuple[int, bytes]] = []  # min-heap of (nanoseconds, input)

    def record(self, data: bytes, took_ns: int) -> None:
        self.inputs += 1
        if len(self.slowest) < SLOWEST_KEPT:
            heapq.heappush(self.slowest, (took_ns, data))
            self.write()
        elif took_ns > self.slowest[0][0]:
            heapq.heapreplace(self.slowest, (took_ns, data))
            self.write()
        if self.inputs >= self.runs or (
            self.inputs % _CHECK_CLOCK_EVERY == 0 and time.perf_counter() - self.started >= self.seconds
        ):
            self.write()
            os._exit(0)  # libFuzzer's loop has no other way out that keeps our numbers

    def write(self) -> None:
        stats = {
            "inputs": self.inputs,
            "seconds": time.perf_counter() - self.started,
            "slowest": [{"ns": ns, "input": data.hex()} for ns, data in sorted(self.slowest, reverse=True)],
        }
        tmp = self.stats_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(stats))
        tmp.replace(self.stats_path)


def main() -> None:
    name, stats_path, runs, seconds = sys.argv[1:5]
    libfuzzer_argv = [sys.argv[0], *sys.argv[5:]]
    with atheris.instrument_imports(include=list(INSTRUMENTED)):
        from bench.fuzz_targets import TARGETS
    run = TARGETS[name].run
    budget = Budget(Path(stats_path), int(runs), float(seconds))
    clock = time.perf_counter_ns

    def one_input(data: bytes) -> None:
        start = clock()
        run(data)
        budget.record(data, clock() - start)

    atheris.Setup(libfuzzer_argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
