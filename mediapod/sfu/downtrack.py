"""One subscriber's copy of one track: header rewriting and sender reports.

The subscriber sees a stream of our own: our SSRC, a sequence number and
timestamp space that starts at random and has no gaps we made, and the
payload type it negotiated. The payload is forwarded untouched.
"""

from __future__ import annotations

import secrets
import struct
import time
from collections.abc import Callable

from mediapod.rtp.packet import RTP_HEADER_SIZE, RtpHeader
from mediapod.rtp.rtcp import SenderReport, ntp_now

_FIXED = struct.Struct("!BBHII")

# While a video DownTrack waits for its first keyframe, re-ask this often in
# case the first request or the keyframe itself was lost.
KEYFRAME_RETRY_INTERVAL = 1.0


class DownTrack:
    """Forwards one TrackReceiver's packets to one subscriber PeerConnection.

    Video starts on a keyframe so the subscriber's decoder never sees a frame
    it cannot decode; audio starts on any packet. Once started, output
    sequence number and timestamp are the input's plus fixed offsets, so input
    gaps stay gaps (the subscriber may NACK them) and nothing else is added.
    """

    __slots__ = (
        "ssrc", "payload_type", "clock_rate", "kind", "_send", "_is_keyframe", "_request_keyframe",
        "_started", "_bound", "_closed", "_seq_offset", "_ts_offset", "_last_seq", "_last_ts",
        "_last_sent_at", "packets_sent", "octets_sent", "_last_keyframe_ask", "cname",
    )

    def __init__(
        self,
        kind: str,
        payload_type: int,
        clock_rate: int,
        send: Callable[[bytes], None],
        is_keyframe: Callable[[bytes], bool] | None,
        request_keyframe: Callable[[], bool],
        cname: str,
    ) -> None:
        self.ssrc = secrets.randbits(32) or 1
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.kind = kind
        self.cname = cname
        self._send = send
        self._is_keyframe = is_keyframe
        self._request_keyframe = request_keyframe
        self._started = False
        self._bound = False
        self._closed = False
        self._seq_offset = 0
        self._ts_offset = 0
        self._last_seq = secrets.randbits(15)  # room below 2^16 avoids an early wrap
        self._last_ts = secrets.randbits(32)
        self._last_sent_at = 0.0
        self._last_keyframe_ask = 0.0
        self.packets_sent = 0
        self.octets_sent = 0

    @property
    def started(self) -> bool:
        return self._started

    def bind(self) -> None:
        """The subscriber accepted our offer and its transport is up: start forwarding."""
        if self._bound or self._closed:
            return
        self._bound = True
        if self._is_keyframe is not None:
            self._last_keyframe_ask = time.monotonic()
            self._request_keyframe()

    def resume_on_keyframe(self) -> None:
        """Wait for the next keyframe again, continuing our numbering without a gap."""
        self._started = False

    def close(self) -> None:
        self._closed = True
        self._bound = False

    def write(self, packet: bytes, header: RtpHeader) -> None:
        if not self._bound:
            return
        if not self._started:
            if not self._start(packet, header):
                return
        seq = (header.sequence_number + self._seq_offset) & 0xFFFF
        ts = (header.timestamp + self._ts_offset) & 0xFFFFFFFF
        b0 = packet[0]
        if b0 & 0x10:
            # Strip the publisher's header extensions: their ids were
            # negotiated with the publisher, not with this subscriber.
            csrc_end = RTP_HEADER_SIZE + 4 * (b0 & 0x0F)
            out = bytearray(packet[: csrc_end])
            out += memoryview(packet)[header.header_size :]
            b0 &= ~0x10
        else:
            out = bytearray(packet)
        _FIXED.pack_into(out, 0, b0, (0x80 if header.marker else 0) | self.payload_type, seq, ts, self.ssrc)
        self._last_seq = seq
        self._last_ts = ts
        self._last_sent_at = time.monotonic()
        self.packets_sent += 1
        self.octets_sent += header.payload_end - header.header_size
        self._send(bytes(out))

    def _start(self, packet: bytes, header: RtpHeader) -> bool:
        is_keyframe = self._is_keyframe
        if is_keyframe is not None and not is_keyframe(packet[header.header_size : header.payload_end]):
            now = time.monotonic()
            if now - self._last_keyframe_ask > KEYFRAME_RETRY_INTERVAL:
                self._last_keyframe_ask = now
                self._request_keyframe()
            return False
        # Continue our own numbering one step after what we last sent.
        self._seq_offset = (self._last_seq + 1 - header.sequence_number) & 0xFFFF
        self._ts_offset = (self._last_ts + 1 - header.timestamp) & 0xFFFFFFFF
        self._started = True
        return True

    def sender_report(self) -> SenderReport | None:
        """An SR mapping now to our RTP clock, extrapolated from the last packet sent."""
        if not self._started:
            return None
        elapsed = time.monotonic() - self._last_sent_at
        rtp_now = (self._last_ts + int(elapsed * self.clock_rate)) & 0xFFFFFFFF
        return SenderReport(
            ssrc=self.ssrc,
            ntp_timestamp=ntp_now(),
            rtp_timestamp=rtp_now,
            packet_count=self.packets_sent & 0xFFFFFFFF,
            octet_count=self.octets_sent & 0xFFFFFFFF,
            reports=[],
        )
