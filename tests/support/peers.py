"""Observing real aiortc peers: frames they decode and RTP packets they receive.

The oracles here are third-party: PyAV's libvpx decoder judges VP8 frames and
aiortc's own VP8 payload descriptor parser strips RTP framing; nothing here
imports the product's codec parsers.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import re
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

import av
from aiortc import RTCRtpCodecParameters, RTCRtpReceiver
from aiortc.codecs import is_rtx
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.mediastreams import MediaStreamError, VideoStreamTrack
from aiortc.rtp import RtpPacket

from mediapod.client import RemoteTrack

_SEQ_MOD = 1 << 16
_HALF = 1 << 15


def extended_sequence_numbers(numbers: Iterable[int]) -> list[int]:
    """Unwrap 16-bit RTP sequence numbers given in arrival order (RFC 3550 A.1).

    Each number is placed within half the number space of the highest seen so
    far, so a wrap past 65535 moves forward and a late (reordered) packet lands
    just behind the highest instead of a whole cycle ahead.
    """
    extended: list[int] = []
    highest: int | None = None
    for number in numbers:
        if highest is None:
            value = number
        else:
            delta = (number - highest) % _SEQ_MOD
            value = highest + delta if delta < _HALF else highest + delta - _SEQ_MOD
        extended.append(value)
        highest = value if highest is None else max(highest, value)
    return extended


def sequence_coverage(received: Sequence[int], repaired: Iterable[int] = ()) -> tuple[int, int]:
    """(distinct numbers received, size of the range they span) for one SSRC.

    ``received`` is the SSRC's sequence numbers in arrival order; ``repaired``
    are original sequence numbers carried by retransmissions (RFC 4588 OSN),
    which count as received. A duplicate counts once and reordering costs
    nothing, so range minus distinct is exactly the numbers that never arrived.
    The range starts at the lowest number received: a repair of a packet from
    before that was sent before anyone watched and is left out.
    """
    seen = set(extended_sequence_numbers(received))
    if not seen:
        return 0, 0
    low, high = min(seen), max(seen)
    for number in repaired:
        after = low + (number - low) % _SEQ_MOD  # its unwrapped value at or after low...
        before = after - _SEQ_MOD  # ...or the one a cycle earlier
        if after <= high or after - high <= low - before:
            seen.add(after)
    return len(seen), max(seen) - low + 1


def missing_sequence_numbers(received: Sequence[int], repaired: Iterable[int] = ()) -> int:
    """How many sequence numbers in the received range never arrived, retransmissions counted as arrived."""
    distinct, span = sequence_coverage(received, repaired)
    return span - distinct


@dataclass(frozen=True)
class RtpArrival:
    """One primary (non-RTX) RTP packet as the subscriber's WebRTC stack received it."""

    at: float  # monotonic clock
    ssrc: int
    sequence_number: int
    timestamp: int
    marker: bool
    payload: bytes


@dataclass
class RtpProbe:
    """Records every RTP packet an aiortc receiver gets, after SRTP and before jitter buffering.

    Packets of a payload type the receiver negotiated as rtx (RFC 4588, as
    aiortc reads its SDP) are retransmissions: their original sequence number
    is recorded in ``recovered`` under the primary SSRC of the same receiver,
    since one subscribed track has one primary stream. An rtx packet too
    short to carry one is padding (a bandwidth probe) and recorded nowhere.
    Any subscriber may get either: a datagram lost on a busy machine's
    loopback is NACKed and repaired like any other.
    """

    sequence_numbers: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    recovered: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    arrivals: list[RtpArrival] = field(default_factory=list)

    def attach(self, receiver: RTCRtpReceiver) -> None:
        original = receiver._handle_rtp_packet
        # aiortc's payload type -> codec map, filled from the SDP before the track exists (stand-ins may have none).
        negotiated: dict[int, RTCRtpCodecParameters] = getattr(receiver, "_RTCRtpReceiver__codecs", {})
        primary: list[int] = []  # this receiver's primary SSRC, once one arrived

        async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
            codec = negotiated.get(packet.payload_type)
            if codec is not None and is_rtx(codec):
                # A repair of a packet from before the probe saw its stream cannot be placed; skip it.
                if primary and len(packet.payload) >= 2:
                    self.recovered[primary[-1]].append(int.from_bytes(packet.payload[:2], "big"))
            else:
                primary[:] = [packet.ssrc]
                self.sequence_numbers[packet.ssrc].append(packet.sequence_number)
                self.arrivals.append(
                    RtpArrival(time.monotonic(), packet.ssrc, packet.sequence_number, packet.timestamp, packet.marker,
                               bytes(packet.payload))
                )
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = handle  # type: ignore[method-assign]

    def received_fraction(self) -> float:
        """Share of the single primary stream's sequence range received, retransmissions included."""
        [(ssrc, numbers)] = self.sequence_numbers.items()
        distinct, span = sequence_coverage(numbers, self.recovered.get(ssrc, ()))
        return distinct / span

    def gaps(self) -> int:
        """Sequence numbers never received, summed over SSRCs; retransmissions count as received."""
        return sum(
            missing_sequence_numbers(numbers, self.recovered.get(ssrc, ())) for ssrc, numbers in self.sequence_numbers.items()
        )


