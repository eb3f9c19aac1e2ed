"""The audit behind code-health item 4: each rule fires on the pattern it names, and only there."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support.assertion_audit import audit_support_module, audit_test_module


def rules(tmp_path: Path, source: str) -> list[tuple[int, str]]:
    path = tmp_path / "test_sample.py"
    path.write_text(textwrap.dedent(source))
    return [(f.line, f.rule) for f in audit_test_module(path)]


@pytest.mark.parametrize(
    "source",
    [
        'import subprocess, sys\nsubprocess.run([sys.executable, "-m", "pytest", "-q"])\n',
        'import subprocess\nsubprocess.check_output("python -m pytest -q", shell=True)\n',
        "import pytest\npytest.main([])\n",
    ],
)
def test_running_pytest_is_rerunning_a_suite(tmp_path: Path, source: str) -> None:
    assert (2, "reruns-suite") in rules(tmp_path, source)


def test_running_a_benchmark_or_a_server_is_not_rerunning_a_suite(tmp_path: Path) -> None:
    source = 'import subprocess, sys\nsubprocess.run([sys.executable, "bench/forwarding.py"])\n'
    assert rules(tmp_path, source) == []


@pytest.mark.parametrize(
    "source",
    [
        'text = open("tests/unit/sfu/test_sequencer.py").read()\n',
        'from pathlib import Path\nROOT = Path(".")\nfiles = ROOT / "tests" / "unit" / "operator"\n',
        'name = "test_rtcp.py"\n',
    ],
)
def test_naming_test_source_is_flagged(tmp_path: Path, source: str) -> None:
    found = rules(tmp_path, source)
    assert [rule for _, rule in found] == ["reads-test-source"], found


def test_a_docstring_pointing_at_a_unit_suite_is_prose_not_a_read(tmp_path: Path) -> None:
    source = 'def test_x():\n    """tests/unit/sfu/test_sequencer.py covers the rest."""\n'
    assert rules(tmp_path, source) == []


def test_product_codec_parsers_are_flagged_in_tests_and_support(tmp_path: Path) -> None:
    path = tmp_path / "helper.py"
    path.write_text("import json\nfrom mediapod.rtp.codecs import vp8_is_keyframe\nimport mediapod.rtp.codecs as c\n")
    assert [(f.line, f.rule) for f in audit_support_module(path)] == [(2, "product-parser"), (3, "product-parser")]
    path.write_text("from mediapod.rtp import packet\nfrom aiortc.codecs.vpx import VpxPayloadDescriptor\n")
    assert audit_support_module(path) == []


@pytest.mark.parametrize(
    "body",
    [
        "assert True",
        "assert x == x",
        "assert ready or True",
        "assert len(events) >= 0",
        "assert 0 <= pod.metric('m')",
        "assert len(scheduled) <= 1",
        "started = time.monotonic()\n    ended = time.monotonic()\n    assert started < ended",
        "limit = 5\n    assert limit > 3",
        "session = Session()\n    assert session is not None",
    ],
)
def test_assertions_that_cannot_fail_are_flagged(tmp_path: Path, body: str) -> None:
    source = f"import time\n\ndef test_x(x, ready, events, pod, scheduled, Session):\n    {body}\n"
    assert "tautology" in [rule for _, rule in rules(tmp_path, source)]


@pytest.mark.parametrize(
    "body",
    [
        "assert len(events) == 1",
        "assert pod.metric('m') > 0",
        "assert 1 <= len(scheduled) <= 2",
        "started = time.monotonic()\n    took = work()\n    assert took < 1",
        "limit = 5\n    assert count(x) > limit",
        "session = find()\n    assert session is not None",
        "start = time.monotonic()\n    start = time.monotonic()\n    assert start < deadline(x)",
    ],
)
def test_assertions_that_can_fail_are_not_flagged(tmp_path: Path, body: str) -> None:
    source = f"import time\n\ndef test_x(x, events, pod, scheduled, work, count, find, deadline):\n    {body}\n"
    assert rules(tmp_path, source) == []
