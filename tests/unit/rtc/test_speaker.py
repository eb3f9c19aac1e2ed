"""Active speaker detection: RFC 6464 levels in, a ranked speaker list out, only on change."""

from __future__ import annotations

import pytest

from mediapod.rtc.speaker import (
    ACTIVE_LEVEL,
    SILENT_LEVEL,
    UPDATE_INTERVAL,
    ActiveSpeakerDetector,
    AudioLevelTap,
    LevelWindow,
    Speaker,
    dbov_to_linear,
)
from mediapod.rtp.packet import RtpPacket

PACKETS_PER_WINDOW = 25  # 20 ms Opus frames in a 500 ms window
LEVEL_EXT_ID = 2


def window(level: int, speech_share: float = 1.0) -> LevelWindow:
    """A window of PACKETS_PER_WINDOW packets, speech_share of them at level, the rest silent."""
    speech = round(PACKETS_PER_WINDOW * speech_share)
    tap = AudioLevelTap(LEVEL_EXT_ID)
    for i in range(PACKETS_PER_WINDOW):
        tap.observe(audio_packet(level if i < speech else SILENT_LEVEL, i))
    return tap.drain()


def audio_packet(level: int, seq: int = 0, voice: bool = False, ext_id: int = LEVEL_EXT_ID) -> bytes:
    value = bytes([(0x80 if voice else 0) | level])
    return RtpPacket(
        payload_type=111, sequence_number=seq, timestamp=seq * 960, ssrc=1234,
        extensions={ext_id: value}, payload=b"\xf8\xff\xfe",
    ).serialize()


class Clock:
    """Drives a detector one interval at a time, like the room's loop."""

    def __init__(self, detector: ActiveSpeakerDetector) -> None:
        self.detector = detector
        self.now = 0.0

    def tick(self, **levels: LevelWindow) -> list[Speaker] | None:
        for sid, w in levels.items():
            self.detector.observe(sid, w)
        self.now += UPDATE_INTERVAL
        return self.detector.update(self.now)


@pytest.fixture
def clock() -> Clock:
    return Clock(ActiveSpeakerDetector())


# -- the per-packet tap ---------------------------------------------------------


def test_tap_counts_speech_packets_and_keeps_the_loudest() -> None:
    tap = AudioLevelTap(LEVEL_EXT_ID)
    for level in (40, 25, 10, 127, 30):
        tap.observe(audio_packet(level))
    assert tap.drain() == LevelWindow(packets=5, speech_packets=3, loudest=10)
    assert tap.drain() == LevelWindow(packets=0, speech_packets=0, loudest=SILENT_LEVEL)


def test_tap_reads_the_level_and_ignores_the_voice_activity_bit() -> None:
    tap = AudioLevelTap(LEVEL_EXT_ID)
    tap.observe(audio_packet(12, voice=True))
    tap.observe(audio_packet(90, voice=True))
    assert tap.drain() == LevelWindow(packets=2, speech_packets=1, loudest=12)


def test_tap_ignores_packets_without_the_extension_and_malformed_ones() -> None:
    tap = AudioLevelTap(LEVEL_EXT_ID)
    tap.observe(audio_packet(5, ext_id=3))                 # another extension only
    tap.observe(RtpPacket(payload_type=111, ssrc=1).serialize())  # no extension block
    overlong = bytearray(audio_packet(5))
    overlong[15] = 0x40  # extension length (bytes 14-15) of 64 words: past the end of the packet
    tap.observe(bytes(overlong))
    tap.observe(audio_packet(5)[:14])  # cut inside the extension header
    assert tap.drain().packets == 0


# -- levels -------------------------------------------------------------------------


def test_dbov_converts_to_linear_amplitude() -> None:
    assert dbov_to_linear(0) == 1.0
    assert dbov_to_linear(20) == pytest.approx(0.1)
    assert dbov_to_linear(ACTIVE_LEVEL) == pytest.approx(0.0316, abs=1e-4)


def test_window_level_is_the_loudest_speech_scaled_by_its_share() -> None:
    assert window(6).linear_level() == pytest.approx(dbov_to_linear(6))
    assert window(6, speech_share=0.6).linear_level() == pytest.approx(dbov_to_linear(6) * 0.6)
    assert window(6, speech_share=0.2).linear_level() == 0.0  # a click, not talking
    assert window(50).linear_level() == 0.0                   # audible but below the active level


