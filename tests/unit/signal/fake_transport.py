"""A client's end of a signal stream, in memory: what it will send and what it took.

A test double of the wire (SignalTransport), never of the session layer:
the sessions, queues, relay and rooms under test are the product's own.
"""

from __future__ import annotations

import asyncio

from mediapod.protocol import signal_pb2
from mediapod.signal.decoding import UndecodableRequest

Incoming = signal_pb2.SignalRequest | UndecodableRequest | BaseException | None


class FakeTransport:
    """Requests are handed over with send(); responses are taken while ``reading`` is set, else writes wait."""

    def __init__(self, *, reading: bool = True) -> None:
        self._incoming: asyncio.Queue[Incoming] = asyncio.Queue()
        self.taken: list[signal_pb2.SignalResponse] = []
        self.reading = asyncio.Event()
        if reading:
            self.reading.set()

    def send(self, item: Incoming) -> None:
        """What the client sends next: a request, undecodable bytes, None to hang up, or an error the read raises."""
        self._incoming.put_nowait(item)

    def request(self, request_id: int = 0, **message: object) -> None:
        self.send(signal_pb2.SignalRequest(request_id=request_id, **message))

    def hang_up(self) -> None:
        self.send(None)

    async def read(self) -> signal_pb2.SignalRequest | UndecodableRequest | None:
        item = await self._incoming.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def write(self, response: signal_pb2.SignalResponse) -> None:
        await self.reading.wait()  # a client that does not read holds the write, as HTTP/2 flow control does
        self.taken.append(response)

    def kinds(self) -> list[str]:
        return [str(response.WhichOneof("message")) for response in self.taken]

    def of(self, kind: str) -> list[signal_pb2.SignalResponse]:
        return [response for response in self.taken if response.WhichOneof("message") == kind]

    async def until(self, kind: str, count: int = 1, timeout: float = 2.0) -> list[signal_pb2.SignalResponse]:
        """The responses of one kind once at least count were taken."""
        async with asyncio.timeout(timeout):
            while len(self.of(kind)) < count:
                await asyncio.sleep(0.005)
        return self.of(kind)
