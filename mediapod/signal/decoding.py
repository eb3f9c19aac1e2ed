"""Decoding a client's SignalRequest bytes in a way that cannot fail inside a front end.

grpc.aio runs the request deserializer before any of our code: if it raises
(corrupt protobuf, a proto3 ``string`` that is not UTF-8), the call ends with
UNKNOWN and a traceback in the log, and the servicer never learns why. This
deserializer never raises; it turns bad bytes into an UndecodableRequest that
the session ends with INVALID_ARGUMENT and a message. Any front end that
receives SignalRequest bytes (a WebSocket too) decodes them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from mediapod.protocol import signal_pb2


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

