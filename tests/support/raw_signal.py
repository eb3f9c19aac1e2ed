"""A Signal stream driven byte by byte, for clients that misbehave on purpose.

mediapod.client is a well-behaved participant; these tests need one that
sends bytes that are no protobuf, never reads its responses, or keeps
talking after it was removed. The stream's requests are raw bytes, so
anything can be written; responses are decoded only when read.
"""

from __future__ import annotations

import contextlib

import grpc

from mediapod.protocol import signal_pb2

CONNECT = "/switchboard.v1.Signal/Connect"


class RawSignalStream:
    """One Signal.Connect call on its own channel; nothing is read unless a test asks."""

    def __init__(self, target: str) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        connect = self._channel.stream_stream(
            CONNECT, request_serializer=lambda data: data, response_deserializer=signal_pb2.SignalResponse.FromString
        )
        self.call: grpc.aio.StreamStreamCall = connect()

    async def write(self, request: signal_pb2.SignalRequest | bytes) -> None:
        data = request if isinstance(request, bytes) else request.SerializeToString()
        await self.call.write(data)

    async def join(self, token: str) -> signal_pb2.JoinResponse:
        """Send the JoinRequest and read the join response (the only read a non-reader makes)."""
        await self.write(signal_pb2.SignalRequest(join=signal_pb2.JoinRequest(token=token)))
        response = await self.call.read()
        assert response is not grpc.aio.EOF and response.WhichOneof("message") == "join", response
        return response.join

    async def status(self) -> tuple[grpc.StatusCode, str]:
        """How the server ended the call, once it has; reads what is left, since the status comes after it."""
        with contextlib.suppress(grpc.aio.AioRpcError):
            while await self.call.read() is not grpc.aio.EOF:
                pass
        return await self.call.code(), await self.call.details() or ""

    async def close(self) -> None:
        self.call.cancel()
        await self._channel.close()


def invalid_utf8(request: signal_pb2.SignalRequest, marker: str) -> bytes:
    """request's wire bytes with ``marker`` (inside one string field) turned into invalid UTF-8."""
    data = request.SerializeToString()
    assert data.count(marker.encode()) == 1
    return data.replace(marker.encode(), b"\xff" * len(marker.encode()))
