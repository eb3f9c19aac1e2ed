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

from mediapod.metrics import MediaCounters
from mediapod.rtp.codecs import parse_vp8
from mediapod.rtp.errors import MalformedPacket
from mediapod.rtp.packet import RTP_HEADER_SIZE, RtpHeader
from mediapod.rtp.rtcp import SenderReport, ntp_now
from mediapod.rtp.rtx import wrap_rtx
from mediapod.sfu.blank import BlankFrames
from mediapod.sfu.buffer import PacketBuffer
from mediapod.sfu.sequencer import Sequencer
from mediapod.sfu.vp8munger import Vp8Munger

_FIXED = struct.Struct("!BBHII")

# While a video DownTrack waits for its first keyframe, re-ask this often in
# case the first request or the keyframe itself was lost.
KEYFRAME_RETRY_INTERVAL = 1.0
# VP8 temporal layers are 0..2 in practice; this value forwards them all.
MAX_TEMPORAL_LAYER = 2


class DownTrack:
    """Forwards one published track to one subscriber PeerConnection.

    Video starts on a keyframe so the subscriber's decoder never sees a frame
    it cannot decode; audio starts on any packet. For simulcast tracks the
    DownTrack hears every layer and forwards one: it moves to ``target_layer``
    only on a keyframe of that layer (the Forwarder role in LiveKit's terms).
    Each (re)start continues our sequence numbers one past the last sent and
    our clock by the time that passed, so the subscriber sees one continuous
    stream; within a layer, output = input + fixed offsets, so input gaps stay
    gaps the subscriber may NACK. NACKed packets are resent from the layer's
    buffer, over RTX when the subscriber negotiated it (``rtx_payload_type``).
    """

    __slots__ = (
        "ssrc", "rtx_ssrc", "payload_type", "rtx_payload_type", "clock_rate", "kind", "_send", "_buffers",
        "_counters", "_is_keyframe", "_request_keyframe", "_layer", "_target_layer", "_max_temporal", "_bound",
        "_closed", "_seq_offset", "_ts_offset", "_last_seq", "_last_ts", "_rtx_seq", "_last_sent_at",
        "packets_sent", "octets_sent", "_last_keyframe_ask", "cname", "sequencer", "_blank", "_vp8",
    )

    def __init__(
        self,
        kind: str,
        payload_type: int,
        clock_rate: int,
        send: Callable[[bytes], None],
        buffers: tuple[PacketBuffer, ...],
        counters: MediaCounters,
        is_keyframe: Callable[[bytes], bool] | None,
        request_keyframe: Callable[[int], bool],
        cname: str,
        rtx_payload_type: int | None = None,
        blank: BlankFrames | None = None,
        vp8: bool = False,
    ) -> None:
        """vp8: the track is VP8, whose picture ids and TL0PICIDX continue across layer switches."""
        self.ssrc = secrets.randbits(32) or 1
        self.rtx_ssrc = secrets.randbits(32) or 2
        self.payload_type = payload_type
        self.rtx_payload_type = rtx_payload_type
        self._buffers = buffers
        self._counters = counters
        self._blank = blank
        self._vp8 = Vp8Munger() if vp8 else None
        self.sequencer = Sequencer()
        self._rtx_seq = secrets.randbits(15)
        self.clock_rate = clock_rate
        self.kind = kind
        self.cname = cname
        self._send = send
        self._is_keyframe = is_keyframe
        self._request_keyframe = request_keyframe
        self._layer = -1  # layer being forwarded; -1 until synced on a (key)frame
        self._target_layer = len(buffers) - 1  # best quality unless the subscriber asks less
        self._max_temporal = MAX_TEMPORAL_LAYER
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
        return self._layer >= 0

    @property
    def current_layer(self) -> int:
        return self._layer

    @property
    def target_layer(self) -> int:
        return self._target_layer

    def bind(self) -> None:
        """The subscriber accepted our offer and its transport is up: start forwarding."""
        if self._bound or self._closed:
            return
        self._bound = True
        self._ask_keyframe(time.monotonic())

    def set_target_layer(self, layer: int, max_temporal: int = MAX_TEMPORAL_LAYER) -> None:
        """Forward ``layer`` (clamped to what exists) from its next keyframe on."""
        layer = max(0, min(layer, len(self._buffers) - 1))
        self._max_temporal = max_temporal
        if layer == self._target_layer:
            return
        self._target_layer = layer
        if self._bound and layer != self._layer:
            self._ask_keyframe(time.monotonic())

    def resume_on_keyframe(self) -> None:
        """Wait for the next keyframe again, continuing our numbering without a gap."""
        self._layer = -1

    def mute(self) -> None:
        """End the stream on blank frames so the decoder stops clean, then hold until a keyframe."""
        blank = self._blank
        if self._layer >= 0 and self._bound and blank is not None:
            now = time.monotonic()
            ts = (self._last_ts + max(1, int((now - self._last_sent_at) * self.clock_rate))) & 0xFFFFFFFF
            marker = self.kind == "video"  # each blank video frame is one whole frame
            for payload in blank.payloads:
                seq = (self._last_seq + 1) & 0xFFFF
                header = _FIXED.pack(0x80, (0x80 if marker else 0) | self.payload_type, seq, ts, self.ssrc)
                self._last_seq, self._last_ts, self._last_sent_at = seq, ts, now
                self.packets_sent += 1
                self.octets_sent += len(payload)
                self._send(header + payload)
                ts = (ts + blank.frame_ticks) & 0xFFFFFFFF
        self._layer = -1

    def close(self) -> None:
        self._closed = True
        self._bound = False

    def write(self, packet: bytes, header: RtpHeader, layer: int = 0) -> None:
        if not self._bound:
            return
        if layer != self._layer and not self._switch(packet, header, layer):
            return
        if self._max_temporal < MAX_TEMPORAL_LAYER and self._above_temporal_limit(packet, header):
            # Dropped frames must not look lost: later packets move down one number.
            self._seq_offset = (self._seq_offset - 1) & 0xFFFF
            return
        seq = (header.sequence_number + self._seq_offset) & 0xFFFF
        ts = (header.timestamp + self._ts_offset) & 0xFFFFFFFF
        advances = ((seq - self._last_seq) & 0xFFFF) < 0x8000
        if advances:
            # Not a late packet filling an older hole: it moves the stream on.
            self._last_seq = seq
            self._last_ts = ts
            self._last_sent_at = time.monotonic()
        self.sequencer.push(seq, header.sequence_number, ts, layer)
        self.packets_sent += 1
        self.octets_sent += header.payload_end - header.header_size
        self._send(self._munge(packet, header, seq, ts, vp8_advances=advances))

    def _switch(self, packet: bytes, header: RtpHeader, layer: int) -> bool:
        """Start forwarding ``layer`` if it is the target and this packet may start it."""
        if layer != self._target_layer:
            return False
        is_keyframe = self._is_keyframe
        if is_keyframe is not None and not is_keyframe(packet[header.header_size : header.payload_end]):
            now = time.monotonic()
            if now - self._last_keyframe_ask > KEYFRAME_RETRY_INTERVAL:
                self._ask_keyframe(now)
            return False
        if self._layer >= 0:
            self._counters.layer_switches += 1
        # Continue our own numbering one step after what we last sent, and our
        # clock by the time that passed, so a resumed stream plays in real time.
        ticks = 1
        if self._last_sent_at:
            ticks = max(1, int((time.monotonic() - self._last_sent_at) * self.clock_rate))
        self._seq_offset = (self._last_seq + 1 - header.sequence_number) & 0xFFFF
        self._ts_offset = (self._last_ts + ticks - header.timestamp) & 0xFFFFFFFF
        if self._vp8 is not None:
            self._vp8.switch(packet, header.header_size, header.payload_end)
        self._layer = layer
        return True

    def _above_temporal_limit(self, packet: bytes, header: RtpHeader) -> bool:
        try:
            tid = parse_vp8(packet[header.header_size : header.payload_end]).tid
        except MalformedPacket:
            return False
        return tid is not None and tid > self._max_temporal

    def _ask_keyframe(self, now: float) -> None:
        if self._is_keyframe is not None:
            self._last_keyframe_ask = now
            self._request_keyframe(self._target_layer)

    def _munge(
        self, packet: bytes, header: RtpHeader, seq: int, ts: int, *, vp8: bool = True, vp8_advances: bool = False
    ) -> bytes:
        """The packet as this subscriber sees it: our SSRC, seq, timestamp, payload type (and VP8 picture ids)."""
        b0 = packet[0]
        if b0 & 0x10:
            # Strip the publisher's header extensions: their ids were
            # negotiated with the publisher, not with this subscriber.
            csrc_end = RTP_HEADER_SIZE + 4 * (b0 & 0x0F)
            out = bytearray(packet[:csrc_end])
            out += memoryview(packet)[header.header_size :]
            b0 &= ~0x10
        else:
            out = bytearray(packet)
        _FIXED.pack_into(out, 0, b0, (0x80 if header.marker else 0) | self.payload_type, seq, ts, self.ssrc)
        if vp8 and self._vp8 is not None:
            start = len(out) - (len(packet) - header.header_size)
            self._vp8.munge(out, start, start + header.payload_end - header.header_size, vp8_advances)
        return bytes(out)

    def retransmit(self, lost: list[int], now: float) -> None:
        """Answer a subscriber's NACK from the buffer, once per RTT window per packet."""
        counters = self._counters
        for seq in lost:
            found = self.sequencer.lookup_for_retransmit(seq, now)
            if found is None:
                continue
            source_seq, ts, layer = found
            packet = self._buffers[layer].get(source_seq)
            if packet is None:
                counters.nack_misses += 1
                continue
            try:
                header = RtpHeader.parse(packet)
            except MalformedPacket:
                continue
            # The picture-id offsets are the current layer's; a packet of a
            # layer left since keeps the publisher's numbering.
            out = self._munge(packet, header, seq, ts, vp8=layer == self._layer)
            if self.rtx_payload_type is not None:
                self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
                out = wrap_rtx(out, RtpHeader.parse(out), self.rtx_payload_type, self._rtx_seq, self.rtx_ssrc)
            counters.retransmitted_packets += 1
            counters.retransmitted_bytes += len(out)
            self._send(out)

    def sender_report(self) -> SenderReport | None:
        """An SR mapping now to our RTP clock, extrapolated from the last packet sent."""
        if self.packets_sent == 0:
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
