"""Vp8Munger: picture ids and TL0PICIDX continue across a simulcast switch, byte for byte (RFC 7741 4.2)."""

from __future__ import annotations

from mediapod.sfu.vp8munger import Vp8Munger


def descriptor(picture_id: int, tl0: int, *, long_id: bool = True, start: bool = True) -> bytes:
    """X=1, S as given, I=1 (M as given), L=1, T=1 TID 0: the descriptor libwebrtc writes for simulcast VP8."""
    pid = bytes([0x80 | (picture_id >> 8), picture_id & 0xFF]) if long_id else bytes([picture_id & 0x7F])
    return bytes([0x90 if start else 0x80, 0xE0]) + pid + bytes([tl0, 0x00]) + b"vp8-frame-data"


def sent(munger: Vp8Munger, payload: bytes, advances: bool = True) -> tuple[int, int]:
    """Munge payload as the DownTrack does (after a 12-byte header) and read back (picture id, TL0PICIDX)."""
    out = bytearray(12) + bytearray(payload)
    munger.munge(out, 12, len(out), advances)
    body = out[12:]
    if body[2] & 0x80:
        return ((body[2] & 0x7F) << 8) | body[3], body[4]
    return body[2], body[3]


def test_without_a_switch_numbers_pass_unchanged() -> None:
    munger = Vp8Munger()
    assert [sent(munger, descriptor(p, p // 3)) for p in (100, 101, 102)] == [(100, 33), (101, 33), (102, 34)]


def test_a_switch_continues_one_past_the_last_sent_then_follows_the_new_layer() -> None:
    munger = Vp8Munger()
    sent(munger, descriptor(500, 20))
    assert sent(munger, descriptor(501, 21)) == (501, 21)
    keyframe = descriptor(9000, 200)  # the other layer numbers its pictures on its own
    munger.switch(keyframe, 0, len(keyframe))
    assert [sent(munger, keyframe), sent(munger, descriptor(9001, 201))] == [(502, 22), (503, 23)]


def test_numbers_wrap_in_their_field_widths() -> None:
    munger = Vp8Munger()
    sent(munger, descriptor(0x7FFF, 0xFF))
    keyframe = descriptor(3, 9)
    munger.switch(keyframe, 0, len(keyframe))
    assert sent(munger, keyframe) == (0, 0)
    short = Vp8Munger()
    assert sent(short, descriptor(0x7F, 5, long_id=False)) == (0x7F, 5)


def test_a_late_packet_is_rewritten_but_does_not_move_the_last_sent() -> None:
    munger = Vp8Munger()
    sent(munger, descriptor(10, 1))
    assert sent(munger, descriptor(8, 1), advances=False) == (8, 1)
    keyframe = descriptor(700, 70)
    munger.switch(keyframe, 0, len(keyframe))
    assert sent(munger, keyframe) == (11, 2)


def test_descriptors_without_the_fields_and_truncated_ones_are_left_alone() -> None:
    munger = Vp8Munger()
    plain = b"\x10" + b"frame"  # no X byte: no picture id, no TL0PICIDX
    out = bytearray(plain)
    munger.munge(out, 0, len(out), True)
    assert bytes(out) == plain
    truncated = bytearray(b"\x90\xe0\x80")  # says a 15-bit id follows, ends after its first byte
    munger.munge(truncated, 0, len(truncated), True)
    assert bytes(truncated) == b"\x90\xe0\x80"
    munger.switch(bytes(truncated), 0, len(truncated))
