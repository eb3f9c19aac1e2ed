"""The committed stubs in mediapod/protocol are exactly what proto/ generates.

Stubs are committed so installs need no protoc; these tests stop them from
drifting away from the wire contract, and pin the decode behaviour that the
signaling layer relies on to reject bad input.
"""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.message import DecodeError

from mediapod.protocol import models_pb2, signal_pb2

REPO_ROOT = Path(__file__).resolve().parents[2]
GEN_SCRIPT = REPO_ROOT / "scripts" / "gen_proto.py"
COMMITTED = REPO_ROOT / "mediapod" / "protocol"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _stub_names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.name.endswith(GENERATED_SUFFIXES)}


def test_committed_stubs_match_what_proto_generates(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(GEN_SCRIPT), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"gen_proto.py failed:\n{result.stderr}"

    regenerate_hint = "run `python scripts/gen_proto.py` and commit mediapod/protocol/"
    fresh, committed = _stub_names(tmp_path), _stub_names(COMMITTED)
    assert fresh == committed, (
        f"stub files differ; missing: {sorted(fresh - committed)}, "
        f"stale: {sorted(committed - fresh)}; {regenerate_hint}"
    )

    diffs = []
    for name in sorted(fresh):
        want = (tmp_path / name).read_text().splitlines(keepends=True)
        have = (COMMITTED / name).read_text().splitlines(keepends=True)
        if want != have:
            diffs.append("".join(difflib.unified_diff(have, want, f"committed/{name}", f"generated/{name}")))
    assert not diffs, f"committed stubs are out of date; {regenerate_hint}\n" + "\n".join(diffs)


def test_generated_imports_are_relative_to_the_protocol_package() -> None:
    for path in COMMITTED.iterdir():
        if path.name.endswith(GENERATED_SUFFIXES):
            assert "switchboard.v1 import" not in path.read_text(), path.name


def test_signal_request_round_trips_through_bytes() -> None:
    request = signal_pb2.SignalRequest(
        request_id=7,
        add_track=signal_pb2.AddTrackRequest(
            cid="cam",
            name="camera",
            type=models_pb2.VIDEO,
            source=models_pb2.CAMERA,
            layers=[models_pb2.SimulcastLayer(rid="f", width=1280, height=720, bitrate=2_500_000)],
        ),
    )

    decoded = signal_pb2.SignalRequest.FromString(request.SerializeToString())

    assert decoded == request
    assert decoded.WhichOneof("message") == "add_track"
    assert decoded.add_track.layers[0].rid == "f"


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"\xff\xff\xff\xff", id="truncated-varint"),
        pytest.param(b"\x0a\x10abc", id="length-past-end"),
        pytest.param(b"\x0f", id="invalid-wire-type"),
    ],
)
def test_parsing_garbage_raises_decode_error(garbage: bytes) -> None:
    with pytest.raises(DecodeError):
        signal_pb2.SignalRequest.FromString(garbage)
