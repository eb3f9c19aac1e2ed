"""A TCP proxy in front of several pods, as a Kubernetes Service is: each new connection goes to a pod that is alive.

LiveKit's SDKs reconnect to the URL they were given, so a test of a pod
failing needs one address that outlives the pod. A connection tries the
preferred backend first, then the others in order; a refused connect means
that pod is gone. Connections already open stay with their pod and die with it.
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    """Listens on a loopback port; ``prefer`` picks where the next connections go while that pod is up."""

    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = backends
        self.preferred: tuple[str, int] | None = None  # None: the first backend that accepts
        self.connections: list[tuple[str, int]] = []  # the backend each accepted connection went to, in order
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._pipes:
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for backend in sorted(self.backends, key=lambda b: b != self.preferred):
            try:
                upstream_reader, upstream_writer = await asyncio.wait_for(asyncio.open_connection(*backend), 2)
            except (OSError, TimeoutError):
                continue
            self.connections.append(backend)
            pipes = [
                asyncio.create_task(_pipe(reader, upstream_writer)),
                asyncio.create_task(_pipe(upstream_reader, writer)),
            ]
            self._pipes.update(pipes)
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            for task in pipes:
                task.cancel()
                self._pipes.discard(task)
            upstream_writer.close()
            break
        writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
