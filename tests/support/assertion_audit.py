"""Finds test code that cannot fail or judges media with the product's own parser.

A syntactic audit (ast), so it is exact about what it flags and says nothing
about what it cannot see; each rule is a pattern a review found in this
repository's acceptance tests:

- ``reruns-suite``: a subprocess (or ``pytest.main``) that runs pytest: the
  acceptance test then proves only that another suite exists and passes.
- ``reads-test-source``: a test naming another test file or folder
  (``tests/unit/...``, ``test_x.py``), which is how source gets grepped for
  words; a word in a comment passes such a check.
- ``product-parser``: importing ``mediapod.rtp.codecs`` to judge media: the
  product would be graded by its own parser.
- ``tautology``: ``assert <constant>``, ``or True``, an expression compared
  with itself, ``>= 0`` / ``0 <=`` (no count is negative), ``len(x) <= n``
  (true for an empty x), comparing only values the test set itself
  (constants, clock readings), and ``assert x is not None`` right after
  ``x = Constructor(...)`` or a literal.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PRODUCT_PARSERS = ("mediapod.rtp.codecs",)
_SUBPROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output", "system", "create_subprocess_exec"}
_TEST_SOURCE = re.compile(r"(^|/)tests/(unit|integration|acceptance|k8s)(/|$)|(^|/)test_\w+\.py$")
_CLOCKS = {"monotonic", "time", "perf_counter", "monotonic_ns", "time_ns"}


@dataclass(frozen=True)
class Finding:
    """One flagged line: where, which rule, and why it cannot catch a regression."""

    path: Path
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.message}"


def audit_test_module(path: Path) -> list[Finding]:
    """Every rule, for a module of acceptance tests."""
    tree = ast.parse(path.read_text(), filename=str(path))
    findings = [*_product_parsers(path, tree), *_reruns(path, tree), *_test_source(path, tree)]
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            findings += _tautologies(path, function)
    # A nested expression (ROOT / "tests" / "unit" / "x") is one finding, not one per level.
    unique = {(f.line, f.rule): f for f in reversed(findings)}
    return sorted(unique.values(), key=lambda f: f.line)


def audit_support_module(path: Path) -> list[Finding]:
    """The rule that applies to helpers the tests judge media with: no product parsers."""
    return list(_product_parsers(path, ast.parse(path.read_text(), filename=str(path))))


def _product_parsers(path: Path, tree: ast.Module) -> Iterator[Finding]:
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        if any(n == p or n.startswith(p + ".") for n in names for p in PRODUCT_PARSERS):
            yield Finding(path, node.lineno, "product-parser", "judges media with the product's own codec parser")


def _strings(node: ast.AST) -> Iterator[str]:
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            yield child.value


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _reruns(path: Path, tree: ast.Module) -> Iterator[Finding]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        is_pytest_main = name == "main" and isinstance(node.func, ast.Attribute) and ast.unparse(node.func.value) == "pytest"
        runs_pytest = name in _SUBPROCESS_CALLS and any("pytest" in s.split() or s == "pytest" for s in _strings(node))
        if is_pytest_main or runs_pytest:
            yield Finding(path, node.lineno, "reruns-suite", "runs pytest: proves only that another suite passes")


def _docstrings(tree: ast.Module) -> set[int]:
    """Ids of docstring nodes: prose may point a reader at a unit suite."""
    documented = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))]
    return {
        id(n.body[0].value) for n in documented
        if n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)
    }


def _test_source(path: Path, tree: ast.Module) -> Iterator[Finding]:
    prose = _docstrings(tree)
    for node in ast.walk(tree):
        if id(node) in prose:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _TEST_SOURCE.search(node.value):
            yield Finding(path, node.lineno, "reads-test-source", f"names test source {node.value!r}")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            parts = [s for s in _strings(node)]
            if "tests" in parts and any(p in ("unit", "integration", "acceptance", "k8s") for p in parts):
                yield Finding(path, node.lineno, "reads-test-source", f"names test source {ast.unparse(node)}")


def _set_by_the_test(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names assigned exactly once in the function, from a constant or a clock reading."""
    assigned: dict[str, list[ast.expr]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        assigned.setdefault(name.id, []).append(node.value if isinstance(target, ast.Name) else target)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.NamedExpr)):
            target = node.target
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    assigned.setdefault(name.id, []).extend([target, target])  # never "set once"

    def fixed(value: ast.expr) -> bool:
        if isinstance(value, ast.Constant):
            return True
        return isinstance(value, ast.Call) and not value.args and _call_name(value) in _CLOCKS and (
            isinstance(value.func, ast.Attribute) and ast.unparse(value.func.value) == "time"
        )

    return {name for name, values in assigned.items() if len(values) == 1 and fixed(values[0])}


def _tautologies(path: Path, function: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[Finding]:
    fixed = _set_by_the_test(function)
    for statements in _blocks(function):
        for previous, statement in zip([None, *statements], statements):
            if isinstance(statement, ast.Assert):
                for message in _why_it_cannot_fail(statement.test, fixed, previous):
                    yield Finding(path, statement.lineno, "tautology", f"{ast.unparse(statement.test)}: {message}")


def _blocks(function: ast.AST) -> Iterator[list[ast.stmt]]:
    for node in ast.walk(function):
        for name in ("body", "orelse", "finalbody"):
            block = getattr(node, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield block


def _why_it_cannot_fail(test: ast.expr, fixed: set[str], previous: ast.stmt | None) -> Iterator[str]:
    if isinstance(test, ast.Constant):
        yield "a constant"
    for node in ast.walk(test):
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            if any(isinstance(v, ast.Constant) and v.value for v in node.values):
                yield "'or' with a true constant"
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for (left, op, right) in zip(operands, node.ops, operands[1:]):
            if ast.dump(left) == ast.dump(right):
                yield "compares an expression with itself"
            if isinstance(op, ast.GtE) and _is_zero(right) or isinstance(op, ast.LtE) and _is_zero(left):
                yield "nothing counted is negative"
            lower_bound_first = left is not node.left  # as in 1 <= len(x) <= 2
            if isinstance(op, (ast.LtE, ast.Lt)) and _is_len(left) and isinstance(right, ast.Constant) and not lower_bound_first:
                yield "an upper bound alone holds for an empty collection"
        names = [o for o in operands if not isinstance(o, ast.Constant)]
        if names and all(isinstance(o, ast.Name) and o.id in fixed for o in names):
            yield "compares only values the test set itself"
    if (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and [type(o) for o in test.ops] == [ast.IsNot]
        and _is_none(test.comparators[0])
        and isinstance(previous, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == test.left.id for t in previous.targets)
        and _never_none(previous.value)
    ):
        yield "the line before assigned something that is never None"


def _is_zero(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value == 0 and not isinstance(node.value, bool)


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _is_len(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"


def _never_none(value: ast.expr) -> bool:
    if isinstance(value, (ast.List, ast.Dict, ast.Set, ast.Tuple, ast.JoinedStr, ast.ListComp, ast.DictComp, ast.SetComp)):
        return True
    if isinstance(value, ast.Constant):
        return value.value is not None
    if isinstance(value, ast.Call):
        name = _call_name(value)
        return name[:1].isupper()  # a constructor
    return False
