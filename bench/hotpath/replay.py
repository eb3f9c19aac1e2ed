"""Replay the recorded publisher input through the forwarding core to N subscribers.

The media pod's per-packet path, in process and without signaling: one
TrackReceiver per recorded stream (buffer, reception stats, per-packet
facts), per subscriber a Forwarder, RtpMunger and DownTrack per track and
one Pacer (with a SendHistory where the subscriber takes transport-wide
sequence numbers). Subscribers differ as real ones do (see SUBSCRIBERS):
which layers they want, layer switches asked by the subscriber and by the
allocator, a pause, RTX or not, transport-wide numbers or not, NACKs answered
from the buffer. Randomness (SSRCs, first sequence numbers and timestamps) is
seeded and the pacer's rate is unbounded, so the bytes each subscriber gets
depend on the recording and the code alone.

Two uses:

- ``digest(path)``: every packet each subscriber is sent, before SRTP, as
  bytes (item 3 of issue 14 compares them with the previous implementation's).
- ``main`` (``python bench/hotpath``): CPU microseconds per forwarded packet
  through the whole path, SRTP protect and a real UDP send included.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mediapod.metrics import MediaCounters
from mediapod.rtp.packet import RtpHeader
from mediapod.sfu.downtrack import DownTrack
from mediapod.sfu.forwarder import Forwarder
from mediapod.sfu.pacer import Pacer
from mediapod.sfu.receiver import TrackReceiver
from mediapod.sfu.send_history import SendHistory

from . import capture

SEED = 14
UNBOUNDED_BPS = 1e12
VIDEO_PT, RTX_PT, AUDIO_PT, TWCC_EXTENSION_ID = 96, 97, 111, 2


@dataclass(frozen=True, slots=True)
class Subscriber:
    """How one replayed subscriber behaves; events are (packet index, what happens)."""

    twcc: bool
    rtx: bool
    wish: int
    events: tuple[tuple[int, str, int], ...] = ()


# Actions: "wish" (UpdateTrackSettings), "allocate" / "pause" (the allocator), "nack" (lose the last n packets sent).
SUBSCRIBERS = (
    Subscriber(twcc=True, rtx=True, wish=2, events=((120, "nack", 3), (200, "nack", 5))),
    Subscriber(twcc=False, rtx=True, wish=0),
    Subscriber(twcc=True, rtx=False, wish=2, events=((60, "wish", 0), (150, "wish", 1), (220, "nack", 2), (260, "wish", 2))),
    Subscriber(twcc=False, rtx=False, wish=2, events=((40, "allocate", 1), (110, "pause", 0), (160, "allocate", 2), (230, "allocate", 0))),
)


@contextlib.contextmanager
def _seeded() -> Iterator[None]:
    """SSRCs, first sequence numbers and timestamps drawn from a seeded generator: the same in every run."""
    randbits = secrets.randbits
    secrets.randbits = random.Random(SEED).getrandbits  # type: ignore[assignment]
    try:
        yield
    finally:
        secrets.randbits = randbits


class Replay:
    """The forwarding core wired as a media pod wires it, for one recorded publisher and its subscribers."""

    def __init__(self, subscribers: int, send_for: Callable[[int], Callable[[bytes], None]]) -> None:
        """send_for(i): where subscriber i's pacer puts its packets (SRTP and UDP, or a recorder)."""
        with _seeded():
            self._build(subscribers, send_for)

    def _build(self, subscribers: int, send_for: Callable[[int], Callable[[bytes], None]]) -> None:
        self.counters = MediaCounters()
        self.receivers = {
            ssrc: TrackReceiver("TR_replay", s.kind, s.mime_type, s.clock_rate, ssrc, send_pli=lambda ssrc: None, layer=s.layer)
            for ssrc, s in capture.STREAMS.items()
        }
        video = tuple(self.receivers[s.ssrc] for s in capture.VIDEO_LAYERS)
        audio = self.receivers[capture.AUDIO.ssrc]
        self.downtracks: list[tuple[Subscriber, DownTrack, DownTrack]] = []
        self.pacers: list[Pacer] = []
        for index in range(subscribers):
            spec = SUBSCRIBERS[index % len(SUBSCRIBERS)]
            pacer = Pacer(send_for(index), SendHistory() if spec.twcc else None, UNBOUNDED_BPS)
            twcc_id = TWCC_EXTENSION_ID if spec.twcc else None
            forwarder = Forwarder(layers=len(video), request_keyframe=lambda layer: None)
            camera = DownTrack(
                "video", VIDEO_PT, 90000, pacer.sender(immediate=False), tuple(r.buffer for r in video), self.counters,
                forwarder, "replay", rtx_payload_type=RTX_PT if spec.rtx else None, vp8=True, twcc_extension_id=twcc_id,
            )
            microphone = DownTrack(
                "audio", AUDIO_PT, 48000, pacer.sender(immediate=True), (audio.buffer,), self.counters,
                Forwarder(layers=1, request_keyframe=None), "replay", twcc_extension_id=twcc_id,
            )
            for receiver in video:
                receiver.add_downtrack(camera)
            audio.add_downtrack(microphone)
            forwarder.set_wish(spec.wish)
            camera.bind()
            microphone.bind()
            self.downtracks.append((spec, camera, microphone))
            self.pacers.append(pacer)

    def run(self, packets: list[capture.Recorded], start: float = 0.0) -> None:
        """Feed the recording once; arrival times are the recorded offsets after ``start`` seconds."""
        receivers = self.receivers
        for index, recorded in enumerate(packets):
            packet = recorded.packet
            header = RtpHeader.parse(packet)
            arrival = start + recorded.offset_ms / 1000
            receivers[header.ssrc].on_rtp(packet, header, arrival)
            for spec, camera, _ in self.downtracks:
                for at, action, value in spec.events:
                    if at == index:
                        self._act(camera, action, value, arrival)

    @staticmethod
    def _act(camera: DownTrack, action: str, value: int, now: float) -> None:
        forwarder = camera.forwarder
        if action == "wish":
            forwarder.set_wish(value)
        elif action == "allocate":
            forwarder.allocate(value)
        elif action == "pause":
            forwarder.pause()
        elif action == "nack":
            last = camera._munger.last_sequence_number  # what a subscriber's NACK names: our numbers
            camera.retransmit([(last - n) & 0xFFFF for n in range(value)], now)

    def close(self) -> None:
        for pacer in self.pacers:
            pacer.close()


