"""The supervisor of a pod's worker processes: start them, pass signals on, restart the ones that die.

It runs no media and no signaling itself (see the package docstring for how
rooms and connections reach a worker). Workers are spawned, not forked: the
parent has imported grpc and OpenSSL, whose threads and locks do not
survive a fork.

A worker that dies while the pod is not stopping is reported to the cluster
at once (gone.py: its rooms unmapped, sessions relayed to it ended), then
started again with the same node id and ports after a backoff. A worker
that fails before it ever served makes the whole pod fail, as one process
would (a UDP port in use is not something a restart fixes).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from redis.exceptions import RedisError

from mediapod.banner import Serving, print_banner
from mediapod.config import MediaConfig
from mediapod.routing import registry
from mediapod.workers.backoff import RestartBackoff
from mediapod.workers.gone import WorkerObituary
from mediapod.workers.metrics_proxy import MetricsProxy
from mediapod.workers.placement import claim_shared_ports, worker_config

log = logging.getLogger(__name__)

# A worker imports everything and registers in Redis before it serves.
START_TIMEOUT = 60.0
# A worker that closed its report pipe without serving is exiting; this long to see its exit code.
EXIT_PATIENCE = 5.0

# The function a worker process runs: serve the config, send Serving on the connection once up.
WorkerMain = Callable[[MediaConfig, Connection], None]

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGINT) -> None:
    """Ask Linux to send sig to this process when its supervisor dies (no orphaned workers holding ports)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(sig))


async def supervise(config: MediaConfig, worker_main: WorkerMain) -> None:
    """Run the pod as ``config.workers`` worker processes (main.py's entry point for workers > 1).

    Raises:
        PortInUse: the HTTP, gRPC or metrics port is taken.
        WorkerFailed: a worker could not start.
    """
    pod = claim_shared_ports(config)
    redis = registry.connect(pod.redis)
    obituary = WorkerObituary(registry.Registry(redis), pod.node_id, pod.redis.timeout)
    try:
        await Supervisor(pod, worker_main, obituary, MetricsProxy(pod.metrics_host, pod.metrics_port)).run()
    finally:
        with contextlib.suppress(RedisError, OSError):
            await redis.aclose()


class WorkerFailed(Exception):
    """A worker exited before it ever served; the message says which and how."""


class _Worker:
    """One worker slot: its config stays, its process changes with each restart."""

    def __init__(self, config: MediaConfig) -> None:
        self.config = config
        self.process: BaseProcess | None = None
        self.started_at = 0.0
        self.serving: Serving | None = None
        self.backoff = RestartBackoff()

    @property
    def node_id(self) -> str:
        return self.config.node_id


