"""Recorded publisher input for the hot-path replay: an rtpdump file (rtptools' ``rtpplay1.0`` format).

The recording is made once by ``record`` (aiortc's VP8 and Opus encoders, a
simulcast camera of three layers plus a microphone, with some uplink loss
and reordering written into it) and committed, so every replay, today's and
a later optimisation's, forwards the very same packets. Wireshark and
rtptools' ``rtpplay`` read the file too.

File layout (all fields network byte order): the text line
``#!rtpplay1.0 <address>/<port>``, a 16-byte header (start time seconds and
microseconds, source address, port, padding), then per packet an 8-byte
header (record length = packet length + 8, packet length, milliseconds since
the start) and the RTP packet.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"#!rtpplay1.0 "
_FILE_HEADER = struct.Struct("!IIIHH")
_PACKET_HEADER = struct.Struct("!HHI")


@dataclass(frozen=True, slots=True)
class Stream:
    """One recorded stream: its SSRC, what it is, and its simulcast layer (0 for audio)."""

    ssrc: int
    kind: str
    mime_type: str
    clock_rate: int
    layer: int


@dataclass(frozen=True, slots=True)
class Recorded:
    """One packet as it arrived: milliseconds since the recording started, and the plain RTP bytes."""

    offset_ms: int
    packet: bytes


def write(path: Path, packets: list[Recorded]) -> None:
    """Write packets (in arrival order) as an rtpdump file."""
    with path.open("wb") as out:
        out.write(MAGIC + b"127.0.0.1/5004\n")
        out.write(_FILE_HEADER.pack(0, 0, 0x7F000001, 5004, 0))
        for recorded in packets:
            out.write(_PACKET_HEADER.pack(len(recorded.packet) + _PACKET_HEADER.size, len(recorded.packet), recorded.offset_ms))
            out.write(recorded.packet)


def read(path: Path) -> Iterator[Recorded]:
    """The packets of an rtpdump file, in the order recorded.

    Raises:
        ValueError: the file is not an rtpdump recording or is cut short.
    """
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError(f"{path} is not an rtpdump file (no {MAGIC!r} line)")
    at = data.index(b"\n") + 1 + _FILE_HEADER.size
    while at < len(data):
        if at + _PACKET_HEADER.size > len(data):
            raise ValueError(f"{path}: a packet header is cut short at byte {at}")
        length, packet_length, offset_ms = _PACKET_HEADER.unpack_from(data, at)
        end = at + _PACKET_HEADER.size + packet_length
        if length != packet_length + _PACKET_HEADER.size or end > len(data):
            raise ValueError(f"{path}: a malformed packet record at byte {at}")
        yield Recorded(offset_ms, data[at + _PACKET_HEADER.size : end])
        at = end


# The streams of the committed recording (``record.py`` writes them, the replay routes by them).
AUDIO = Stream(ssrc=0x1000_0001, kind="audio", mime_type="audio/opus", clock_rate=48000, layer=0)
VIDEO_LAYERS = tuple(
    Stream(ssrc=0x2000_0001 + layer, kind="video", mime_type="video/VP8", clock_rate=90000, layer=layer) for layer in range(3)
)
STREAMS = {stream.ssrc: stream for stream in (AUDIO, *VIDEO_LAYERS)}
RECORDING = Path(__file__).with_name("simulcast-vp8-opus.rtpdump")
