"""Decoding a client's SignalRequest bytes in a way that cannot fail inside gRPC.

grpc.aio runs the request deserializer before any of our code: if it raises
(corrupt protobuf, a proto3 ``string`` that is not UTF-8), the call ends with
UNKNOWN and a traceback in the log, and the servicer never learns why. This
deserializer never raises; it turns bad bytes into an UndecodableRequest that
the servicer answers with INVALID_ARGUMENT and a message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc

from mediapod.protocol import signal_pb2

SERVICE_NAME = "switchboard.v1.Signal"


@dataclass(frozen=True, slots=True)
class UndecodableRequest:
    """Bytes from a client that are not a SignalRequest; ``reason`` says why, for the client."""

    reason: str


def decode_signal_request(data: bytes) -> signal_pb2.SignalRequest | UndecodableRequest:
    """Parse one SignalRequest; never raises."""
    try:
        return signal_pb2.SignalRequest.FromString(data)
    except Exception as exc:  # noqa: BLE001 - any failure here would reach gRPC as UNKNOWN
        # upb says "Error parsing message with type '...': <what>"; the what is the useful part.
        detail = str(exc).rpartition(": ")[2] or type(exc).__name__
        return UndecodableRequest(f"a SignalRequest of {len(data)} bytes could not be decoded ({detail})")


def add_signal_service(connect: Callable[..., Awaitable[None]], server: grpc.aio.Server) -> None:
    """Serve Signal.Connect with ``connect``, its requests decoded by decode_signal_request.

    Replaces the generated add_SignalServicer_to_server, whose deserializer raises.
    """
    handlers = {
        "Connect": grpc.stream_stream_rpc_method_handler(
            connect,
            request_deserializer=decode_signal_request,
            response_serializer=signal_pb2.SignalResponse.SerializeToString,
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
