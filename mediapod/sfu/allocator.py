"""StreamAllocator: which simulcast layer each video track of one subscriber gets.

One allocator per subscriber PeerConnection. Given the tracks it receives,
their measured layer bitrates and the bandwidth estimate, it picks a spatial
layer per video track (or pauses it) and says when to probe for more. Pure:
time is passed in, nothing is sent, the same inputs give the same outputs.

Allocation, on every ``allocate`` call:

1. Audio comes off the top: its bitrate is subtracted from the estimate and it
   is never decided on (never paused, never listed in allocations).
2. Video tracks are served in priority order, higher ``priority`` first
   (``TrackPriority.SCREENSHARE`` before ``CAMERA``); among equals the earlier
   subscription (lower ``order``) first, then the key, so ties are
   deterministic. Each gets the highest layer that fits what is left; a track
   whose lowest layer does not fit is paused. So under pressure the lowest
   priority track is downgraded and then paused first, and when bandwidth
   returns the highest priority one is upgraded or resumed first.
3. Hysteresis: keeping or lowering a layer needs the running sum to fit the
   estimate; raising it (resume included) needs the sum to fit the estimate
   divided by ``UP_SWITCH_HEADROOM``, unless a probe just confirmed the
   bandwidth. Down-switches are immediate, up-switches wait for margin.

A track's wish caps its layer: ``max_layer`` (-1 = disabled), a muted track
and a track whose publisher sends no layer take no budget and are never
deficient. A track is *deficient* when bandwidth holds it below the layer it
wants (its wish, limited to the layers being received).

State machine (a probe in flight is a sub-state of DEFICIENT):

=============  ==========================================  =============  ====================================
state          event / condition                           next state     what happens
=============  ==========================================  =============  ====================================
STABLE         allocate; every video track at its wish     STABLE         ups/downs for wish, mute, publisher
STABLE         allocate; some track held below its wish    DEFICIENT      lowest priority downgraded/paused;
               (estimate dropped, track added, wish                       first probe after settle_s
               raised, unmute)
DEFICIENT      allocate; still deficient, no probe         DEFICIENT +    ProbeRequest returned, goal = what
               running, estimate not lowered for           probing        the highest-priority deficient
               settle_s, backoff elapsed                                  track's next layer needs x headroom
probing        on_probe_finished, estimate >= goal         DEFICIENT      backoff reset; the next allocate
                                                                          upgrades (reason "probe")
probing        on_probe_finished failed, or no report      DEFICIENT      next probe waits twice as long as
               by deadline                                                the last wait: 2, 4, 8, 8 s
DEFICIENT      allocate; nobody held below its wish        STABLE         highest priority resumed first;
               (estimate rose past headroom, probe                        probe backoff reset
               confirmed, wish lowered, track removed
               or muted)
=============  ==========================================  =============  ====================================

``next_check_in(now)`` tells the caller when to run ``allocate`` again even if
no input changed: 0.5 s while DEFICIENT or probing (to start probes and act on
their results promptly), 5 s while STABLE (nothing to do but notice drift).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum, IntEnum
from typing import Literal, get_args

from mediapod.sfu.probe_controller import ProbeController, ProbeRequest

# 20 %: wider than the ~10 % wobble of REMB/TWCC estimates between feedback
# reports (so an estimate hovering at the need does not flip a layer up and
# down), narrower than the 2-4x spacing of simulcast layers (so an upgrade
# that would really fit is not withheld for long).
UP_SWITCH_HEADROOM = 1.2
STABLE_CHECK_INTERVAL_S = 5.0
DEFICIENT_CHECK_INTERVAL_S = 0.5

PAUSED = -1

ChangeReason = Literal["bandwidth", "probe", "subscriber", "publisher", "mute"]
CHANGE_REASONS: tuple[ChangeReason, ...] = get_args(ChangeReason)
# What holds a track where it is; "none" means it gets everything it could use.
Limit = Literal["none", "bandwidth", "subscriber", "publisher", "mute"]


class TrackPriority(IntEnum):
    """Named priorities; any int works, higher is served first."""

    CAMERA = 1  # and any other video
    SCREENSHARE = 2


class AllocatorState(Enum):
    """STABLE: every video track gets what it wants. DEFICIENT: bandwidth holds one back."""

    STABLE = "stable"
    DEFICIENT = "deficient"


@dataclass(frozen=True, slots=True)
class AllocatorTrack:
    """One track the subscriber receives, as the allocator sees it."""

    key: str  # track sid
    kind: str  # "audio" | "video"
    priority: int  # higher is served first; see TrackPriority
    order: int  # subscription order: among equal priority, later = served later
    layer_bitrates: tuple[float, ...]  # measured bps per spatial layer, lowest first; 0 = not received now
    max_layer: int  # subscriber's wish: highest spatial layer allowed, -1 = disabled
    muted: bool = False


@dataclass(frozen=True, slots=True)
class TrackAllocation:
    """The decision for one video track."""

    layer: int  # spatial layer to forward, PAUSED (-1) = nothing
    bitrate: float  # budget it uses, bps
    desired_layer: int  # what it would get with unlimited bandwidth
    limited_by: Limit

    @property
    def deficient(self) -> bool:
        return self.limited_by == "bandwidth"

    @property
    def paused(self) -> bool:
        """Paused for lack of bandwidth (not muted, disabled, or unpublished)."""
        return self.layer == PAUSED and self.deficient


@dataclass(frozen=True, slots=True)
class LayerChange:
    """A track's layer moved; reason is a metric label from CHANGE_REASONS."""

    key: str
    from_layer: int
    to_layer: int
    reason: ChangeReason


