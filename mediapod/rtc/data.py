"""Data packets in a room: what a participant sends on its data channels, and who gets it.

The room routes ``DataMessage``s and never reads a wire format: each front
end brings a ``DataCodec`` that turns what its clients put on a data channel
into a message (sender fields set by the server, never trusted from the
client) and back. A message keeps the frame it arrived in, so a recipient
of the same front end gets it untouched (LiveKit's RPC and stream packets,
which the room has no reason to understand, pass through as they came).

Every participant has the two channels LiveKit's clients use: ``_reliable``
(ordered, retransmitted) and ``_lossy`` (unordered, never retransmitted).
Clients open theirs on the publisher PeerConnection; the pod opens its own
on the subscriber PeerConnection and sends on those, as a LiveKit server does.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

from mediapod.transport.sctp import ChannelSpec

RELIABLE_LABEL = "_reliable"
LOSSY_LABEL = "_lossy"
DATA_LABELS: frozenset[str] = frozenset({RELIABLE_LABEL, LOSSY_LABEL})
# The channels the pod opens on every subscriber PeerConnection.
SERVER_CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec(RELIABLE_LABEL),
    ChannelSpec(LOSSY_LABEL, ordered=False, max_retransmits=0),
)

# What one participant may send into a room: enough for chat, RPC, text
# streams and agents' transcripts, not enough to drown everyone it reaches.
MESSAGES_PER_SECOND = 500
BYTES_PER_SECOND = 4 * 1024 * 1024


class DataKind(enum.Enum):
    """A message's delivery guarantee, which is also the channel it travels on."""

    RELIABLE = RELIABLE_LABEL
    LOSSY = LOSSY_LABEL

    @property
    def label(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class DataMessage:
    """One data packet on its way through a room.

    ``sender_sid`` is empty for a message from the server API. An empty
    ``destination_identities`` means everyone but the sender. ``frame`` is the
    packet as its sender's front end framed it (sender fields already set),
    in ``frame_format``; ``payload`` and ``topic`` are what a front end with
    another framing delivers.
    """

    kind: DataKind
    sender_identity: str
    sender_sid: str
    payload: bytes
    topic: str = ""
    destination_identities: frozenset[str] = frozenset()
    frame: bytes = b""
    frame_format: str = ""


class DataCodec(Protocol):
    """How one front end's clients frame data packets on their data channels."""

    format: str

    def decode(self, frame: bytes, kind: DataKind, sender_identity: str, sender_sid: str) -> DataMessage | None:
        """The message a client sent, its sender fields set from the server's knowledge; None if malformed."""
        ...

    def encode(self, message: DataMessage) -> bytes:
        """The frame a client of this front end expects for a message from elsewhere."""
        ...


class RawDataCodec:
    """The framing of clients with no data protocol (our gRPC clients): a frame is its payload, for everyone."""

    format = "raw"

    def decode(self, frame: bytes, kind: DataKind, sender_identity: str, sender_sid: str) -> DataMessage | None:
        return DataMessage(kind, sender_identity, sender_sid, frame, frame=frame, frame_format=self.format)

    def encode(self, message: DataMessage) -> bytes:
        return message.payload


class DataRateLimit:
    """A token bucket on one sender's messages and bytes; a second's worth of burst."""

    __slots__ = ("_messages", "_bytes", "_last", "_messages_per_second", "_bytes_per_second")

    def __init__(self, messages_per_second: float = MESSAGES_PER_SECOND, bytes_per_second: float = BYTES_PER_SECOND) -> None:
        self._messages_per_second = messages_per_second
        self._bytes_per_second = bytes_per_second
        self._messages = messages_per_second
        self._bytes = bytes_per_second
        self._last: float | None = None

    def allow(self, size: int, now: float) -> bool:
        """Whether a message of size bytes, sent at now (monotonic seconds), is within the rate."""
        if self._last is not None:
            elapsed = max(0.0, now - self._last)
            self._messages = min(self._messages_per_second, self._messages + elapsed * self._messages_per_second)
            self._bytes = min(self._bytes_per_second, self._bytes + elapsed * self._bytes_per_second)
        self._last = now
        if self._messages < 1 or self._bytes < size:
            return False
        self._messages -= 1
        self._bytes -= size
        return True


class Addressable(Protocol):
    sid: str
    identity: str


P = TypeVar("P", bound=Addressable)


def recipients(message: DataMessage, participants: Iterable[P]) -> Iterator[P]:
    """Who gets a message: never its sender; only the named identities if it names any."""
    wanted = message.destination_identities
    for participant in participants:
        if message.sender_sid and participant.sid == message.sender_sid:
            continue
        if wanted and participant.identity not in wanted:
            continue
        yield participant
