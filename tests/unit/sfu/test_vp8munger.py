"""Vp8Munger: picture ids and TL0PICIDX continue across a simulcast switch, byte for byte (RFC 7741 4.2).

Field positions are given as the receiver's ExtPacket would give them; the
descriptor bytes are written out by hand from the RFC's layout.
"""

from __future__ import annotations

from mediapod.sfu.vp8munger import Vp8Munger


def descriptor(picture_id: int, tl0: int, *, long_id: bool = True) -> tuple[bytes, int, int, int]:
    """X=1, S=1, I=1 (M as given), L=1, T=1 TID 0, as libwebrtc writes for simulcast VP8; and (pid_at, pid_len, tl0_at)."""
    pid = bytes([0x80 | (picture_id >> 8), picture_id & 0xFF]) if long_id else bytes([picture_id & 0x7F])
    return bytes([0x90, 0xE0]) + pid + bytes([tl0, 0x00]) + b"vp8-frame-data", 2, len(pid), 2 + len(pid)


def sent(munger: Vp8Munger, picture_id: int, tl0: int, *, advances: bool = True, long_id: bool = True) -> tuple[int, int]:
    """Munge a descriptor in place, as the RtpMunger does, and read back (picture id, TL0PICIDX)."""
    payload, pid_at, pid_len, tl0_at = descriptor(picture_id, tl0, long_id=long_id)
    out = bytearray(payload)
    munger.munge(out, pid_at, pid_len, tl0_at, advances)
    if pid_len == 2:
        return ((out[2] & 0x7F) << 8) | out[3], out[4]
    return out[2], out[3]


def switch(munger: Vp8Munger, picture_id: int, tl0: int) -> None:
    payload, pid_at, pid_len, tl0_at = descriptor(picture_id, tl0)
    munger.switch(payload, pid_at, pid_len, tl0_at)


def test_without_a_switch_numbers_pass_unchanged() -> None:
    munger = Vp8Munger()
    assert [sent(munger, p, p // 3) for p in (100, 101, 102)] == [(100, 33), (101, 33), (102, 34)]


def test_a_switch_continues_one_past_the_last_sent_then_follows_the_new_layer() -> None:
    munger = Vp8Munger()
    sent(munger, 500, 20)
    assert sent(munger, 501, 21) == (501, 21)
    switch(munger, 9000, 200)  # the other layer numbers its pictures on its own
    assert [sent(munger, 9000, 200), sent(munger, 9001, 201)] == [(502, 22), (503, 23)]


def test_numbers_wrap_in_their_field_widths() -> None:
    munger = Vp8Munger()
    sent(munger, 0x7FFF, 0xFF)
    switch(munger, 3, 9)
    assert sent(munger, 3, 9) == (0, 0)
    short = Vp8Munger()
    assert sent(short, 0x7F, 5, long_id=False) == (0x7F, 5)


def test_a_late_packet_is_rewritten_but_does_not_move_the_last_sent() -> None:
    munger = Vp8Munger()
    sent(munger, 10, 1)
    assert sent(munger, 8, 1, advances=False) == (8, 1)
    switch(munger, 700, 70)
    assert sent(munger, 700, 70) == (11, 2)


def test_packets_without_the_fields_are_left_alone() -> None:
    munger = Vp8Munger()
    sent(munger, 10, 1)
    switch(munger, 700, 70)
    plain = bytearray(b"\x10" + b"frame")  # no X byte: no picture id, no TL0PICIDX
    munger.munge(plain, -1, 0, -1, True)
    assert bytes(plain) == b"\x10frame"
    munger.switch(bytes(plain), -1, 0, -1)