@dataclass(frozen=True, slots=True)
class AllocationResult:
    """Everything one ``allocate`` call decided."""

    state: AllocatorState
    allocations: Mapping[str, TrackAllocation]  # video tracks only
    changes: tuple[LayerChange, ...]
    allocated_bps: float  # audio + allocated video
    probe: ProbeRequest | None  # a probe to start now, else None

    @property
    def paused(self) -> frozenset[str]:
        return frozenset(key for key, allocation in self.allocations.items() if allocation.paused)


class StreamAllocator:
    """Decides layers, pauses and probes for one subscriber; see the module docstring."""

    __slots__ = (
        "_allocations",
        "_deficient_check_s",
        "_estimate",
        "_headroom",
        "_probe_confirmed_bps",
        "_probes",
        "_stable_check_s",
        "_state",
    )

    def __init__(
        self,
        probe_controller: ProbeController | None = None,
        *,
        up_switch_headroom: float = UP_SWITCH_HEADROOM,
        stable_check_interval_s: float = STABLE_CHECK_INTERVAL_S,
        deficient_check_interval_s: float = DEFICIENT_CHECK_INTERVAL_S,
    ) -> None:
        self._probes = probe_controller if probe_controller is not None else ProbeController()
        self._headroom = up_switch_headroom
        self._stable_check_s = stable_check_interval_s
        self._deficient_check_s = deficient_check_interval_s
        self._allocations: dict[str, TrackAllocation] = {}
        self._state = AllocatorState.STABLE
        self._estimate = 0.0
        self._probe_confirmed_bps: float | None = None

    @property
    def state(self) -> AllocatorState:
        return self._state

    @property
    def probing(self) -> bool:
        return self._probes.active is not None

    def allocate(self, tracks: Iterable[AllocatorTrack], estimate_bps: float, now: float) -> AllocationResult:
        """Decide every video track's layer for this estimate; maybe start a probe."""
        estimate = self._accept_estimate(estimate_bps)
        self._probes.observe_estimate(estimate, now)
        confirmed, self._probe_confirmed_bps = self._probe_confirmed_bps, None
        # A probe that reached its goal vouches for its estimate even if the
        # estimate has sagged a little since: upgrades then need no headroom.
        upgrade_budget = min(estimate, max(estimate, confirmed or 0.0) / self._headroom)

        audio, video = _split(tracks)
        used = sum(_audio_bitrate(track) for track in audio)
        allocations: dict[str, TrackAllocation] = {}
        changes: list[LayerChange] = []
        for track in video:
            previous = self._allocations.get(track.key)
            previous_layer = previous.layer if previous is not None else PAUSED
            allocation = _allocate_track(track, previous_layer, used, estimate, upgrade_budget)
            used += allocation.bitrate
            allocations[track.key] = allocation
            if allocation.layer != previous_layer:
                reason = _change_reason(previous, allocation, after_probe=confirmed is not None)
                changes.append(LayerChange(track.key, previous_layer, allocation.layer, reason))
        self._allocations = allocations
        self._set_state(any(a.deficient for a in allocations.values()), now)

        probe = None
        if self._state is AllocatorState.DEFICIENT:
            target = self._probe_target(video, allocations, used)
            probe = self._probes.maybe_start(target, used, estimate, now) if target is not None else None
        return AllocationResult(self._state, allocations, tuple(changes), used, probe)

    def on_probe_finished(self, succeeded: bool, estimate_bps: float, now: float) -> None:
        """The caller's report on the probe it ran: succeeded = ran to the end without congestion.

        It counts as a success only if the estimate also reached the goal; then
        the next ``allocate`` may upgrade on that estimate without headroom.
        """
        estimate = self._accept_estimate(estimate_bps)
        if self._probes.finish(succeeded, estimate, now):
            self._probe_confirmed_bps = estimate

    def next_check_in(self, now: float) -> float:
        """Seconds until the caller should run ``allocate`` again even if nothing changed."""
        if self._state is AllocatorState.STABLE and not self.probing:
            return self._stable_check_s
        pending = self._probes.next_event_at() - now
        return min(self._deficient_check_s, pending) if pending > 0 else self._deficient_check_s

    def _accept_estimate(self, estimate_bps: float) -> float:
        # NaN or infinity is a broken estimator, not news: keep the last good
        # value rather than pausing everything. Negative means nothing fits.
        if math.isfinite(estimate_bps):
            self._estimate = max(0.0, estimate_bps)
        return self._estimate

    def _set_state(self, deficient: bool, now: float) -> None:
        state = AllocatorState.DEFICIENT if deficient else AllocatorState.STABLE
        if state is self._state:
            return
        self._state = state
        if deficient:
            self._probes.on_deficient(now)
        else:
            self._probes.on_stable()

    def _probe_target(
        self, video: list[AllocatorTrack], allocations: Mapping[str, TrackAllocation], used: float
    ) -> float | None:
        """Estimate that would let the highest-priority deficient track take its next layer, with headroom."""
        for track in video:
            allocation = allocations[track.key]
            if not allocation.deficient:
                continue
            rates = track.layer_bitrates
            step = next(layer for layer in range(allocation.layer + 1, allocation.desired_layer + 1) if rates[layer] > 0)
            return (used - allocation.bitrate + rates[step]) * self._headroom
        return None