# -- the detector -------------------------------------------------------------------


def test_loud_participant_becomes_speaker_then_quiet_one_stops(clock: Clock) -> None:
    update = clock.tick(alice=window(10), bob=window(SILENT_LEVEL))
    assert update is not None
    assert [(s.sid, s.active) for s in update] == [("alice", True)]
    assert 0 < update[0].level <= dbov_to_linear(10)

    updates = [clock.tick(alice=window(SILENT_LEVEL), bob=window(SILENT_LEVEL)) for _ in range(10)]
    changes = [u for u in updates if u is not None]
    assert changes[-1] == [Speaker("alice", 0.0, False)]
    assert all(s.sid == "alice" for change in changes for s in change)


def test_two_speakers_are_ordered_by_loudness(clock: Clock) -> None:
    update = clock.tick(alice=window(20), bob=window(5))
    assert update is not None
    assert [s.sid for s in update] == ["bob", "alice"]
    assert update[0].level > update[1].level > 0
    for _ in range(4):
        update = clock.tick(alice=window(3), bob=window(25)) or update
    assert [s.sid for s in update] == ["alice", "bob"]


def test_no_update_while_nothing_changes(clock: Clock) -> None:
    assert clock.tick(carol=window(SILENT_LEVEL)) is None  # nobody ever spoke
    updates = [clock.tick(alice=window(8)) for _ in range(12)]
    assert updates[0] is not None
    # The smoothed level converges, and once its rounded value settles the
    # detector stays silent however long alice keeps talking.
    assert updates[-4:] == [None] * 4
    assert all(u is None for u in updates[updates.index(None):])


def test_level_decays_smoothly_after_silence(clock: Clock) -> None:
    for _ in range(6):
        clock.tick(alice=window(6))
    levels = []
    while True:
        update = clock.tick(alice=window(SILENT_LEVEL))
        assert update is not None, "every interval of the fade changes the level"
        [speaker] = update
        if not speaker.active:
            break
        levels.append(speaker.level)
    assert len(levels) >= 1, "one interval of silence must not drop a loud speaker at once"
    assert levels == sorted(levels, reverse=True)
    assert len(levels) <= 4, "a speaker who stopped must be dropped within a couple of seconds"
    assert [clock.tick(alice=window(SILENT_LEVEL)) for _ in range(4)] == [None] * 4


def test_unobserved_participant_counts_as_silent(clock: Clock) -> None:
    clock.tick(alice=window(6))
    changes = [clock.tick() for _ in range(8)]
    assert [s for s in changes if s is not None][-1] == [Speaker("alice", 0.0, False)]


def test_forgotten_participant_is_announced_as_stopped(clock: Clock) -> None:
    clock.tick(alice=window(6), bob=window(10))
    clock.detector.forget("alice")
    update = clock.tick(bob=window(10))
    assert update is not None
    assert update[-1] == Speaker("alice", 0.0, False)
    assert [s.sid for s in update if s.active] == ["bob"]
    assert [s.sid for s in clock.detector.speakers] == ["bob"]


def test_loudest_of_a_participants_tracks_counts(clock: Clock) -> None:
    clock.detector.observe("alice", window(SILENT_LEVEL))
    clock.detector.observe("alice", window(4))
    clock.detector.observe("alice", window(25))
    update = clock.tick()
    assert update is not None and update[0].sid == "alice"
    solo = Clock(ActiveSpeakerDetector())
    assert solo.tick(alice=window(4)) == update


def test_late_tick_smooths_as_much_as_the_time_that_passed() -> None:
    on_time = Clock(ActiveSpeakerDetector())
    late = Clock(ActiveSpeakerDetector())
    for c in (on_time, late):
        for _ in range(6):
            c.tick(alice=window(6))
    on_time.tick(alice=window(SILENT_LEVEL))
    expected = on_time.tick(alice=window(SILENT_LEVEL))
    late.detector.observe("alice", window(SILENT_LEVEL))
    late.now += 2 * UPDATE_INTERVAL
    assert late.detector.update(late.now) == expected
