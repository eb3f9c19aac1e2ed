"""Signal requests are decoded without ever raising into gRPC."""

from __future__ import annotations

from mediapod.protocol import signal_pb2
from mediapod.signal.decoding import UndecodableRequest, decode_signal_request


def test_a_valid_request_decodes() -> None:
    request = signal_pb2.SignalRequest(request_id=7, ping=signal_pb2.Ping(timestamp=1))
    assert decode_signal_request(request.SerializeToString()) == request


def test_corrupt_bytes_become_an_undecodable_request_saying_why() -> None:
    decoded = decode_signal_request(b"\xff\xff\xff")
    assert isinstance(decoded, UndecodableRequest)
    assert "3 bytes" in decoded.reason and "could not be decoded" in decoded.reason


def test_a_string_field_that_is_not_utf8_is_undecodable() -> None:
    data = signal_pb2.SignalRequest(remove_track=signal_pb2.RemoveTrackRequest(sid="XX")).SerializeToString()
    decoded = decode_signal_request(data.replace(b"XX", b"\xc3\x28"))
    assert isinstance(decoded, UndecodableRequest) and "UTF-8" in decoded.reason
