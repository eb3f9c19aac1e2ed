"""ErrorCode as a number on the wire: the canonical status codes (google.rpc.Code) that gRPC uses.

ErrorResponse.code, and the relay's SessionEnd.code and RoomReply.code, carry
these numbers, 0 meaning OK. The table lives here, not in grpc's StatusCode,
so the session layer and the relay need no grpc import.
"""

from __future__ import annotations

from mediapod.rtc.errors import ErrorCode

OK = 0

_NUMBERS = {
    ErrorCode.INVALID_ARGUMENT: 3,
    ErrorCode.DEADLINE_EXCEEDED: 4,
    ErrorCode.NOT_FOUND: 5,
    ErrorCode.PERMISSION_DENIED: 7,
    ErrorCode.RESOURCE_EXHAUSTED: 8,
    ErrorCode.FAILED_PRECONDITION: 9,
    ErrorCode.UNIMPLEMENTED: 12,
    ErrorCode.INTERNAL: 13,
    ErrorCode.UNAVAILABLE: 14,
    ErrorCode.UNAUTHENTICATED: 16,
}
_CODES = {number: code for code, number in _NUMBERS.items()}


def status_number(code: ErrorCode) -> int:
    return _NUMBERS[code]


def error_code(number: int) -> ErrorCode:
    """The ErrorCode of a non-zero wire status; one we never send reads as INTERNAL."""
    return _CODES.get(number, ErrorCode.INTERNAL)
