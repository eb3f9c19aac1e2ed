"""Packet groups and the delay variation between them (draft-ietf-rmcat-gcc-02, 5.2).

Packets sent within one burst interval form a group, and consecutive groups
are compared: d(i) = (t(i) - t(i-1)) - (T(i) - T(i-1)), with t the arrival and
T the send time of each group's last packet. Comparing groups rather than
single packets keeps pacer and receiver bursts from looking like queueing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

# Draft 5.2: packets sent within 5 ms of a group's first packet belong to it.
BURST_INTERVAL = 0.005
# libwebrtc: a "burst" that keeps arriving for longer than this is queueing.
MAX_BURST_DURATION = 0.1
# A delay change this large is a receiver clock jump, not a queue: start over.
CLOCK_JUMP = 3.0
# Groups arriving out of order this many times running mean the history is unusable.
MAX_REORDERED_GROUPS = 3


class GroupDelta(NamedTuple):
    """The send and arrival spacing of two consecutive groups, seconds."""

    send_delta: float
    arrival_delta: float
    arrival: float  # arrival of the later group's last packet (receiver clock)


@dataclass(slots=True)
class _Group:
    first_send: float
    last_send: float
    first_arrival: float
    last_arrival: float


class InterGroupDelay:
    """Folds received packets, in arrival order, into groups; yields a delta per completed group."""

    __slots__ = ("_current", "_previous", "_reordered")

    def __init__(self) -> None:
        self._current: _Group | None = None
        self._previous: _Group | None = None
        self._reordered = 0

    def add(self, send_time: float, arrival: float) -> GroupDelta | None:
        """Adds one received packet; returns the delta when it closes a group."""
        current = self._current
        if current is None:
            self._current = _Group(send_time, send_time, arrival, arrival)
            return None
        if send_time < current.first_send:
            return None  # sent before this group: reordered, its group is gone
        if self._belongs_to(current, send_time, arrival):
            current.last_send = max(current.last_send, send_time)
            current.last_arrival = max(current.last_arrival, arrival)
            return None
        previous, self._previous = self._previous, current
        self._current = _Group(send_time, send_time, arrival, arrival)
        if previous is None:
            return None
        send_delta = current.last_send - previous.last_send
        arrival_delta = current.last_arrival - previous.last_arrival
        if abs(arrival_delta - send_delta) > CLOCK_JUMP:
            self._previous = None
            self._reordered = 0
            return None
        if arrival_delta < 0:
            self._reordered += 1
            if self._reordered >= MAX_REORDERED_GROUPS:
                self._previous = None
                self._reordered = 0
            return None
        self._reordered = 0
        return GroupDelta(send_delta, arrival_delta, current.last_arrival)

    @staticmethod
    def _belongs_to(group: _Group, send_time: float, arrival: float) -> bool:
        if send_time - group.first_send <= BURST_INTERVAL:
            return True
        send_delta = send_time - group.last_send
        if send_delta == 0:
            return True
        # Arriving faster than sent, right behind the group: a burst the
        # network (or the receiver) delivered at once, so no delay sample.
        arrival_delta = arrival - group.last_arrival
        return (
            arrival_delta < send_delta
            and arrival_delta <= BURST_INTERVAL
            and arrival - group.first_arrival < MAX_BURST_DURATION
        )
