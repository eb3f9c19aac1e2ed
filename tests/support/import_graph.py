"""The import graph of the product's own modules, read from source with ``ast``.

Every import statement counts, wherever it stands: module level, inside a
function, or under ``if TYPE_CHECKING:``; a cycle that only type checkers
follow is still two modules that cannot be understood one without the other.
"""

from __future__ import annotations

import ast
from pathlib import Path


def module_files(root: Path, package_dirs: dict[str, str]) -> dict[str, Path]:
    """Module name -> file, for each package (import name -> folder under root)."""
    modules: dict[str, Path] = {}
    for package, folder in package_dirs.items():
        base = root / folder
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def _imported_modules(tree: ast.AST, module: str, is_package: bool, known: dict[str, Path]) -> set[str]:
    """The product modules an AST imports; ``from p import n`` means module ``p.n`` if there is one, else ``p``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                drop = node.level - 1 if is_package else node.level
                anchor = anchor[: len(anchor) - drop] if drop else anchor
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            for alias in node.names:
                name = f"{base}.{alias.name}"
                if name in known:
                    found.add(name)
                elif base in known:
                    found.add(base)
    found.discard(module)
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the product modules it imports (never itself)."""
    return {
        module: _imported_modules(ast.parse(path.read_text(), filename=str(path)), module, path.name == "__init__.py", modules)
        for module, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)
