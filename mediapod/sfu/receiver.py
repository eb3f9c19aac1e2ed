"""The receive side of one published track: reception statistics and fan-out.

A TrackReceiver sees every RTP packet of its track once, updates the numbers a
receiver report needs (RFC 3550 A.3, A.8), works out the packet's facts once
(an ExtPacket: extended sequence number, keyframe, temporal layer, VP8
fields) and hands that to each DownTrack. Keyframe requests toward the
publisher go through here so they are throttled per track, whoever asks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from mediapod.rtp.codecs import KEYFRAME_DETECTORS
from mediapod.rtp.packet import RtpHeader
from mediapod.rtp.rtcp import ReceptionReport, SenderReport, ntp_middle32
from mediapod.sfu.buffer import AUDIO_CAPACITY, VIDEO_CAPACITY, PacketBuffer
from mediapod.sfu.extpacket import describer_for
from mediapod.sfu.nack import NackGenerator

if TYPE_CHECKING:
    from mediapod.sfu.downtrack import DownTrack

# One keyframe request per track per half second (LiveKit's throttle): a burst
# of subscribers joining or losing packets must not make the encoder emit a
# keyframe per request.
KEYFRAME_REQUEST_INTERVAL = 0.5
# A stream's bitrate is measured over windows of this many seconds...
BITRATE_WINDOW = 0.5
# ...and a stream that sent nothing for this long is taken as stopped.
STOPPED_AFTER = 1.0


class ReceptionStats:
    """Sequence and jitter bookkeeping for receiver reports (RFC 3550 A.1, A.8)."""

    __slots__ = (
        "clock_rate", "base_seq", "max_seq", "cycles", "received", "expected_prior", "received_prior",
        "jitter", "_last_transit", "last_sr_ntp", "last_sr_at", "started",
    )

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.base_seq = 0
        self.max_seq = 0
        self.cycles = 0
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.jitter = 0.0
        self._last_transit: float | None = None
        self.last_sr_ntp = 0
        self.last_sr_at = 0.0
        self.started = False

    def update(self, seq: int, timestamp: int, arrival: float) -> int:
        """Count a packet; its extended sequence number (cycles counted past 16 bits)."""
        if not self.started:
            self.started = True
            self.base_seq = self.max_seq = seq
            extended = seq
        else:
            max_seq = self.max_seq
            delta = (seq - max_seq) & 0xFFFF
            if 0 < delta < 0x8000:
                if seq < max_seq:
                    self.cycles += 0x10000
                self.max_seq = seq
                extended = self.cycles + seq
            else:
                # Late: in the cycle that puts it just below the highest.
                extended = self.cycles + seq - (0x10000 if seq > max_seq else 0)
        self.received += 1
        transit = arrival * self.clock_rate - timestamp
        if self._last_transit is not None:
            d = abs(transit - self._last_transit)
            self.jitter += (d - self.jitter) / 16.0
        self._last_transit = transit
        return extended

    def on_sender_report(self, sr: SenderReport, now: float) -> None:
        self.last_sr_ntp = sr.ntp_timestamp
        self.last_sr_at = now

    def report(self, ssrc: int, now: float) -> ReceptionReport:
        """A report block for ssrc; advances the interval used for fraction lost."""
        extended_max = self.cycles + self.max_seq
        expected = extended_max - self.base_seq + 1
        lost = max(min(expected - self.received, 0x7FFFFF), -0x800000)
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior, self.received_prior = expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = 0 if expected_interval <= 0 or lost_interval <= 0 else (lost_interval << 8) // expected_interval
        dlsr = int((now - self.last_sr_at) * 65536) if self.last_sr_ntp else 0
        return ReceptionReport(
            ssrc=ssrc,
            fraction_lost=min(fraction, 255),
            packets_lost=lost,
            highest_sequence=extended_max & 0xFFFFFFFF,
            jitter=int(self.jitter),
            lsr=ntp_middle32(self.last_sr_ntp) if self.last_sr_ntp else 0,
            dlsr=dlsr & 0xFFFFFFFF,
        )


class TrackReceiver:
    """Fan-out point of one published stream: a track, or one simulcast layer of it.

    Every packet is kept in ``buffer`` for retransmission to subscribers.
    With ``on_gap`` set (the publisher negotiated NACK), sequence gaps are
    tracked by a NackGenerator and on_gap(self) wakes the connection's
    NackScheduler; duplicates (a retransmission of something already here)
    are dropped. ``send_pli`` carries a keyframe request to the publisher,
    after ``request_keyframe`` has throttled it.
    """

    def __init__(
        self,
        track_sid: str,
        kind: str,
        mime_type: str,
        clock_rate: int,
        ssrc: int,
        send_pli: Callable[[int], None],
        on_gap: Callable[[TrackReceiver], None] | None = None,
        layer: int = 0,
    ) -> None:
        self.track_sid = track_sid
        self.kind = kind
        self.mime_type = mime_type
        self.clock_rate = clock_rate
        self.ssrc = ssrc
        # Streams whose keyframes we can see start on one, and PLIs for them make sense.
        self.has_keyframes = mime_type.lower() in KEYFRAME_DETECTORS
        self._describe = describer_for(mime_type)
        self.layer = layer  # simulcast spatial layer, 0 = lowest (or the only one)
        self.stats = ReceptionStats(clock_rate)
        self.buffer = PacketBuffer(VIDEO_CAPACITY if kind == "video" else AUDIO_CAPACITY)
        self._nacks = NackGenerator() if on_gap is not None else None
        self._on_gap = on_gap
        self._downtracks: tuple[DownTrack, ...] = ()
        self._send_pli = send_pli
        self._last_keyframe_request = 0.0
        self.muted = False
        # Received bytes and the bitrate measured from them (see bitrate_bps).
        self.octets = 0
        self.last_arrival = 0.0
        self._rate_bps = 0.0
        self._rate_at = 0.0
        self._rate_octets = 0

    def add_downtrack(self, downtrack: DownTrack) -> None:
        # A tuple swapped on change keeps per-packet iteration allocation-free
        # and safe against subscribers joining mid-iteration.
        self._downtracks = (*self._downtracks, downtrack)

    def remove_downtrack(self, downtrack: DownTrack) -> None:
        self._downtracks = tuple(d for d in self._downtracks if d is not downtrack)

    def on_rtp(self, packet: bytes, header: RtpHeader, arrival: float) -> None:
        sequence_number = header.sequence_number
        buffer = self.buffer
        if sequence_number in buffer:
            return  # a duplicate: retransmitted after it arrived anyway
        buffer.put(sequence_number, packet)
        self.octets += len(packet)
        self.last_arrival = arrival
        if not self._rate_at:
            self._rate_at = arrival  # the first window starts with the first packet
        extended = self.stats.update(sequence_number, header.timestamp, arrival)
        nacks = self._nacks
        if nacks is not None and nacks.on_packet(sequence_number, arrival) and self._on_gap is not None:
            self._on_gap(self)
        downtracks = self._downtracks
        if self.muted or not downtracks:
            return
        ext = self._describe(packet, header, arrival, self.layer, extended)
        if header.payload_end == header.header_size:
            for downtrack in downtracks:
                downtrack.skip_padding(ext)
            return
        for downtrack in downtracks:
            downtrack.write(ext)

    def bitrate_bps(self, now: float) -> float:
        """What this stream carries, for the StreamAllocator: bits over the last window, smoothed; 0 once it stops.

        Measured when asked (every subscriber's allocator asks, at most a few
        times a second), not per packet. A keyframe makes one window jump, so
        each new window counts half. A stream silent for STOPPED_AFTER is not
        being sent: its layer cannot be chosen.
        """
        if not self.octets or now - self.last_arrival > STOPPED_AFTER:
            return 0.0
        elapsed = now - self._rate_at
        measured = 8 * (self.octets - self._rate_octets) / elapsed if elapsed > 0 else 0.0
        if elapsed < BITRATE_WINDOW:
            # A stream younger than one window: what it sent so far is the best guess.
            return self._rate_bps or measured
        self._rate_bps = (self._rate_bps + measured) / 2 if self._rate_bps else measured
        self._rate_at, self._rate_octets = now, self.octets
        return self._rate_bps

    def due_nacks(self, now: float) -> tuple[list[int], int]:
        """Sequence numbers to NACK now, and how many missing packets were just given up on.

        Giving up on a video packet leaves a frame the decoder cannot use and
        breaks every frame after it, so a keyframe is requested right away.
        """
        nacks = self._nacks
        if nacks is None:
            return [], 0
        lost_before = nacks.lost
        due = nacks.due(now)
        given_up = nacks.lost - lost_before
        if given_up:
            self.request_keyframe()
        return due, given_up

    def next_nack_due(self) -> float | None:
        """When the earliest missing packet is due for a (re-)NACK; None when nothing is missing."""
        return self._nacks.next_due() if self._nacks is not None else None

    def set_muted(self, muted: bool) -> None:
        """Stop fan-out while muted (after blank frames); on unmute every DownTrack resumes on a keyframe."""
        if muted == self.muted:
            return
        self.muted = muted
        if muted:
            for downtrack in self._downtracks:
                downtrack.mute()
        else:
            for downtrack in self._downtracks:
                downtrack.unmute()
            self.request_keyframe()

    def request_keyframe(self) -> bool:
        """Ask the publisher for a keyframe unless one was asked for very recently."""
        if not self.has_keyframes:
            return False
        now = time.monotonic()
        if now - self._last_keyframe_request < KEYFRAME_REQUEST_INTERVAL:
            return False
        self._last_keyframe_request = now
        self._send_pli(self.ssrc)
        return True

    def close(self) -> None:
        for downtrack in self._downtracks:
            downtrack.close()
        self._downtracks = ()
