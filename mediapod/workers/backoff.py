"""How long the supervisor waits before restarting a worker that died: doubling while it keeps crashing."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RestartBackoff:
    """Delay before each restart of one worker.

    A worker that crashes at start would otherwise be restarted in a tight
    loop (each start imports everything and touches Redis); one that ran
    for ``stable_after`` seconds before dying starts over at ``initial``.
    """

    initial: float = 0.5
    maximum: float = 10.0
    stable_after: float = 30.0
    _next: float = 0.0

    def delay(self, ran_for: float) -> float:
        """The wait before restarting a worker that died after running ``ran_for`` seconds."""
        if ran_for >= self.stable_after or self._next == 0.0:
            self._next = self.initial
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay
