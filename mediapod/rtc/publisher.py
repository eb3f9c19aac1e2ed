"""The publisher PeerConnection of a participant: the client offers, we answer.

Incoming RTP is routed to a TrackReceiver by SSRC, learned from the offer's
``a=ssrc`` lines or, for senders that signal none, from the RFC 8843 mid
header extension of the first packet.
"""

from __future__ import annotations

import asyncio
import secrets
import struct
import time
from collections.abc import Callable

from mediapod.rtc.context import MediaContext
from mediapod.rtc.sdp import (
    AUDIO_LEVEL_URI,
    MID_URI,
    REPAIRED_RID_URI,
    RID_URI,
    TRANSPORT_CC_URI,
    AnswerMedia,
    MediaDescription,
    SessionDescription,
    write_answer,
)
from mediapod.rtc.speaker import AudioLevelTap
from mediapod.rtp.errors import MalformedPacket
from mediapod.rtp.packet import RtpHeader, get_header_extension
from mediapod.rtp.rtcp import (
    Nack,
    PictureLossIndication,
    ReceiverReport,
    RtcpPacket,
    SenderReport,
)
from mediapod.rtp.rtx import unwrap_rtx
from mediapod.sfu.nack import NackScheduler
from mediapod.sfu.receiver import TrackReceiver
from mediapod.sfu.twcc_feedback import TwccRecorder
from mediapod.transport.peer import TransportState
from mediapod.transport.sctp import DEFAULT_SCTP_PORT

_SSRC = struct.Struct("!I")
_U16 = struct.Struct("!H")

# How often a publisher hears TWCC feedback while it sends (libwebrtc: every 50-250 ms).
TWCC_FEEDBACK_INTERVAL = 0.05


