"""One subscriber's copy of one track: the sending side.

Its :class:`~mediapod.sfu.forwarder.Forwarder` decides which packets go,
its :class:`~mediapod.sfu.rtpmunger.RtpMunger` gives them our numbers; the
DownTrack writes what the subscriber receives (our SSRC, sequence number,
timestamp and payload type, our own header extensions, the payload
untouched), answers NACKs from the buffers through its Sequencer, sends
sender reports, and ends a muted stream on blank frames.
"""

from __future__ import annotations

import secrets
import struct
import time
from collections.abc import Callable

from mediapod.metrics import MediaCounters
from mediapod.rtp.errors import MalformedPacket
from mediapod.rtp.packet import RTP_HEADER_SIZE, RtpHeader
from mediapod.rtp.rtcp import SenderReport, ntp_now
from mediapod.rtp.rtx import wrap_rtx
from mediapod.sfu.blank import BlankFrames
from mediapod.sfu.buffer import PacketBuffer
from mediapod.sfu.extpacket import ExtPacket, describe_vp8
from mediapod.sfu.forwarder import DROP, FORWARD, SKIP, Forwarder
from mediapod.sfu.rtpmunger import RtpMunger
from mediapod.sfu.sequencer import AUDIO_SIZE, DEFAULT_SIZE, Sequencer

_FIXED = struct.Struct("!BBHII")
_X = 0x10  # header extension bit of the first RTP byte

TWCC_SEQUENCE_OFFSET = RTP_HEADER_SIZE + 5
"""Byte offset of the transport-wide sequence number in a packet we send, plus 4 per CSRC (``packet[0] & 0x0F``).

Our one-byte extension block (RFC 8285 4.2) follows the fixed header and the
CSRCs: ``BE DE 00 01``, the element byte ``(id << 4) | 1``, the 2-byte value
(left 0 for the sender to fill in at send time) and one padding byte. RTX
wrapping keeps the block in front of the original sequence number, so the
offset holds for retransmissions too.
"""


def _twcc_block(extension_id: int | None) -> bytes:
    if extension_id is None:
        return b""
    if not 1 <= extension_id <= 14:
        raise ValueError(f"one-byte header extension ids are 1..14, not {extension_id}")
    return bytes((0xBE, 0xDE, 0x00, 0x01, (extension_id << 4) | 1, 0, 0, 0))


