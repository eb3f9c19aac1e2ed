"""One subscriber PeerConnection's congestion control: feedback in, layer decisions and paced packets out.

The pure parts decide (``bwe.BandwidthEstimator``: what the link carries;
``StreamAllocator``: which layer each track gets and when to probe); this
module wires them to the live objects and the clock:

- every packet to the subscriber leaves through the :class:`Pacer`, which
  stamps its transport-wide sequence number and remembers it in the
  :class:`SendHistory`;
- the subscriber's TWCC feedback is matched to that history and fed to the
  estimator (REMB and receiver-report loss too);
- the allocator runs when it asks to (``next_check_in``) and at once when
  the estimate no longer covers what is allocated; its decisions go to each
  track's Forwarder (allocate or pause) and set the pacing rate;
- a probe the allocator starts is padding on a video track's RTX stream at
  the rate it asks for; the packets it put on the wire are measured when
  their feedback is in, and the result goes back to the estimator and the
  allocator.

Without congestion control (nothing negotiated) the allocator still runs on
an unlimited estimate, so every subscriber gets the best layer that is
actually being received rather than waiting for one that is not.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from mediapod.metrics import MediaCounters
from mediapod.rtp.errors import MalformedPacket
from mediapod.rtp.twcc import TwccFeedback
from mediapod.sfu.allocator import AllocatorState, AllocatorTrack, StreamAllocator
from mediapod.sfu.bwe.estimator import BandwidthEstimator
from mediapod.sfu.bwe.feedback import PacketResult
from mediapod.sfu.bwe.trendline import BandwidthSignal
from mediapod.sfu.downtrack import DownTrack
from mediapod.sfu.forwarder import Forwarder
from mediapod.sfu.pacer import Pacer
from mediapod.sfu.probe_controller import ProbeRequest
from mediapod.sfu.receiver import TrackReceiver
from mediapod.sfu.send_history import SendHistory

log = logging.getLogger(__name__)

# Packets leave at up to this multiple of the estimate: media is bursty at
# the frame scale, and a pacer at exactly the link rate would hold every
# keyframe back for its whole transmission time.
PACING_FACTOR = 1.5
UNLIMITED_BPS = 1e12  # the estimate when congestion control is off
# Where a subscriber's estimate starts: a middle simulcast layer and audio.
# Too high, and a slow link is flooded until feedback brings it down (at
# 10 Mbit/s a 300 kbit/s subscriber took longer than 5 s to settle); too low,
# and a single-layer camera above it stays paused until probes have climbed
# to it (a 5 Mbit/s camera on a free link: several seconds).
INITIAL_ESTIMATE_BPS = 1_000_000.0
PROBE_TICK = 0.01  # padding is sent in 10 ms portions
PADDING_PACKET = 255  # bytes of RTP padding per probe packet (the count is one byte)
PROBE_FEEDBACK_WAIT = 0.4  # after a probe ends, wait this long for its feedback
SENT_RATE_WINDOW = 1.0  # the sent-bitrate gauge averages over this
PROBE_GOAL_TOLERANCE = 0.9


@dataclass(slots=True)
class _Track:
    kind: str
    priority: int
    order: int
    forwarder: Forwarder
    receivers: tuple[TrackReceiver, ...]
    downtrack: DownTrack


@dataclass(slots=True)
class _ProbeMeter:
    """What the packets sent during a probe did, as their feedback arrives."""

    probe: ProbeRequest
    sent_bytes: int = 0
    first_sent: float = math.inf
    last_sent: float = -math.inf
    received_bytes: int = 0
    first_arrival: float = math.inf
    last_arrival: float = -math.inf
    last_size: int = 0
    lost: int = 0

    def add(self, result: PacketResult) -> None:
        probe = self.probe
        if not probe.started_at <= result.send_time <= probe.ends_at:
            return
        self.sent_bytes += result.size
        self.first_sent = min(self.first_sent, result.send_time)
        self.last_sent = max(self.last_sent, result.send_time)
        if result.arrival is None:
            self.lost += 1
            return
        self.received_bytes += result.size
        self.first_arrival = min(self.first_arrival, result.arrival)
        if result.arrival >= self.last_arrival:
            self.last_arrival, self.last_size = result.arrival, result.size

    def rate_bps(self) -> float:
        """The rate the link carried during the probe: the lower of what was sent and what arrived."""
        receive_span = self.last_arrival - self.first_arrival
        send_span = self.last_sent - self.first_sent
        if receive_span <= 0 or send_span <= 0:
            return 0.0
        received = 8 * (self.received_bytes - self.last_size) / receive_span
        return min(received, 8 * self.sent_bytes / send_span)


class BandwidthController:
    """Estimator, allocator, pacer and prober of one subscriber PeerConnection; see the module docstring."""

    def __init__(self, send_rtp: Callable[[bytes], None], counters: MediaCounters, congestion_control: bool) -> None:
        self._counters = counters
        self._congestion_control = congestion_control
        self.history = SendHistory() if congestion_control else None
        self.estimator = BandwidthEstimator(INITIAL_ESTIMATE_BPS) if congestion_control else None
        self.pacer = Pacer(send_rtp, self.history, self.estimate_bps * PACING_FACTOR)
        self.allocator = StreamAllocator()
        self._tracks: dict[str, _Track] = {}
        self._order = 0
        self._allocated_bps = 0.0
        self.paused_tracks = 0
        self._timer: asyncio.TimerHandle | None = None
        self._probe: _ProbeMeter | None = None
        self._probe_timer: asyncio.TimerHandle | None = None
        self._probe_sent_before = 0  # the pacer's byte count when the current probe started
        self._closed = False

    @property
    def estimate_bps(self) -> float:
        return self.estimator.estimate_bps if self.estimator is not None else UNLIMITED_BPS

    @property
    def state(self) -> AllocatorState:
        return self.allocator.state

    @property
    def target_bps(self) -> float:
        """What the allocation expects to send (audio and video)."""
        return self._allocated_bps

    def sent_bps(self, now: float) -> float:
        """What actually left over the last second, from the pacer's count."""
        return self.pacer.sent_bps(now, SENT_RATE_WINDOW)

    # -- tracks -----------------------------------------------------------------

    def add_track(
        self, key: str, kind: str, priority: int, forwarder: Forwarder, receivers: tuple[TrackReceiver, ...], downtrack: DownTrack
    ) -> None:
        self._order += 1
        self._tracks[key] = _Track(kind, priority, self._order, forwarder, receivers, downtrack)
        self._reallocate_soon()

    def remove_track(self, key: str) -> None:
        if self._tracks.pop(key, None) is not None:
            self._reallocate_soon()

    def wish_changed(self) -> None:
        """A subscriber's UpdateTrackSettings moved a wish: decide again now."""
        self._reallocate_soon()

    # -- feedback ---------------------------------------------------------------

    def set_transport_feedback(self, negotiated: bool) -> None:
        """Whether the subscriber's answer took transport-wide sequence numbers.

        Without them no TWCC feedback will come: until a REMB does, the
        estimate is unlimited rather than stuck at its starting guess.
        """
        if not self._congestion_control:
            return
        if negotiated and self.history is None:
            self.history = self.pacer.history = SendHistory()
            self.estimator = self.estimator or BandwidthEstimator(INITIAL_ESTIMATE_BPS)
        elif not negotiated and self.history is not None:
            self.history = self.pacer.history = None
            self.estimator = None
        self._reallocate_soon()

    def on_transport_feedback(self, raw: bytes) -> bool:
        """A TWCC feedback FCI from the subscriber; False if it does not parse."""
        try:
            feedback = TwccFeedback.parse(raw)
        except MalformedPacket:
            return False
        self._counters.congestion_feedback[("twcc", "received")] += 1
        if self.history is None or self.estimator is None:
            return True
        results = self.history.results(feedback)
        now = time.monotonic()
        probe = self._probe
        if probe is not None:
            for result in results:
                probe.add(result)
        self.estimator.on_packet_results(results, now)
        self._after_estimate(now)
        return True

    def on_remb(self, bitrate_bps: float) -> None:
        self._counters.congestion_feedback[("remb", "received")] += 1
        if self.estimator is None and self._congestion_control:
            self.estimator = BandwidthEstimator(INITIAL_ESTIMATE_BPS)
        if self.estimator is not None:
            now = time.monotonic()
            self.estimator.on_remb(bitrate_bps, now)
            self._after_estimate(now)

    def on_receiver_loss(self, fraction_lost: float) -> None:
        if self.estimator is not None:
            now = time.monotonic()
            self.estimator.on_receiver_loss(fraction_lost, now)
            self._after_estimate(now)

    def _after_estimate(self, now: float) -> None:
        estimate = self.estimate_bps
        self.pacer.set_rate(max(estimate, self._allocated_bps) * PACING_FACTOR)
        if estimate < self._allocated_bps:
            self._allocate()  # what is allocated no longer fits: down now, not at the next check

    # -- allocation ---------------------------------------------------------------

    def _reallocate_soon(self) -> None:
        if self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_soon(self._allocate)  # type: ignore[assignment]

    def _allocate(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._closed:
            return
        now = time.monotonic()
        tracks = [
            AllocatorTrack(
                key=key,
                kind=track.kind,
                priority=track.priority,
                order=track.order,
                layer_bitrates=tuple(receiver.bitrate_bps(now) for receiver in track.receivers),
                max_layer=track.forwarder.wanted_spatial,
                muted=track.receivers[0].muted,
            )
            for key, track in self._tracks.items()
        ]
        estimate = self.estimate_bps
        result = self.allocator.allocate(tracks, estimate, now)
        self._allocated_bps = result.allocated_bps
        paused = 0
        for key, allocation in result.allocations.items():
            forwarder = self._tracks[key].forwarder
            if allocation.paused:
                paused += 1
                if not forwarder.paused:
                    forwarder.pause()
            elif allocation.layer >= 0:
                forwarder.allocate(allocation.layer)
        self.paused_tracks = paused
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "allocate: estimate %.0f state %s allocated %.0f layers %s probe %s",
                estimate, result.state.name, result.allocated_bps,
                {key[-4:]: (a.layer, a.limited_by) for key, a in result.allocations.items()}, result.probe,
            )
        if self.estimator is not None:
            self._observe_estimate(estimate)
        self.pacer.set_rate(max(estimate, self._allocated_bps) * PACING_FACTOR)
        if result.probe is not None and self.estimator is not None:
            self._start_probe(result.probe)
        self._timer = asyncio.get_running_loop().call_later(self.allocator.next_check_in(now), self._allocate)

    def _observe_estimate(self, estimate: float) -> None:
        counters = self._counters
        counters.bwe_estimate_buckets[bisect.bisect_left(counters.bwe_estimate_bounds, estimate)] += 1
        counters.bwe_estimate_count += 1
        counters.bwe_estimate_sum += estimate

    # -- probing ------------------------------------------------------------------

    def _padding_track(self) -> DownTrack | None:
        """A negotiated video DownTrack with an RTX stream to carry padding (paused or not: probing is how it resumes)."""
        for track in self._tracks.values():
            downtrack = track.downtrack
            if track.kind == "video" and downtrack.rtx_payload_type is not None and downtrack.bound:
                return downtrack
        return None

    def _start_probe(self, probe: ProbeRequest) -> None:
        if self._padding_track() is None:
            self.allocator.on_probe_finished(False, self.estimate_bps, time.monotonic())
            return
        self._probe = _ProbeMeter(probe)
        self._probe_sent_before = self.pacer.bytes_sent
        self.pacer.set_rate(probe.goal_bps * PACING_FACTOR)
        self._probe_tick()

    def _probe_tick(self) -> None:
        """Pad up to the probe's goal: whatever media left since the start, padding makes up the rest.

        Closing the loop on what was actually sent (not on what the
        allocator expected media to use) puts the goal's rate on the wire.
        """
        self._probe_timer = None
        meter = self._probe
        if meter is None or self._closed:
            return
        now = time.monotonic()
        probe = meter.probe
        if now >= probe.ends_at:
            self._probe_timer = asyncio.get_running_loop().call_later(PROBE_FEEDBACK_WAIT, self._finish_probe)
            return
        downtrack = self._padding_track()
        if downtrack is not None:
            owed = probe.goal_bps / 8 * (now - probe.started_at + PROBE_TICK) - (self.pacer.bytes_sent - self._probe_sent_before)
            while owed >= PADDING_PACKET:
                packet = downtrack.padding_packet(PADDING_PACKET)
                owed -= len(packet)
                self._counters.probe_bytes += len(packet)
                self.pacer.send_now(packet)
        self._probe_timer = asyncio.get_running_loop().call_later(PROBE_TICK, self._probe_tick)

    def _finish_probe(self) -> None:
        self._probe_timer = None
        meter, self._probe = self._probe, None
        if meter is None or self.estimator is None or self._closed:
            return
        now = time.monotonic()
        rate = meter.rate_bps()
        clean = meter.lost == 0 and self.estimator.signal is not BandwidthSignal.OVERUSING
        if clean and rate > 0:
            self.estimator.on_probe_result(rate, now)
        # A rate measured over a few hundred milliseconds of arrivals is a
        # few percent off either way: within PROBE_GOAL_TOLERANCE of the goal
        # the link carried it.
        reached = clean and rate >= PROBE_GOAL_TOLERANCE * meter.probe.goal_bps
        log.debug(
            "probe to %.0f: measured %.0f (sent %d B over %.3f s, received %d B over %.3f s), lost %d, clean %s",
            meter.probe.goal_bps, rate, meter.sent_bytes, meter.last_sent - meter.first_sent,
            meter.received_bytes, meter.last_arrival - meter.first_arrival, meter.lost, clean,
        )
        estimate = max(self.estimate_bps, meter.probe.goal_bps) if reached else self.estimate_bps
        self.allocator.on_probe_finished(reached, estimate, now)
        self._allocate()

    def close(self) -> None:
        self._closed = True
        for timer in (self._timer, self._probe_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._probe_timer = None
        self._tracks.clear()
        self.pacer.close()
