#!/usr/bin/env python3
"""Generate the committed protobuf/gRPC stubs in ``mediapod/protocol/``.

The ``.proto`` files under ``proto/`` are the wire contract; the stubs are
derived from them and committed so that installing Switchboard needs no
protoc. ``tests/unit/test_protocol_stubs.py`` runs this script into a
temporary directory and fails when the committed stubs have drifted.

protoc names modules after their proto package (``switchboard.v1``), but the
stubs live flat inside ``mediapod.protocol``, so the generated absolute
imports are rewritten into relative ones.

Usage: ``python scripts/gen_proto.py [--out DIR]``
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "proto"
PROTO_PACKAGE_DIR = Path("switchboard") / "v1"
DEFAULT_OUT = REPO_ROOT / "mediapod" / "protocol"

# Every file this script writes matches one of these; anything else in the
# output directory (``__init__.py``) is left alone.
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")

# protoc writes `from switchboard.v1 import models_pb2 as ...` in .py, .pyi
# and _grpc.py files alike.
_PACKAGE_IMPORT = re.compile(r"^from switchboard\.v1 import ", re.MULTILINE)


def generate(out_dir: Path) -> list[Path]:
    """Compile every proto into ``out_dir`` and return the files written.

    Generated files that no longer have a source proto are deleted, so a
    removed ``.proto`` does not leave a stale importable module behind.
    """
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PROTO_PACKAGE_DIR).glob("*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files found in {PROTO_ROOT / PROTO_PACKAGE_DIR}")

    with tempfile.TemporaryDirectory(prefix="gen_proto_") as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {', '.join(protos)}")

        out_dir.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for src in sorted((Path(tmp) / PROTO_PACKAGE_DIR).iterdir()):
            dst = out_dir / src.name
            dst.write_text(_PACKAGE_IMPORT.sub("from . import ", src.read_text()))
            written.append(dst)

    for stale in generated_files(out_dir):
        if stale not in written:
            stale.unlink()
    return written


def generated_files(directory: Path) -> list[Path]:
    """Return the files in ``directory`` that this script owns, sorted."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(GENERATED_SUFFIXES))


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description="Generate mediapod/protocol stubs from proto/.")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output directory (default: {DEFAULT_OUT.relative_to(REPO_ROOT)})",
    )
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