class DownTrack:
    """Sends one published track to one subscriber PeerConnection.

    Video starts on a keyframe and audio on any packet (the Forwarder's
    call); either way the subscriber sees one continuous stream (the
    RtpMunger's job). NACKed packets are resent from the layer's buffer,
    over RTX when the subscriber negotiated it (``rtx_payload_type``).
    ``twcc_extension_id``: the id the subscriber negotiated for
    transport-wide sequence numbers; every packet then carries our
    extension block (see TWCC_SEQUENCE_OFFSET). The publisher's own
    extensions are never forwarded: their ids were negotiated with the
    publisher, not with this subscriber.
    """

    __slots__ = (
        "_blank",
        "_bound",
        "_buffers",
        "_closed",
        "_counters",
        "_decide",
        "_extension_block",
        "_munger",
        "_remember",
        "_rewrites_payload",
        "_rtx_seq",
        "_send",
        "_translate",
        "clock_rate",
        "cname",
        "forwarder",
        "kind",
        "octets_sent",
        "packets_sent",
        "payload_type",
        "rtx_payload_type",
        "rtx_ssrc",
        "sequencer",
        "ssrc",
    )

    def __init__(
        self,
        kind: str,
        payload_type: int,
        clock_rate: int,
        send: Callable[[bytes | bytearray], None],
        buffers: tuple[PacketBuffer, ...],
        counters: MediaCounters,
        forwarder: Forwarder,
        cname: str,
        rtx_payload_type: int | None = None,
        blank: BlankFrames | None = None,
        vp8: bool = False,
        twcc_extension_id: int | None = None,
    ) -> None:
        """vp8: the track is VP8, whose picture ids and TL0PICIDX continue across layer switches."""
        self.ssrc = secrets.randbits(32) or 1
        self.rtx_ssrc = secrets.randbits(32) or 2
        self.payload_type = payload_type
        self.rtx_payload_type = rtx_payload_type
        self.clock_rate = clock_rate
        self.kind = kind
        self.cname = cname
        self.forwarder = forwarder
        self.sequencer = Sequencer(AUDIO_SIZE if kind == "audio" else DEFAULT_SIZE)
        self.packets_sent = 0
        self.octets_sent = 0
        self._send = send
        self._buffers = buffers
        self._counters = counters
        self._blank = blank
        self._munger = RtpMunger(clock_rate, vp8=vp8)
        # Bound once: called for every packet.
        self._decide = forwarder.decide
        self._translate = self._munger.translate
        self._remember = self.sequencer.push
        self._rewrites_payload = vp8
        self._extension_block = _twcc_block(twcc_extension_id)
        self._rtx_seq = secrets.randbits(15)
        self._bound = False
        self._closed = False

    @property
    def bound(self) -> bool:
        """The subscriber negotiated this track and its transport is up: packets for it reach a decoder."""
        return self._bound

    def bind(self) -> None:
        """The subscriber accepted our offer and its transport is up: start forwarding."""
        if self._bound or self._closed:
            return
        self._bound = True
        self.forwarder.start()

    def close(self) -> None:
        self._closed = True
        self._bound = False
        self.forwarder.stop()

    def mute(self) -> None:
        """End the stream on blank frames so the decoder stops clean, then hold until unmuted."""
        blank = self._blank
        if self.forwarder.current_spatial >= 0 and blank is not None:
            now = time.monotonic()
            second = (0x80 if self.kind == "video" else 0) | self.payload_type  # each blank video frame is whole
            b0 = 0x90 if self._extension_block else 0x80
            for payload in blank.payloads:
                seq, ts = self._munger.next_frame(now, blank.frame_ticks)
                self.packets_sent += 1
                self.octets_sent += len(payload)
                self._send(_FIXED.pack(b0, second, seq, ts, self.ssrc) + self._extension_block + payload)
        self.forwarder.set_muted(True)

    def unmute(self) -> None:
        """The publisher unmuted: resume on its next keyframe, continuing our numbering."""
        self.forwarder.set_muted(False)

    def write(self, ext: ExtPacket) -> None:
        """One packet of any layer of the track, as the receiver described it."""
        action = self._decide(ext)
        if action != FORWARD:
            if action == DROP:
                return
            if action == SKIP:
                self._munger.skip(ext)
                return
            self._munger.switch(ext, ext.arrival)
        translated = self._translate(ext)
        if translated is None:
            return
        seq, ts = translated
        header = ext.header
        self._remember(seq, header.sequence_number, ts, ext.layer)
        self.packets_sent += 1
        self.octets_sent += header.payload_end - header.header_size
        self._send(self._munge(ext.packet, header, seq, ts, ext if self._rewrites_payload else None))

    def skip_padding(self, ext: ExtPacket) -> None:
        """A padding-only packet of the track: never sent on, and later packets of the layer sent move down one.

        libwebrtc pads its bandwidth probes on the media SSRC of whatever it
        publishes, audio included (seen from LiveKit's SDK). Padding carries
        nothing a subscriber can use, and to some decoders an empty payload
        is harmful: aiortc's Opus decoder takes it for end of stream and
        decodes nothing after it. The subscriber's own probes are ours to send.
        """
        if ext.layer == self.forwarder.current_spatial:
            self._munger.skip(ext)

    def _munge(
        self, packet: bytes, header: RtpHeader, seq: int, ts: int, ext: ExtPacket | None, retransmission: bool = False
    ) -> bytearray:
        """The packet as this subscriber sees it: our header fields and extensions, the payload (VP8 numbers munged).

        A bytearray, so the sender can write the transport-wide sequence
        number into it when the packet leaves.
        """
        b0 = packet[0]
        block = self._extension_block
        if block or b0 & _X:
            csrc_end = RTP_HEADER_SIZE + 4 * (b0 & 0x0F)
            out = bytearray(packet[:csrc_end] + block + packet[header.header_size :])
            b0 = b0 | _X if block else b0 & ~_X
            payload_start = csrc_end + len(block)
        else:
            out = bytearray(packet)
            payload_start = header.header_size
        _FIXED.pack_into(out, 0, b0, (0x80 if header.marker else 0) | self.payload_type, seq, ts, self.ssrc)
        if ext is not None:
            self._munger.rewrite_payload(out, payload_start, ext, retransmission)
        return out

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
            # layer left since keeps the publisher's numbering. Its facts are
            # read again: a NACK is rare, the hot path keeps none per packet.
            ext = None
            if self._rewrites_payload and layer == self.forwarder.current_spatial:
                ext = describe_vp8(packet, header, now, layer, source_seq)
            out: bytes | bytearray = self._munge(packet, header, seq, ts, ext, retransmission=True)
            if self.rtx_payload_type is not None:
                self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
                out = wrap_rtx(bytes(out), RtpHeader.parse(out), self.rtx_payload_type, self._rtx_seq, self.rtx_ssrc)
            counters.retransmitted_packets += 1
            counters.retransmitted_bytes += len(out)
            self._send(out)

    def padding_packet(self, size: int) -> bytearray:
        """A padding-only packet of ``size`` bytes (at most 255 of padding) on our RTX stream, for bandwidth probes.

        RTX keeps probes out of the media's sequence numbers; a receiver
        drops an RTX packet with no payload (libwebrtc does) after counting
        it for transport-wide feedback, which is all a probe needs.
        """
        assert self.rtx_payload_type is not None, "padding needs an RTX stream"
        block = self._extension_block
        padding = max(1, min(255, size - RTP_HEADER_SIZE - len(block)))
        self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
        b0 = 0xA0 | (_X if block else 0)  # version 2, padding
        out = bytearray(_FIXED.pack(b0, self.rtx_payload_type, self._rtx_seq, self._munger.last_timestamp, self.rtx_ssrc))
        out += block
        out += bytes(padding - 1)
        out.append(padding)
        return out

    def sender_report(self) -> SenderReport | None:
        """An SR mapping now to our RTP clock, extrapolated from the last packet sent."""
        if self.packets_sent == 0:
            return None
        return SenderReport(
            ssrc=self.ssrc,
            ntp_timestamp=ntp_now(),
            rtp_timestamp=self._munger.rtp_time(time.monotonic()),
            packet_count=self.packets_sent & 0xFFFFFFFF,
            octet_count=self.octets_sent & 0xFFFFFFFF,
            reports=[],
        )
