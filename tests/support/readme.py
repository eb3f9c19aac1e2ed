"""The README as a new user reads it: its first commands, its code blocks, the commands it quotes inline.

Tests take what the README promises from the README itself, so a promise
that changes (a renamed command, an edited snippet) is what gets tested.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def text() -> str:
    return README.read_text()


def first_commands() -> list[str]:
    """The lines of the first fenced shell block, comments dropped: what a new user runs first."""
    block = re.search(r"```(?:sh|bash|shell)?\n(.*?)```", text(), re.S)
    if block is None:
        raise AssertionError("README has no fenced command block")
    commands = [line.split(" #", 1)[0].strip() for line in block.group(1).splitlines()]
    return [c for c in commands if c and not c.startswith("#")]


def python_block_with(needle: str) -> str:
    """The first fenced Python block that contains needle."""
    for block in re.findall(r"```python\n(.*?)```", text(), re.S):
        if needle in block:
            return block
    raise AssertionError(f"README has no Python block with {needle!r}")


def inline_command(prefix: str) -> str:
    """The first inline code span that starts with prefix (a command the README tells the user to type)."""
    match = re.search(rf"`({re.escape(prefix)}[^`]*)`", text())
    if match is None:
        raise AssertionError(f"README quotes no command starting with {prefix!r}")
    return match.group(1)