class PublisherConnection:
    """Receives a participant's published media and feeds its TrackReceivers."""

    def __init__(
        self,
        context: MediaContext,
        on_state: Callable[[TransportState], None],
        on_unknown_ssrc: Callable[[int, float], None],
        on_data: Callable[[str, bytes], None] | None = None,
    ) -> None:
        self._context = context
        self._counters = context.counters
        self._on_unknown_ssrc = on_unknown_ssrc
        self.transport = context.new_transport(self._on_rtp, self._on_rtcp, on_state, on_data)
        self.rtcp_ssrc = secrets.randbits(32) or 1
        self._by_ssrc: dict[int, TrackReceiver] = {}
        self._by_mid: dict[tuple[str, str], TrackReceiver] = {}  # (mid, rid) -> receiver
        self._mid_extension_id: int | None = None
        self._rid_extension_id: int | None = None
        self._repaired_rid_extension_id: int | None = None
        self._rtx_by_mid: dict[tuple[str, str], tuple[TrackReceiver, int]] = {}  # (mid, rid) -> RTX target
        self._audio_levels: dict[TrackReceiver, AudioLevelTap] = {}
        self._rtx: dict[int, tuple[TrackReceiver, int]] = {}  # RTX SSRC -> (receiver, primary payload type)
        # Uplink loss recovery for every stream of this connection (receivers wake it on gaps).
        self.nacks = NackScheduler(self._send_nack, self._count_lost)
        # Congestion feedback: arrivals of transport-wide sequence numbers, reported on a timer while packets come.
        # The recorder (32 KB of rings) exists once a track negotiates the extension: every participant has
        # a publisher connection, and most (subscribers only) never publish on it.
        self._twcc_extension_id: int | None = None
        self._twcc: TwccRecorder | None = None
        self._twcc_timer: asyncio.TimerHandle | None = None

    def answer(self, offer: SessionDescription, answers: list[AnswerMedia]) -> str:
        """Apply an offer whose m-lines were already matched to tracks; return our answer."""
        first = next((a.offer for a in answers if a.accepted), None)
        if first is not None:
            self.transport.set_remote_parameters(first.ice_ufrag, first.fingerprints)
        data = next((a.offer for a in answers if a.data_channels), None)
        if data is not None:
            self.transport.accept_data_channels(data.sctp_port or DEFAULT_SCTP_PORT)
        local = self._context.local_parameters(self.transport.ice)
        return write_answer(offer, answers, local, self._context.congestion_control)

    def add_receiver(
        self, media: MediaDescription, receiver: TrackReceiver, rid: str = "", rtx_for_payload_type: int | None = None
    ) -> None:
        """Route media's packets (its rid layer's, for simulcast) to receiver.

        With rtx_for_payload_type set (RTX was negotiated), an unsignaled
        stream whose repaired-rid names this layer is its RTX stream.
        """
        self._by_mid[(media.mid, rid)] = receiver
        if rtx_for_payload_type is not None:
            self._rtx_by_mid[(media.mid, rid)] = (receiver, rtx_for_payload_type)
            repaired_id = media.extension_id(REPAIRED_RID_URI)
            if repaired_id is not None:
                self._repaired_rid_extension_id = repaired_id
        if receiver.ssrc:
            self._by_ssrc[receiver.ssrc] = receiver
        mid_id = media.extension_id(MID_URI)
        if mid_id is not None:
            self._mid_extension_id = mid_id
        rid_id = media.extension_id(RID_URI)
        if rid_id is not None:
            self._rid_extension_id = rid_id
        twcc_id = media.extension_id(TRANSPORT_CC_URI) if self._context.congestion_control else None
        if twcc_id is not None:
            self._twcc_extension_id = twcc_id
            if self._twcc is None:
                self._twcc = TwccRecorder()
        level_id = media.extension_id(AUDIO_LEVEL_URI) if media.kind == "audio" else None
        if level_id is not None:
            self._audio_levels[receiver] = AudioLevelTap(level_id)

    def audio_level_tap(self, receiver: TrackReceiver) -> AudioLevelTap | None:
        """The audio-level accumulator of receiver's track, if its sender negotiated RFC 6464."""
        return self._audio_levels.get(receiver)

    def add_rtx(self, rtx_ssrc: int, receiver: TrackReceiver, payload_type: int) -> None:
        """Route the publisher's RTX stream rtx_ssrc into receiver as payload_type packets."""
        self._rtx[rtx_ssrc] = (receiver, payload_type)

    def remove_receiver(self, receiver: TrackReceiver) -> None:
        self.nacks.forget(receiver)
        self._audio_levels.pop(receiver, None)
        for table in (self._by_ssrc, self._by_mid):
            for key in [k for k, r in table.items() if r is receiver]:
                del table[key]
        for rtx_table in (self._rtx, self._rtx_by_mid):
            for key in [k for k, (r, _) in rtx_table.items() if r is receiver]:
                del rtx_table[key]

    def _send_nack(self, media_ssrc: int, lost: list[int]) -> None:
        self.transport.send_rtcp(Nack(sender_ssrc=self.rtcp_ssrc, media_ssrc=media_ssrc, lost=lost).serialize())
        self._counters.nacks_sent += 1

    def _count_lost(self, given_up: int) -> None:
        self._counters.packets_lost += given_up

    def send_pli(self, media_ssrc: int) -> None:
        """Ask the publisher for a keyframe of media_ssrc (RFC 4585 PLI); throttling is the receiver's."""
        self.transport.send_rtcp(PictureLossIndication(sender_ssrc=self.rtcp_ssrc, media_ssrc=media_ssrc).serialize())
        self._counters.plis_sent += 1

    def send_receiver_report(self) -> None:
        if not self.transport.connected or not self._by_ssrc:
            return
        now = time.monotonic()
        reports = [r.stats.report(ssrc, now) for ssrc, r in self._by_ssrc.items() if r.stats.started]
        if reports:
            self.transport.send_rtcp(ReceiverReport(ssrc=self.rtcp_ssrc, reports=reports[:31]).serialize())

    def _note_arrival(self, packet: bytes) -> None:
        """Record the packet's transport-wide sequence number for the next TWCC feedback (every packet counts, padding too)."""
        extension_id, recorder = self._twcc_extension_id, self._twcc
        if extension_id is None or recorder is None:
            return
        try:
            value = get_header_extension(packet, extension_id)
        except MalformedPacket:
            return
        if value is None or len(value) != 2:
            return
        recorder.on_packet(_U16.unpack(value)[0], time.monotonic())
        if self._twcc_timer is None:
            self._twcc_timer = asyncio.get_running_loop().call_later(TWCC_FEEDBACK_INTERVAL, self._send_twcc_feedback)

    def _send_twcc_feedback(self) -> None:
        """Report what arrived since the last feedback; the timer stops when nothing did and restarts with the next packet."""
        self._twcc_timer = None
        assert self._twcc is not None  # the timer starts only from a packet the recorder took
        media_ssrc = next(iter(self._by_ssrc), 0)
        packets = self._twcc.feedback(self.rtcp_ssrc, media_ssrc)
        for packet in packets:
            self.transport.send_rtcp(packet)
        if packets:
            self._counters.congestion_feedback[("twcc", "sent")] += len(packets)
            self._twcc_timer = asyncio.get_running_loop().call_later(TWCC_FEEDBACK_INTERVAL, self._send_twcc_feedback)

    def close(self) -> None:
        if self._twcc_timer is not None:
            self._twcc_timer.cancel()
            self._twcc_timer = None
        self.nacks.close()
        self.transport.close()
        self._by_ssrc.clear()
        self._by_mid.clear()
        self._audio_levels.clear()

    def _on_rtp(self, protected: bytes) -> None:
        """Route an SRTP packet by its clear-text SSRC; only packets we route are decrypted.

        Decryption costs far more than a lookup, and libsrtp keeps state for
        every SSRC it authenticates, so an unannounced SSRC is dropped here
        and reported, before it can cost either.
        """
        ssrc = _SSRC.unpack_from(protected, 8)[0]
        receiver = self._by_ssrc.get(ssrc)
        if receiver is not None:
            packet = self.transport.unprotect_rtp(protected)
            if packet is not None:
                self._note_arrival(packet)
                self._on_primary(packet, receiver)
            return
        rtx = self._rtx.get(ssrc)
        if rtx is not None:
            packet = self.transport.unprotect_rtp(protected)
            if packet is not None:
                self._note_arrival(packet)
                self._on_rtx(packet, *rtx)
            return
        self._on_unsignaled(protected, ssrc)

    def _on_primary(self, packet: bytes, receiver: TrackReceiver) -> None:
        counters = self._counters
        try:
            header = RtpHeader.parse(packet)
        except MalformedPacket:
            counters.drops["rtp_malformed"] += 1
            return
        counters.rtp_packets_in += 1
        counters.rtp_bytes_in += len(packet)
        tap = self._audio_levels.get(receiver)
        if tap is not None:
            tap.observe(packet)
        receiver.on_rtp(packet, header, time.monotonic())

    def _on_unsignaled(self, protected: bytes, ssrc: int) -> None:
        """An SSRC no offer announced: bind it to a layer waiting for one, by its clear-text mid/rid (RFC 8852).

        The binding happens only once the packet authenticates, so a forged
        header cannot steal a layer.
        """
        try:
            rtx_target = self._unbound_rtx_layer(protected)
            receiver = None if rtx_target is not None else self._unbound_layer(protected)
        except MalformedPacket:
            receiver, rtx_target = None, None
        if receiver is None and rtx_target is None:
            self._counters.drops["rtp_unknown_ssrc"] += 1
            self._on_unknown_ssrc(ssrc, time.monotonic())
            return
        packet = self.transport.unprotect_rtp(protected)
        if packet is None:
            return
        self._note_arrival(packet)
        if rtx_target is not None:
            self._rtx[ssrc] = rtx_target
            self._on_rtx(packet, *rtx_target)
            return
        assert receiver is not None
        receiver.ssrc = ssrc
        self._by_ssrc[ssrc] = receiver
        self._on_primary(packet, receiver)

    def _unbound_rtx_layer(self, packet: bytes) -> tuple[TrackReceiver, int] | None:
        """The layer whose RTX stream this packet's mid and repaired-rid name, if it has none bound yet."""
        if self._repaired_rid_extension_id is None or self._mid_extension_id is None:
            return None
        repaired = get_header_extension(packet, self._repaired_rid_extension_id)
        mid = get_header_extension(packet, self._mid_extension_id) if repaired else None
        if not repaired or not mid:
            return None
        target = self._rtx_by_mid.get((mid.decode(errors="replace"), repaired.decode(errors="replace")))
        if target is None or any(bound is target for bound in self._rtx.values()):
            return None
        return target

    def _unbound_layer(self, packet: bytes) -> TrackReceiver | None:
        """The track layer this packet's mid (and rid) extensions name, if no SSRC is bound to it yet."""
        if self._mid_extension_id is None:
            return None
        mid = get_header_extension(packet, self._mid_extension_id)
        rid = get_header_extension(packet, self._rid_extension_id) if self._rid_extension_id else None
        if not mid:
            return None
        receiver = self._by_mid.get((mid.decode(errors="replace"), rid.decode(errors="replace") if rid else ""))
        return receiver if receiver is not None and receiver.ssrc == 0 else None

    def _on_rtx(self, packet: bytes, receiver: TrackReceiver, payload_type: int) -> None:
        """A retransmission we asked for: back into the primary stream it belongs to.

        An RTX packet with no payload at all is padding the sender's
        bandwidth probe sent (libwebrtc probes this way): its only use was
        its transport-wide sequence number.
        """
        try:
            rtx_header = RtpHeader.parse(packet)
            if rtx_header.payload_end == rtx_header.header_size:
                return
            original = unwrap_rtx(packet, rtx_header, payload_type, receiver.ssrc)
            header = RtpHeader.parse(original)
        except MalformedPacket:
            self._counters.drops["rtp_malformed"] += 1
            return
        self._counters.rtp_packets_in += 1
        self._counters.rtp_bytes_in += len(packet)
        receiver.on_rtp(original, header, time.monotonic())

    def _on_rtcp(self, packets: list[RtcpPacket]) -> None:
        now = time.monotonic()
        for packet in packets:
            if isinstance(packet, SenderReport):
                receiver = self._by_ssrc.get(packet.ssrc)
                if receiver is not None:
                    receiver.stats.on_sender_report(packet, now)
