"""Active speakers from RFC 6464 audio levels: who is talking, how loud, and when that changes.

The work is split by cost. An :class:`AudioLevelTap` sits on the packet path
of one audio track and only counts: three integer updates per packet, no
allocation beyond reading the extension. Every :data:`UPDATE_INTERVAL` the
room drains each tap into a :class:`LevelWindow` and hands the windows to the
:class:`ActiveSpeakerDetector`, which smooths, ranks and decides whether the
speaker list changed. Nothing here does I/O, so the detector is tested by
feeding it windows and clock readings.

Numbers follow LiveKit (pkg/sfu/audio, pkg/rtc/room.go): a packet at or below
30 -dBov counts as speech, a window needs speech in 40 % of its packets, the
loudest speech level is weighted by that fraction and converted to a linear
0..1 amplitude, and an exponential moving average over two intervals damps
transients and lets a speaker fade out instead of vanishing.
"""

from __future__ import annotations

from dataclasses import dataclass

from mediapod.rtp.errors import MalformedPacket
from mediapod.rtp.packet import get_header_extension

ACTIVE_LEVEL = 30
"""-dBov at or below which a packet counts as speech (0 is loudest, 127 silence)."""

SILENT_LEVEL = 127
"""RFC 6464's floor: digital silence, or "no speech seen" in a window."""

MIN_ACTIVE_FRACTION = 0.4
"""Share of a window's packets that must be speech; a cough or a click is not talking."""

UPDATE_INTERVAL = 0.5
"""Seconds between speaker evaluations; also the length of one level window."""

SMOOTH_INTERVALS = 2
"""Intervals the moving average spans (EMA with the centre of mass of a 2-sample mean)."""

LEVEL_DIGITS = 2
"""Levels are reported rounded to this many decimals, so a converged level stops producing updates."""


def dbov_to_linear(level: float) -> float:
    """An RFC 6464 level (-dBov) as a linear amplitude: 0 -> 1.0, 20 -> 0.1, 127 -> ~0."""
    return 10.0 ** (-level / 20.0)


@dataclass(frozen=True, slots=True)
class LevelWindow:
    """What one audio track's packets said during one interval."""

    packets: int          # packets that carried an audio level
    speech_packets: int   # of those, packets at or below ACTIVE_LEVEL
    loudest: int          # lowest -dBov among speech packets; SILENT_LEVEL if none

    def linear_level(self, min_active_fraction: float = MIN_ACTIVE_FRACTION) -> float:
        """The window as one 0..1 loudness: loudest speech scaled by how much of it was speech.

        Scaling by the fraction is LiveKit's "subtract 20*log10(active share)"
        in dB, done in the linear domain.
        """
        if not self.packets:
            return 0.0
        fraction = self.speech_packets / self.packets
        if fraction < min_active_fraction:
            return 0.0
        return dbov_to_linear(self.loudest) * fraction


class AudioLevelTap:
    """Per-packet accumulator of the ssrc-audio-level extension of one audio track.

    The V (voice activity) bit is ignored: aiortc never sets it and browsers
    set it from their own detectors, so the level is the one signal every
    sender gives us the same way (LiveKit ignores it too).
    """

    __slots__ = ("extension_id", "packets", "speech_packets", "loudest")

    def __init__(self, extension_id: int) -> None:
        self.extension_id = extension_id
        self.packets = 0
        self.speech_packets = 0
        self.loudest = SILENT_LEVEL

    def observe(self, packet: bytes) -> None:
        """Count one RTP packet; a missing or malformed extension is ignored, never raised."""
        try:
            value = get_header_extension(packet, self.extension_id)
        except MalformedPacket:
            return
        if not value:
            return
        level = value[0] & 0x7F
        self.packets += 1
        if level <= ACTIVE_LEVEL:
            self.speech_packets += 1
            if level < self.loudest:
                self.loudest = level

    def drain(self) -> LevelWindow:
        """The window since the last drain; starts the next one."""
        window = LevelWindow(self.packets, self.speech_packets, self.loudest)
        self.packets = self.speech_packets = 0
        self.loudest = SILENT_LEVEL
        return window


@dataclass(frozen=True, slots=True)
class Speaker:
    """One entry of a speaker update: a participant sid, its 0..1 level, and whether it speaks."""

    sid: str
    level: float
    active: bool


class ActiveSpeakerDetector:
    """Smoothed per-participant levels and the ranked list of who is speaking.

    Feed it with :meth:`observe` (any number of windows per participant per
    interval; the loudest wins, as a participant with two microphones speaks
    as loud as the louder one), then call :meth:`update` once per interval.
    A participant not observed in an interval counts as silent, so one that
    unpublished its microphone fades out like one that stopped talking.
    """

    def __init__(
        self,
        *,
        active_level: int = ACTIVE_LEVEL,
        min_active_fraction: float = MIN_ACTIVE_FRACTION,
        interval: float = UPDATE_INTERVAL,
        smooth_intervals: int = SMOOTH_INTERVALS,
    ) -> None:
        self._threshold = dbov_to_linear(active_level)
        self._min_active_fraction = min_active_fraction
        self._interval = interval
        self._keep = 1.0 - 2.0 / (smooth_intervals + 1)  # share of the old level an EMA step keeps
        self._smoothed: dict[str, float] = {}
        self._window: dict[str, float] = {}
        self._speaking: tuple[Speaker, ...] = ()
        self._last_update: float | None = None

    @property
    def speakers(self) -> tuple[Speaker, ...]:
        """Who spoke at the last update, loudest first."""
        return self._speaking

    def observe(self, sid: str, window: LevelWindow) -> None:
        level = window.linear_level(self._min_active_fraction)
        if level > self._window.get(sid, 0.0):
            self._window[sid] = level

    def forget(self, sid: str) -> None:
        """Drop a participant that left; if it was speaking, the next update says it stopped."""
        self._smoothed.pop(sid, None)
        self._window.pop(sid, None)

    def update(self, now: float) -> list[Speaker] | None:
        """Close the interval; return the new speaker list if it changed, else None.

        The list holds everyone speaking now, loudest first (active=True),
        then everyone who stopped since the last list (active=False, level 0),
        so a client can replace its view with each list and still see who stopped.
        """
        keep = self._keep_for(now)
        windows, self._window = self._window, {}
        for sid in self._smoothed.keys() | windows.keys():
            target = windows.get(sid, 0.0)
            level = target + (self._smoothed.get(sid, 0.0) - target) * keep
            if target == 0.0 and level < self._threshold:
                # Faded out: forget it rather than decay towards zero forever.
                self._smoothed.pop(sid, None)
            else:
                self._smoothed[sid] = level
        ranked = sorted(
            ((sid, level) for sid, level in self._smoothed.items() if level >= self._threshold),
            key=lambda entry: (-entry[1], entry[0]),
        )
        speaking = tuple(Speaker(sid, round(level, LEVEL_DIGITS), True) for sid, level in ranked)
        if speaking == self._speaking:
            return None
        still = {s.sid for s in speaking}
        stopped = [Speaker(s.sid, 0.0, False) for s in self._speaking if s.sid not in still]
        self._speaking = speaking
        return [*speaking, *stopped]

    def _keep_for(self, now: float) -> float:
        # The room's timer drifts under load; scaling the EMA by the real
        # elapsed time keeps a late tick from smoothing less than an on-time one.
        elapsed = self._interval if self._last_update is None else max(now - self._last_update, 0.0)
        self._last_update = now
        return self._keep ** (elapsed / self._interval)
