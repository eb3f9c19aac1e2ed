"""The last packets of one received stream, kept for retransmission.

A fixed ring indexed by sequence number: storing a packet is one slot write,
finding one is one slot read plus a check that the slot still holds that
sequence number (a newer packet 'capacity' numbers later overwrites it).
"""

from __future__ import annotations

from mediapod.rtp.packet import extend_sequence_number

# LiveKit keeps 500 video and 200 audio packets: about a second of 2.5 Mbps
# video, enough to answer NACKs from subscribers a few RTTs away.
VIDEO_CAPACITY = 500
AUDIO_CAPACITY = 200


class PacketBuffer:
    """Ring of recent RTP packets of one SSRC, by sequence number."""

    __slots__ = ("capacity", "_highest", "_packets", "_sequence")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._highest: int | None = None
        self._packets: list[bytes | None] = [None] * capacity
        # Extended sequence numbers, so the ring stays full across the wrap.
        self._sequence: list[int] = [-1] * capacity

    def _extend(self, sequence_number: int) -> int:
        return sequence_number if self._highest is None else extend_sequence_number(self._highest, sequence_number)

    def put(self, sequence_number: int, packet: bytes) -> None:
        extended = self._extend(sequence_number)
        if self._highest is None or extended > self._highest:
            self._highest = extended
        index = extended % self.capacity
        self._packets[index] = packet
        self._sequence[index] = extended

    def get(self, sequence_number: int) -> bytes | None:
        extended = self._extend(sequence_number)
        index = extended % self.capacity
        if self._sequence[index] != extended:
            return None
        return self._packets[index]

    def __contains__(self, sequence_number: int) -> bool:
        extended = self._extend(sequence_number)
        return self._sequence[extended % self.capacity] == extended
