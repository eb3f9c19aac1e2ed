"""The import-graph walker that guards against import cycles, on small made-up packages."""

from __future__ import annotations

from pathlib import Path

from tests.support.import_graph import cycles, import_graph, module_files


def write_package(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return module_files(root, {"pkg": "pkg"})


def test_a_type_checking_import_closes_a_cycle(tmp_path: Path) -> None:
    modules = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from pkg.b import B\n",
            "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\n",
        },
    )
    assert cycles(import_graph(modules)) == [["pkg.a", "pkg.b"]]


def test_relative_and_function_level_imports_count(tmp_path: Path) -> None:
    modules = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "sub/__init__.py": "",
            "sub/x.py": "def f():\n    from .. import c\n",
            "c.py": "from .sub import x\n",
        },
    )
    graph = import_graph(modules)
    assert graph["pkg.sub.x"] == {"pkg.c"}
    assert graph["pkg.c"] == {"pkg.sub.x"}
    assert cycles(graph) == [["pkg.c", "pkg.sub.x"]]


def test_a_chain_without_a_way_back_is_no_cycle(tmp_path: Path) -> None:
    modules = write_package(
        tmp_path,
        {"__init__.py": "", "a.py": "import pkg.b\n", "b.py": "import pkg.c\n", "c.py": "import json\n"},
    )
    assert cycles(import_graph(modules)) == []
