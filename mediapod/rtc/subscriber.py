"""The subscriber PeerConnection of a participant: we offer, the client answers.

Each subscribed track gets an m-line (a slot) and a DownTrack. Changes are
batched into offers one at a time: while an offer waits for its answer,
further changes only mark the connection dirty, and the next offer goes out
when the answer arrives (the "perfect negotiation" discipline of a single
offerer). Unsubscribed slots stay in the SDP as inactive m-lines, because
m-lines can never be removed from a session, until a later track of the same
kind and codec reuses them.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from mediapod.rtc.context import MediaContext
from mediapod.rtc.data import SERVER_CHANNELS
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.sdp import (
    DATA_MID,
    SUBSCRIBER_TRANSPORT_CC_EXTENSION_ID,
    TRANSPORT_CC_URI,
    Codec,
    OfferMedia,
    SessionDescription,
    rtx_codec,
    write_offer,
)
from mediapod.rtc.track import PublishedTrack, TrackSource
from mediapod.rtp.rtcp import (
    FullIntraRequest,
    Nack,
    PictureLossIndication,
    ReceiverReport,
    Remb,
    RtcpPacket,
    SdesChunk,
    SourceDescription,
    TransportCC,
    serialize_compound,
)
from mediapod.sfu.allocator import TrackPriority
from mediapod.sfu.bandwidth_controller import BandwidthController
from mediapod.sfu.blank import blank_frames_for
from mediapod.sfu.downtrack import DownTrack
from mediapod.sfu.forwarder import Forwarder, spatial_for
from mediapod.transport.peer import TransportState
from mediapod.transport.sctp import DEFAULT_SCTP_PORT

log = logging.getLogger(__name__)

_SSRC = struct.Struct("!I")

# First dynamic payload types we hand out per kind on a subscriber connection.
_FIRST_PAYLOAD_TYPE = {"audio": 111, "video": 96}


@dataclass(slots=True)
class Slot:
    """One m-line of the subscriber offer."""

    mid: str
    kind: str
    codec: Codec
    rtx: Codec | None
    track: PublishedTrack | None
    downtrack: DownTrack | None
    negotiated: bool = False  # the client's answer accepted this slot's current track


class SubscriberConnection:
    """Sends a participant the tracks it subscribes to."""

    def __init__(
        self,
        context: MediaContext,
        cname: str,
        send_offer: Callable[[str], None],
        on_state: Callable[[TransportState], None],
        on_unknown_ssrc: Callable[[int, float], None],
        on_data: Callable[[str, bytes], None] | None = None,
    ) -> None:
        self._context = context
        self._counters = context.counters
        self._cname = cname
        self._send_offer = send_offer
        self._on_state = on_state
        self._on_unknown_ssrc = on_unknown_ssrc
        self.transport = context.new_transport(
            self._on_rtp, self._on_rtcp, self._on_transport_state, on_data, SERVER_CHANNELS if on_data is not None else ()
        )
        # Where the application m-line sits among the slots, once data channels are offered.
        self._data_at: int | None = None
        self._slots: list[Slot] = []
        self._by_track: dict[str, Slot] = {}
        self._by_ssrc: dict[int, Slot] = {}
        self._payload_types: dict[tuple[str, str, str], int] = {}
        self._offer_pending = False
        self._dirty = False
        self._session_version = 1
        # Congestion control: every packet to this subscriber leaves through its pacer.
        self.bandwidth = BandwidthController(self.transport.send_rtp, self._counters, context.congestion_control)

    @property
    def downtrack_count(self) -> int:
        return len(self._by_track)

    def subscribed_track_sids(self) -> list[str]:
        return list(self._by_track)

    def offer_data_channels(self) -> None:
        """Offer the pod's data channels (an application m-line after the current slots), as a LiveKit server does at join."""
        if self._data_at is None:
            self._data_at = len(self._slots)
            self._negotiate()

    def subscribe(self, track: PublishedTrack) -> None:
        if track.sid in self._by_track:
            return
        codec, rtx = self._codecs_for(track)
        forwarder = Forwarder(
            layers=len(track.layers),
            request_keyframe=track.request_keyframe if track.receiver.has_keyframes else None,
            on_switch=self._count_layer_switch,
        )
        congestion_control = self._context.congestion_control
        downtrack = DownTrack(
            kind=track.kind,
            payload_type=codec.payload_type,
            clock_rate=codec.clock_rate,
            # Audio is small and late audio is worse than late video: it is not held back by the pacer.
            send=self.bandwidth.pacer.sender(immediate=track.kind == "audio"),
            buffers=tuple(layer.buffer for layer in track.layers),
            counters=self._counters,
            forwarder=forwarder,
            cname=self._cname,
            rtx_payload_type=rtx.payload_type if rtx is not None else None,
            blank=blank_frames_for(track.mime_type),
            vp8=track.mime_type.lower() == "video/vp8",
            twcc_extension_id=SUBSCRIBER_TRANSPORT_CC_EXTENSION_ID if congestion_control else None,
        )
        slot = self._free_slot(track.kind, codec)
        if slot is None:
            slot = Slot(mid=str(len(self._slots)), kind=track.kind, codec=codec, rtx=rtx, track=None, downtrack=None)
            self._slots.append(slot)
        slot.track, slot.downtrack, slot.negotiated = track, downtrack, False
        self._by_track[track.sid] = slot
        self._by_ssrc[downtrack.ssrc] = slot
        for layer in track.layers:
            layer.add_downtrack(downtrack)
        priority = TrackPriority.SCREENSHARE if track.announcement.source == TrackSource.SCREEN_SHARE else TrackPriority.CAMERA
        self.bandwidth.add_track(track.sid, track.kind, priority, forwarder, track.layers, downtrack)
        self._negotiate()

    def _free_slot(self, kind: str, codec: Codec) -> Slot | None:
        """An inactive m-line that can carry a track of this kind and codec again.

        Recycling keeps the SDP from growing with every track that ever came
        and went; the m-line keeps its mid and payload types, its msid and
        SSRC change, which receivers treat as a new track.
        """
        for slot in self._slots:
            if slot.track is None and slot.kind == kind and slot.codec == codec:
                return slot
        return None

    def unsubscribe(self, track_sid: str) -> None:
        slot = self._by_track.pop(track_sid, None)
        if slot is None:
            return
        assert slot.track is not None and slot.downtrack is not None
        for layer in slot.track.layers:
            layer.remove_downtrack(slot.downtrack)
        slot.downtrack.close()
        self.bandwidth.remove_track(track_sid)
        self._by_ssrc.pop(slot.downtrack.ssrc, None)
        slot.track = None
        slot.downtrack = None
        slot.negotiated = False
        self._negotiate()

    def set_wish(self, track_sid: str, quality: int, width: int, height: int, max_temporal: int) -> None:
        """The subscriber's UpdateTrackSettings for a track: the most it wants, which its Forwarder honours."""
        slot = self._by_track.get(track_sid)
        if slot is None or slot.track is None or slot.downtrack is None:
            raise RequestError(ErrorCode.NOT_FOUND, f"not subscribed to track {track_sid!r}")
        forwarder = slot.downtrack.forwarder
        forwarder.set_wish(spatial_for(quality, width, height, slot.track.layer_sizes, forwarder.layers), max_temporal)
        self.bandwidth.wish_changed()

    def _count_layer_switch(self, direction: str, reason: str) -> None:
        self._counters.layer_switches[(direction, reason)] += 1

    def apply_answer(self, answer: SessionDescription) -> None:
        """Take the client's (parsed) answer to our pending offer: bind what it accepted."""
        if not self._offer_pending:
            raise RequestError(ErrorCode.FAILED_PRECONDITION, "no subscriber offer is waiting for an answer")
        first = next((m for m in answer.media if not m.rejected), None)
        if first is None:
            raise RequestError(ErrorCode.INVALID_ARGUMENT, "the subscriber answer rejects every m-line")
        self.transport.set_remote_parameters(first.ice_ufrag, first.fingerprints)
        data = answer.media_by_mid(DATA_MID) if self._data_at is not None else None
        if data is not None and not data.rejected:
            self.transport.accept_data_channels(data.sctp_port or DEFAULT_SCTP_PORT)
        self._offer_pending = False
        # A subscriber that did not take transport-wide sequence numbers sends no TWCC feedback.
        self.bandwidth.set_transport_feedback(any(m.extension_id(TRANSPORT_CC_URI) is not None for m in answer.media))
        for slot in self._slots:
            media = answer.media_by_mid(slot.mid)
            slot.negotiated = (
                slot.track is not None and media is not None and not media.rejected and media.direction in ("recvonly", "sendrecv")
            )
        self._bind_ready()
        if self._dirty:
            self._negotiate()

    def send_sender_reports(self) -> None:
        if not self.transport.connected:
            return
        reports = []
        chunks = []
        for slot in self._slots:
            if slot.downtrack is None:
                continue
            sr = slot.downtrack.sender_report()
            if sr is not None:
                reports.append(sr)
                chunks.append(SdesChunk(ssrc=sr.ssrc, items=[(1, self._cname.encode())]))
        if reports:
            self.transport.send_rtcp(serialize_compound([*reports, SourceDescription(chunks=chunks)]))

    def close(self) -> None:
        for slot in self._slots:
            if slot.track is not None and slot.downtrack is not None:
                for layer in slot.track.layers:
                    layer.remove_downtrack(slot.downtrack)
                slot.downtrack.close()
        self._slots.clear()
        self._by_track.clear()
        self._by_ssrc.clear()
        self.bandwidth.close()
        self.transport.close()

    def _codecs_for(self, track: PublishedTrack) -> tuple[Codec, Codec | None]:
        """The track's codec on this connection, and RTX for it when it is video."""
        source = track.codec
        codec = Codec(
            self._payload_type((track.kind, source.name.lower(), source.fmtp)),
            source.name,
            source.clock_rate,
            source.channels,
            source.fmtp,
            list(source.feedback),
        )
        if track.kind != "video":
            return codec, None
        return codec, rtx_codec(self._payload_type((track.kind, "rtx", str(codec.payload_type))), codec)

    def _payload_type(self, key: tuple[str, str, str]) -> int:
        """One payload type per distinct codec configuration, unique across the bundle."""
        pt = self._payload_types.get(key)
        if pt is None:
            used = set(self._payload_types.values())
            pt = _FIRST_PAYLOAD_TYPE[key[0]]
            while pt in used:
                pt += 1
            self._payload_types[key] = pt
        return pt

    def _negotiate(self) -> None:
        if self._offer_pending:
            self._dirty = True
            return
        if not self._slots and self._data_at is None:
            return
        self._dirty = False
        self._offer_pending = True
        self._session_version += 1
        slots = []
        for slot in self._slots:
            track = slot.track
            slots.append(
                OfferMedia(
                    kind=slot.kind,
                    mid=slot.mid,
                    codec=slot.codec,
                    ssrc=slot.downtrack.ssrc if slot.downtrack else 0,
                    cname=self._cname,
                    # LiveKit's convention, which its SDKs parse: "<participant sid>|<track sid>".
                    stream_id=f"{track.publisher_sid}|{track.sid}" if track else "",
                    track_id=track.sid if track else "",
                    active=track is not None,
                    rtx=slot.rtx,
                    rtx_ssrc=slot.downtrack.rtx_ssrc if slot.downtrack else 0,
                )
            )
        local = self._context.local_parameters(self.transport.ice)
        self._send_offer(
            write_offer(slots, local, self._session_version, data_at=self._data_at, congestion_control=self._context.congestion_control)
        )

    def _bind_ready(self) -> None:
        if not self.transport.connected:
            return
        for slot in self._slots:
            if slot.negotiated and slot.downtrack is not None:
                slot.downtrack.bind()

    def _on_transport_state(self, state: TransportState) -> None:
        if state == TransportState.CONNECTED:
            self._bind_ready()
        self._on_state(state)

    def _on_rtp(self, protected: bytes) -> None:
        """A subscriber sends no RTP to us: every SSRC is unknown, dropped undecrypted."""
        self._counters.drops["rtp_unknown_ssrc"] += 1
        self._on_unknown_ssrc(_SSRC.unpack_from(protected, 8)[0], time.monotonic())

    def _on_rtcp(self, packets: list[RtcpPacket]) -> None:
        counters = self._counters
        for packet in packets:
            if isinstance(packet, PictureLossIndication):
                counters.plis_received += 1
                self._request_keyframe(packet.media_ssrc)
            elif isinstance(packet, FullIntraRequest):
                counters.firs_received += 1
                for ssrc, _ in packet.entries:
                    self._request_keyframe(ssrc)
            elif isinstance(packet, Nack):
                counters.nacks_received += 1
                slot = self._by_ssrc.get(packet.media_ssrc)
                if slot is not None and slot.downtrack is not None:
                    slot.downtrack.retransmit(packet.lost, time.monotonic())
            elif isinstance(packet, TransportCC):
                if not self.bandwidth.on_transport_feedback(packet.raw):
                    counters.drops["rtcp_malformed"] += 1
            elif isinstance(packet, Remb):
                self.bandwidth.on_remb(packet.bitrate)
            elif isinstance(packet, ReceiverReport):
                ours = [block.fraction_lost for block in packet.reports if block.ssrc in self._by_ssrc]
                if ours:
                    self.bandwidth.on_receiver_loss(max(ours) / 256)

    def _request_keyframe(self, ssrc: int) -> None:
        slot = self._by_ssrc.get(ssrc)
        if slot is not None and slot.downtrack is not None:
            slot.downtrack.forwarder.request_keyframe()