@dataclass(frozen=True)
class Vp8Frame:
    """One VP8 frame put back together from RTP packets (RFC 7741)."""

    at: float  # arrival of its first packet, monotonic clock
    data: bytes  # the VP8 bitstream frame, payload descriptors removed


def vp8_frames(arrivals: Iterable[RtpArrival]) -> list[Vp8Frame]:
    """Reassemble VP8 frames in order of arrival: one RTP timestamp per frame,
    packets ordered by sequence number, descriptors stripped by aiortc's parser."""
    packets: dict[tuple[int, int], list[RtpArrival]] = {}
    for arrival in arrivals:
        packets.setdefault((arrival.ssrc, arrival.timestamp), []).append(arrival)
    frames = []
    for group in packets.values():
        by_number = dict(zip(extended_sequence_numbers(p.sequence_number for p in group), group))
        data = b"".join(VpxPayloadDescriptor.parse(by_number[n].payload)[1] for n in sorted(by_number))
        frames.append(Vp8Frame(group[0].at, data))
    return frames


def standalone_picture_size(frame: Vp8Frame) -> tuple[int, int] | None:
    """(width, height) if the frame decodes on a fresh libvpx decoder, else None.

    A decoder with no history can only decode a key frame, so this tells key
    frames from inter frames the way a subscriber that just switched would.
    """
    decoder = av.CodecContext.create("libvpx", "r")
    try:
        pictures = decoder.decode(av.Packet(frame.data))
    except av.error.InvalidDataError:
        return None
    return (pictures[0].width, pictures[0].height) if pictures else None


async def count_frames(tracks: list[RemoteTrack], minimum: dict[str, int], timeout: float) -> dict[str, int]:
    """Decode frames from each remote track until every kind reaches its minimum or time runs out."""
    counts: dict[str, int] = defaultdict(int)
    deadline = time.monotonic() + timeout

    async def pull(remote: RemoteTrack) -> None:
        while counts[remote.kind] < minimum.get(remote.kind, 0):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                await asyncio.wait_for(remote.track.recv(), left)
            except (asyncio.TimeoutError, MediaStreamError):
                return
            counts[remote.kind] += 1

    await asyncio.gather(*(pull(t) for t in tracks))
    return dict(counts)


@dataclass
class FrameLog:
    """Decodes a remote video track in the background, logging (time, width, height) per frame."""

    remote: RemoteTrack
    frames: list[tuple[float, int, int]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> FrameLog:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def _run(self) -> None:
        try:
            while True:
                frame = await self.remote.track.recv()
                self.frames.append((time.monotonic(), frame.width, frame.height))
        except MediaStreamError:
            return

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def between(self, start: float, end: float) -> list[tuple[float, int, int]]:
        return [f for f in self.frames if start <= f[0] < end]


def rtx_payload_types(sdp: str) -> set[int]:
    """Payload types an SDP maps to rtx (RFC 4588)."""
    return {int(pt) for pt in re.findall(r"a=rtpmap:(\d+) rtx/", sdp)}


class NoisyVideoTrack(VideoStreamTrack):
    """Random pixels: every frame encodes to several RTP packets, like real camera video.

    aiortc's own VideoStreamTrack is a flat colour that fits one packet a
    frame, which would make loss tests too easy.
    """

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self._random = random.Random(5)
        self._size = (width, height)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(*self._size, "yuv420p")
        for plane in frame.planes:
            plane.update(self._random.randbytes(plane.buffer_size))
        frame.pts, frame.time_base = pts, time_base
        return frame


async def eventually(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, interval: float = 0.05
) -> float:
    """Poll a predicate (plain or async) until it holds; the seconds that took.

    AssertionError after ``timeout``: the one polling helper for every test.
    """
    start = time.monotonic()
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
