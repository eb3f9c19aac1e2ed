"""VP8 picture id and TL0PICIDX continuity across simulcast switches (RFC 7741 4.2).

Every simulcast layer numbers its pictures on its own. A subscriber moved
from one layer to another sees one stream, so its decoder (libwebrtc's frame
buffer) reads the new layer's picture ids as jumps back or far ahead, takes
its keyframe for an old frame, drops what follows and asks for keyframes.
Like LiveKit's VP8 munger, the DownTrack therefore continues both numbers
one step after the last it sent when it switches, and rewrites them in place
on every packet after that (output = input + offset, as for sequence numbers).
"""

from __future__ import annotations

_X = 0x80  # extension byte present
_I = 0x80  # picture id present
_L = 0x40  # TL0PICIDX present
_M = 0x80  # 15-bit picture id


def _fields(payload: bytes | bytearray, start: int, end: int) -> tuple[int, int, int]:
    """(picture id offset or -1, its length in bytes, TL0PICIDX offset or -1) within payload[start:end]."""
    if end - start < 2 or not payload[start] & _X:
        return -1, 0, -1
    x = payload[start + 1]
    pos = start + 2
    pid_at, pid_len = -1, 0
    if x & _I:
        if pos >= end:
            return -1, 0, -1
        pid_at, pid_len = pos, 2 if payload[pos] & _M else 1
        pos += pid_len
        if pos > end:
            return -1, 0, -1
    tl0_at = pos if x & _L and pos < end else -1
    return pid_at, pid_len, tl0_at


def _read_pid(payload: bytes | bytearray, at: int, length: int) -> int:
    return ((payload[at] & 0x7F) << 8) | payload[at + 1] if length == 2 else payload[at] & 0x7F


class Vp8Munger:
    """Picture-id and TL0PICIDX offsets of one DownTrack, and the last values it sent."""

    __slots__ = ("_pid_offset", "_tl0_offset", "_last_pid", "_last_tl0")

    def __init__(self) -> None:
        self._pid_offset = 0
        self._tl0_offset = 0
        self._last_pid = -1  # in our numbering; -1 until a packet carried one
        self._last_tl0 = -1

    def switch(self, packet: bytes, start: int, end: int) -> None:
        """A new layer starts with the VP8 payload packet[start:end]: continue both numbers one past the last sent."""
        pid_at, pid_len, tl0_at = _fields(packet, start, end)
        if pid_at >= 0 and self._last_pid >= 0:
            self._pid_offset = (self._last_pid + 1 - _read_pid(packet, pid_at, pid_len)) & 0x7FFF
        if tl0_at >= 0 and self._last_tl0 >= 0:
            self._tl0_offset = (self._last_tl0 + 1 - packet[tl0_at]) & 0xFF

    def munge(self, out: bytearray, start: int, end: int, advances: bool) -> None:
        """Rewrite the descriptor of the VP8 payload in out[start:end] in place.

        ``advances``: the packet moves the stream on (not a late one filling a
        hole), so its numbers become the last sent.
        """
        pid_at, pid_len, tl0_at = _fields(out, start, end)
        if pid_at >= 0:
            if pid_len == 2:
                pid = (_read_pid(out, pid_at, 2) + self._pid_offset) & 0x7FFF
                out[pid_at] = _M | (pid >> 8)
                out[pid_at + 1] = pid & 0xFF
            else:
                pid = (out[pid_at] + self._pid_offset) & 0x7F
                out[pid_at] = pid
            if advances:
                self._last_pid = pid
        if tl0_at >= 0:
            tl0 = (out[tl0_at] + self._tl0_offset) & 0xFF
            out[tl0_at] = tl0
            if advances:
                self._last_tl0 = tl0