class Supervisor:
    """Runs ``pod.workers`` worker processes until a signal stops them all."""

    def __init__(
        self, pod: MediaConfig, worker_main: WorkerMain, obituary: WorkerObituary, metrics: MetricsProxy,
    ) -> None:
        """pod: the pod's config with concrete HTTP and gRPC ports (placement.claim_shared_ports)."""
        self._pod = pod
        self._worker_main = worker_main
        self._obituary = obituary
        self._metrics = metrics
        self._context = multiprocessing.get_context("spawn")
        self._workers = [_Worker(worker_config(pod, index)) for index in range(pod.workers)]
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Start every worker, print the banner, keep them running until SIGTERM/SIGINT and they exit.

        Raises:
            WorkerFailed: a worker could not start.
            PortInUse: the metrics port is taken.
        """
        metrics_port = await self._metrics.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.pass_on, sig)
        try:
            await self._start_all()
            serving = [w.serving for w in self._workers if w.serving is not None]
            if len(serving) == len(self._workers):  # not stopped by a signal while starting
                first = serving[0]
                print_banner(
                    self._pod, Serving(self._pod.http_port, self._pod.grpc_port, first.udp_port, metrics_port), serving,
                )
            await asyncio.gather(*(self._keep(worker) for worker in self._workers))
            log.info("pod %s: every worker has exited", self._pod.node_id)
        finally:
            await self._metrics.stop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def _start_all(self) -> None:
        results = await asyncio.gather(*(self._start(worker) for worker in self._workers), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures and not self._stopping.is_set():  # (a signal meanwhile: the workers are exiting as asked)
            self._stopping.set()
            for worker in self._workers:
                self._signal(worker, signal.SIGINT)
            await asyncio.gather(*(self._exited(worker) for worker in self._workers))
            raise failures[0]

    def processes(self) -> dict[str, int]:
        """Worker node id -> pid, for each worker serving now."""
        return {
            worker.node_id: worker.process.pid
            for worker in self._workers
            if worker.serving is not None and worker.process is not None and worker.process.pid is not None
            and worker.process.exitcode is None
        }

    def pass_on(self, sig: signal.Signals) -> None:
        """Pass a signal to every worker: SIGTERM drains each (a second one stops it), SIGINT stops it."""
        log.info("pod %s: %s, passed to %d worker(s)", self._pod.node_id, sig.name, len(self._workers))
        self._stopping.set()
        for worker in self._workers:
            self._signal(worker, sig)

    @staticmethod
    def _signal(worker: _Worker, sig: signal.Signals) -> None:
        process = worker.process
        # exitcode None: not yet reaped, so the pid is still this worker's.
        if process is not None and process.pid is not None and process.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, sig)

    async def _start(self, worker: _Worker) -> None:
        """Spawn the worker and wait until it serves.

        Raises:
            WorkerFailed: it exited (or hung) before serving.
        """
        receive, send = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=self._worker_main, args=(worker.config, send), name=worker.node_id, daemon=False,
        )
        process.start()
        send.close()  # the child holds its end; EOF here means it died
        worker.process, worker.started_at, worker.serving = process, time.monotonic(), None
        log.info("worker %s started (pid %d)", worker.node_id, process.pid)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await _readable(receive.fileno())
            worker.serving = receive.recv()
        except (EOFError, OSError, TimeoutError) as exc:
            if not isinstance(exc, TimeoutError):  # it closed the pipe: let it finish exiting, to report its code
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(EXIT_PATIENCE):
                        await self._exited(worker)
            self._signal(worker, signal.SIGKILL)
            await self._exited(worker)
            raise WorkerFailed(
                f"worker {worker.node_id} exited before serving (exit code {process.exitcode}); see its log above"
            ) from None
        finally:
            receive.close()
        self._metrics.targets[worker.node_id] = worker.serving.metrics_port
        log.info("worker %s serving (UDP port %d)", worker.node_id, worker.serving.udp_port)

    async def _keep(self, worker: _Worker) -> None:
        """Restart the worker each time it dies, until the pod stops."""
        while True:
            await self._exited(worker)
            worker.serving = None
            self._metrics.targets.pop(worker.node_id, None)
            if self._stopping.is_set():
                return
            process = worker.process
            assert process is not None
            ran_for = time.monotonic() - worker.started_at
            log.error(
                "worker %s (pid %s) died with exit code %s after %.0f s; its rooms are gone",
                worker.node_id, process.pid, process.exitcode, ran_for,
            )
            await self._report_gone(worker.node_id)
            delay = worker.backoff.delay(ran_for)
            log.info("restarting worker %s in %.1f s", worker.node_id, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return
            try:
                await self._start(worker)
            except WorkerFailed as exc:
                log.error("%s; trying again", exc)

    async def _report_gone(self, node_id: str) -> None:
        try:
            rooms = await self._obituary.announce(node_id)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("could not report worker %s gone in Redis (%s); its heartbeat will go stale instead", node_id, exc)
            return
        log.warning("worker %s removed from the routing table with its room(s): %s", node_id, ", ".join(rooms) or "none")

    @staticmethod
    async def _exited(worker: _Worker) -> None:
        process = worker.process
        if process is None:
            return
        if process.exitcode is None:
            await _readable(process.sentinel)
        process.join()


async def _readable(fd: int) -> None:
    """Wait until fd is readable (a pipe with data or EOF, a process sentinel after exit)."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(fd)
