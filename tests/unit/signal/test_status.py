"""Wire status numbers agree with gRPC's own StatusCode table (the oracle), both ways."""

from __future__ import annotations

import grpc

from mediapod.rtc.errors import ErrorCode
from mediapod.signal.status import error_code, status_number


def test_every_error_code_has_grpcs_number_and_comes_back() -> None:
    for code in ErrorCode:
        number = grpc.StatusCode[code.value].value[0]
        assert status_number(code) == number and error_code(number) == code


def test_a_number_we_never_send_reads_as_internal() -> None:
    assert error_code(grpc.StatusCode.DATA_LOSS.value[0]) == ErrorCode.INTERNAL