def _split(tracks: Iterable[AllocatorTrack]) -> tuple[list[AllocatorTrack], list[AllocatorTrack]]:
    """Audio and video (priority order) tracks, bitrates cleaned, first of any duplicate key kept."""
    seen: set[str] = set()
    audio: list[AllocatorTrack] = []
    video: list[AllocatorTrack] = []
    for track in tracks:
        if track.key in seen:
            continue
        seen.add(track.key)
        clean = replace(track, layer_bitrates=tuple(_bps(rate) for rate in track.layer_bitrates))
        (audio if track.kind == "audio" else video).append(clean)
    video.sort(key=lambda track: (-track.priority, track.order, track.key))
    return audio, video


def _bps(rate: float) -> float:
    """A measured bitrate; anything not a positive finite number means "not received"."""
    return rate if math.isfinite(rate) and rate > 0 else 0.0


def _audio_bitrate(track: AllocatorTrack) -> float:
    if track.muted or track.max_layer < 0:
        return 0.0
    return max(track.layer_bitrates, default=0.0)


def _allocate_track(
    track: AllocatorTrack, previous_layer: int, used: float, estimate: float, upgrade_budget: float
) -> TrackAllocation:
    """Highest layer that fits after ``used``; layers above the previous one must fit ``upgrade_budget``."""
    if track.muted:
        return TrackAllocation(PAUSED, 0.0, PAUSED, "mute")
    if track.max_layer < 0:
        return TrackAllocation(PAUSED, 0.0, PAUSED, "subscriber")
    rates = track.layer_bitrates
    wish = min(track.max_layer, len(rates) - 1)
    selectable = [layer for layer in range(wish + 1) if rates[layer] > 0]
    desired = selectable[-1] if selectable else PAUSED
    chosen = PAUSED
    for layer in selectable:
        limit = estimate if layer <= previous_layer else upgrade_budget
        if used + rates[layer] <= limit:
            chosen = layer
    limited_by: Limit
    if chosen < desired:
        limited_by = "bandwidth"
    elif desired < wish or desired == PAUSED:
        limited_by = "publisher"
    elif wish < len(rates) - 1:
        limited_by = "subscriber"
    else:
        limited_by = "none"
    return TrackAllocation(chosen, rates[chosen] if chosen != PAUSED else 0.0, desired, limited_by)


def _change_reason(previous: TrackAllocation | None, current: TrackAllocation, *, after_probe: bool) -> ChangeReason:
    """Why a layer moved. Down: whatever limits it now. Up: whatever limited it before."""
    if previous is None:
        return "subscriber"  # a new subscription starting
    if current.layer < previous.layer:
        cause = current.limited_by
    else:
        cause = previous.limited_by
        if cause == "bandwidth" and after_probe:
            return "probe"
    # "none" on either side means the publisher's set of layers changed shape.
    return "publisher" if cause == "none" else cause