def load() -> list[capture.Recorded]:
    return list(capture.read(capture.RECORDING))


def digest(subscribers: int = len(SUBSCRIBERS)) -> list[list[bytes]]:
    """Every packet each subscriber is sent for one pass over the recording, as it goes to SRTP."""
    sent: list[list[bytes]] = [[] for _ in range(subscribers)]
    replay = Replay(subscribers, lambda index: sent[index].append)
    replay.run(load())
    replay.close()
    return sent


REFERENCE = Path(__file__).with_name("reference.txt")


def describe(index: int, packet: bytes) -> str:
    """One line for a packet subscriber ``index`` was sent, read by aiortc's RTP parser: the fields, and a hash of all its bytes."""
    from aiortc.rtp import RtpPacket

    rtp = RtpPacket.parse(packet)
    return (
        f"{index} ssrc={rtp.ssrc} pt={rtp.payload_type} seq={rtp.sequence_number} ts={rtp.timestamp} "
        f"marker={rtp.marker} payload={hashlib.sha256(rtp.payload).hexdigest()[:16]} "
        f"bytes={len(packet)}:{hashlib.sha256(packet).hexdigest()}"
    )


def lines(sent: list[list[bytes]]) -> list[str]:
    return [describe(index, packet) for index, packets in enumerate(sent) for packet in packets]


def write_reference(commit: str) -> None:
    """Record what the implementation checked out now sends, as the reference later ones must match."""
    body = lines(digest())
    REFERENCE.write_text(f"# bench/hotpath/replay.py digest of the implementation at {commit}\n" + "\n".join(body) + "\n")


def read_reference() -> list[str]:
    return [line for line in REFERENCE.read_text().splitlines() if not line.startswith("#")]

