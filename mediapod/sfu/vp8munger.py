"""VP8 picture id and TL0PICIDX continuity across simulcast switches (RFC 7741 4.2).

Every simulcast layer numbers its pictures on its own. A subscriber moved
from one layer to another sees one stream, so its decoder (libwebrtc's frame
buffer) reads the new layer's picture ids as jumps back or far ahead, takes
its keyframe for an old frame, drops what follows and asks for keyframes.
Like LiveKit's VP8 munger, the RtpMunger therefore continues both numbers
one step after the last it sent when it switches, and rewrites them in place
on every packet after that (output = input + offset, as for sequence numbers).
Where the fields sit was found once by the receiver (ExtPacket); nothing is
parsed here.
"""

from __future__ import annotations

_M = 0x80  # 15-bit picture id


def _read_pid(payload: bytes | bytearray, at: int, length: int) -> int:
    return ((payload[at] & 0x7F) << 8) | payload[at + 1] if length == 2 else payload[at] & 0x7F


class Vp8Munger:
    """Picture-id and TL0PICIDX offsets of one outgoing stream, and the last values it sent.

    Positions are absolute in the buffer given: ``pid_at``/``tl0_at`` -1 when
    the packet carries no such field, ``pid_len`` 1 or 2 bytes.
    """

    __slots__ = ("_last_pid", "_last_tl0", "_pid_offset", "_tl0_offset")

    def __init__(self) -> None:
        self._pid_offset = 0
        self._tl0_offset = 0
        self._last_pid = -1  # in our numbering; -1 until a packet carried one
        self._last_tl0 = -1

    def switch(self, packet: bytes, pid_at: int, pid_len: int, tl0_at: int) -> None:
        """A new source starts with this packet: continue both numbers one past the last sent."""
        if pid_at >= 0 and self._last_pid >= 0:
            self._pid_offset = (self._last_pid + 1 - _read_pid(packet, pid_at, pid_len)) & 0x7FFF
        if tl0_at >= 0 and self._last_tl0 >= 0:
            self._tl0_offset = (self._last_tl0 + 1 - packet[tl0_at]) & 0xFF

    def munge(self, out: bytearray, pid_at: int, pid_len: int, tl0_at: int, advances: bool) -> None:
        """Rewrite the fields in place.

        ``advances``: the packet moves the stream on (not a late one filling a
        hole), so its numbers become the last sent.
        """
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
