"""A participant: its two PeerConnections, its tracks and its subscriptions.

The model speaks to its client through a SignalSink and never touches a wire
format, so a second signaling front end can drive the same object.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from mediapod.config import LimitsConfig
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.context import MediaContext, new_sid
from mediapod.rtc.data import LOSSY_LABEL, DataCodec, DataKind, DataMessage, DataRateLimit
from mediapod.rtc.limits import check_announcement, check_participant, check_sdp
from mediapod.rtc.publisher import PublisherConnection
from mediapod.rtc.room_state import RoomState
from mediapod.rtc.sdp import (
    AnswerMedia,
    Codec,
    MediaDescription,
    SdpError,
    parse_off_loop,
    require_verifiable_fingerprints,
    select_codec,
    select_rtx,
)
from mediapod.rtc.speaker import LevelWindow, Speaker
from mediapod.rtc.ssrc_guard import UnknownSsrcGuard
from mediapod.rtc.subscriber import SubscriberConnection
from mediapod.rtc.track import PublishedTrack, TrackAnnouncement
from mediapod.sfu.forwarder import MAX_TEMPORAL_LAYER
from mediapod.sfu.receiver import TrackReceiver
from mediapod.transport.dtls import FINGERPRINT_ALGORITHMS
from mediapod.transport.peer import TransportState

log = logging.getLogger(__name__)

# Sender/receiver reports go out once a second (RFC 3550 allows 5 % of the
# session bandwidth; at one compound packet a second we stay far below).
RTCP_INTERVAL = 1.0


class ParticipantState(enum.Enum):
    JOINING = "joining"
    JOINED = "joined"
    ACTIVE = "active"
    DISCONNECTED = "disconnected"


class LeaveReason(enum.Enum):
    """Why a participant left; every value is also a label of the leaves metric."""

    CLIENT_INITIATED = "client_initiated"
    ROOM_DELETED = "room_deleted"
    PARTICIPANT_REMOVED = "participant_removed"
    DUPLICATE_IDENTITY = "duplicate_identity"
    SERVER_SHUTDOWN = "server_shutdown"
    TRANSPORT_FAILED = "transport_failed"
    PROTOCOL_VIOLATION = "protocol_violation"
    SIGNAL_STALLED = "signal_stalled"


@dataclass(frozen=True, slots=True)
class Permission:
    """What a participant's token allows it to do in the room."""

    can_publish: bool = True
    can_subscribe: bool = True
    can_publish_data: bool = True
    hidden: bool = False


class SignalSink(Protocol):
    """Messages from the room model to one participant's client."""

    def send_offer(self, sdp: str) -> None: ...
    def send_answer(self, sdp: str) -> None: ...
    def send_track_published(self, cid: str, sid: str, announcement: TrackAnnouncement) -> None: ...
    def send_track_unpublished(self, track_sid: str) -> None: ...
    def send_participants_update(self, participants: list[Participant]) -> None: ...
    def send_mute(self, track_sid: str, muted: bool) -> None: ...
    def send_leave(self, reason: LeaveReason) -> None: ...
    def send_speakers_changed(self, speakers: list[Speaker]) -> None: ...
    def send_room_update(self, room: RoomState) -> None: ...


class RoomView(Protocol):
    """What a participant needs of its room: one lookup, and where to report what it did.

    Room implements it and hands itself in through the constructor, so this
    module never imports room.py: the room owns its participants and depends
    on them, not the other way round (LiveKit's room likewise registers its
    handlers on the participant). The room, not the participant, judges
    whether a report still matters: it ignores reports from a participant no
    longer in it.
    """

    def find_track(self, sid: str) -> PublishedTrack | None:
        """A track published in the room by anyone, or None."""
        ...

    def on_track_published(self, publisher: Participant, track: PublishedTrack) -> None: ...
    def on_track_unpublished(self, publisher: Participant, track: PublishedTrack) -> None: ...

    def broadcast_update(self, participant: Participant) -> None:
        """The participant's state or tracks changed: tell the others."""
        ...

    def remove_participant(self, participant: Participant, reason: LeaveReason) -> None:
        """End the participant's membership (its transport failed, or it misbehaved)."""
        ...

    def on_data(self, sender: Participant, message: DataMessage) -> None:
        """The participant sent a data packet (already screened and decoded): deliver it."""
        ...


@dataclass(slots=True)
class _PublishPlan:
    """How one offered m-line will be answered: bound to a track or rejected."""

    media: MediaDescription
    track: PublishedTrack | None = None      # already published on this mid
    announcement: tuple[str, str, TrackAnnouncement] | None = None  # (cid, sid, ann) to publish now
    accept: bool = False


def _layer_order(rids: list[str], announcement: TrackAnnouncement) -> tuple[str, ...]:
    """Simulcast rids lowest quality first: by announced layer width, else as offered.

    Browsers list encodings as the application gave them; LiveKit clients
    announce each layer's size with the track, which settles the order.
    """
    widths = {layer.rid: layer.width for layer in announcement.layers}
    if rids and all(rid in widths for rid in rids):
        return tuple(sorted(rids, key=lambda rid: widths[rid]))
    return tuple(rids)


class Participant:
    """One client in a room.

    Once it has left (DISCONNECTED) it refuses every request: a removed
    client's stream may still be talking, and nothing it says may reach the room.
    """

    def __init__(
        self,
        room: RoomView,
        context: MediaContext,
        identity: str,
        name: str,
        metadata: str,
        permission: Permission,
        auto_subscribe: bool,
        sink: SignalSink,
        limits: LimitsConfig,
        attributes: Mapping[str, str],
        data_codec: DataCodec | None = None,
    ) -> None:
        self.sid = new_sid("PA_")
        self.identity = identity
        self.name = name
        self.metadata = metadata
        self.attributes = dict(attributes)
        self._limits = limits
        self.permission = permission
        self.auto_subscribe = auto_subscribe
        self.joined_at = time.time()
        self.state = ParticipantState.JOINING
        self._room = room
        self.sink = sink
        self.tracks: dict[str, PublishedTrack] = {}
        self._announced: dict[str, tuple[str, TrackAnnouncement]] = {}  # cid -> (sid, announcement)
        self._ssrc_guard = UnknownSsrcGuard(context.unknown_ssrc_limits, self._on_media_abuse)
        # Data channels exist only for front ends that frame data packets (data_codec).
        self._counters = context.counters
        self._data_codec = data_codec
        self._data_limit = DataRateLimit()
        on_data = self._on_data if data_codec is not None else None
        self.publisher = PublisherConnection(context, self._on_publisher_state, self._ssrc_guard.observe, on_data)
        self.subscriber = SubscriberConnection(
            context, self.sid, sink.send_offer, self._on_subscriber_state, self._ssrc_guard.observe, on_data
        )
        self._rtcp_task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------

    def start(self, published: Iterable[PublishedTrack]) -> None:
        """Called once the client has its join response: begin RTCP, subscribe to what others publish."""
        if self.state == ParticipantState.DISCONNECTED:
            return  # replaced or removed while its join response was on the way
        self.state = ParticipantState.JOINED
        self._rtcp_task = asyncio.get_running_loop().create_task(self._rtcp_loop())
        if self._data_codec is not None:
            self.subscriber.offer_data_channels()
        if self.auto_subscribe and self.permission.can_subscribe:
            for track in published:
                self.subscriber.subscribe(track)

    def close(self) -> list[PublishedTrack]:
        """Stop all media; returns the tracks it published so the room can unpublish them."""
        self.state = ParticipantState.DISCONNECTED
        if self._rtcp_task is not None:
            self._rtcp_task.cancel()
            self._rtcp_task = None
        unpublished = list(self.tracks.values())
        for track in unpublished:
            track.close()
        self.tracks.clear()
        self.publisher.close()
        self.subscriber.close()
        return unpublished

    @property
    def is_publisher(self) -> bool:
        return bool(self.tracks)

    def drain_audio_levels(self) -> list[LevelWindow]:
        """This interval's audio-level windows of its unmuted microphones; every tap starts a new window.

        Muted tracks are drained too, so levels from before a mute never leak
        into the first window after the unmute.
        """
        windows = []
        for track in self.tracks.values():
            tap = self.publisher.audio_level_tap(track.receiver)
            if tap is not None:
                window = tap.drain()
                if not track.muted:
                    windows.append(window)
        return windows

    # -- requests from the client -----------------------------------------

    def _check_in_room(self) -> None:
        """Refuse a request from a participant that has left (removed, replaced, transport gone)."""
        if self.state == ParticipantState.DISCONNECTED:
            raise RequestError(
                ErrorCode.FAILED_PRECONDITION, "this participant has left the room; its session accepts no more requests"
            )

    def announce_track(self, announcement: TrackAnnouncement) -> str:
        """Register a track the next offer will carry; returns its sid."""
        self._check_in_room()
        if not self.permission.can_publish:
            raise RequestError(ErrorCode.PERMISSION_DENIED, "this participant's token does not grant canPublish")
        if announcement.kind not in ("audio", "video"):
            raise RequestError(ErrorCode.INVALID_ARGUMENT, f"cannot publish a track of type {announcement.kind!r}")
        if not announcement.cid:
            raise RequestError(ErrorCode.INVALID_ARGUMENT, "AddTrackRequest needs a cid (the client track id)")
        if announcement.cid in self._announced or any(t.announcement.cid == announcement.cid for t in self.tracks.values()):
            raise RequestError(ErrorCode.INVALID_ARGUMENT, f"track {announcement.cid!r} is already announced")
        check_announcement(self._limits, len(self.tracks), len(self._announced))
        sid = new_sid("TR_")
        self._announced[announcement.cid] = (sid, announcement)
        self.sink.send_track_published(announcement.cid, sid, announcement)
        return sid

    async def handle_offer(self, sdp_type: str, text: str) -> None:
        """Answer the publisher offer; nothing changes unless the whole offer is acceptable.

        The size limits are judged on the raw text, and the parse, whose cost
        grows with the text, runs off the event loop, so no offer can hold up
        the media of other rooms on this pod.
        """
        self._check_in_room()
        if sdp_type != "offer":
            raise RequestError(ErrorCode.INVALID_ARGUMENT, f"expected an SDP offer on the publisher connection, got {sdp_type!r}")
        check_sdp(self._limits, text, "the SDP offer")
        try:
            offer = await parse_off_loop(sdp_type, text)
        except SdpError as exc:
            raise RequestError(ErrorCode.INVALID_ARGUMENT, f"invalid SDP offer: {exc}") from None
        self._check_in_room()  # it may have been removed while the offer was parsed
        try:
            require_verifiable_fingerprints(offer, FINGERPRINT_ALGORITHMS)
        except SdpError as exc:
            raise RequestError(ErrorCode.INVALID_ARGUMENT, str(exc)) from None
        plans = self._plan_offer(offer.media)
        answers = []
        new_tracks: list[PublishedTrack] = []
        removed: list[PublishedTrack] = []
        by_mid = {t.mid: t for t in self.tracks.values()}
        for plan in plans:
            codec = select_codec(plan.media) if plan.accept else None
            rtx = select_rtx(plan.media, codec) if codec is not None and ("nack", "") in codec.feedback else None
            data_channels = plan.accept and plan.media.kind == "application"
            idle = None
            if not plan.accept and not plan.media.rejected and plan.media.kind in ("audio", "video"):
                # An m-line without a track stays in the bundle, inactive: rejecting
                # the one the client tagged would move its whole transport to a new
                # DTLS association (RFC 8843 section 7.3.3). LiveKit's SDKs offer
                # recvonly m-lines on the publisher connection, the tagged one first.
                idle = select_codec(plan.media)
            answers.append(
                AnswerMedia(
                    offer=plan.media, codec=codec or idle, rtx=rtx, data_channels=data_channels, inactive=idle is not None
                )
            )
            if plan.announcement is not None and codec is not None:
                cid, sid, ann = plan.announcement
                del self._announced[cid]
                new_tracks.append(self._publish(sid, ann, plan.media, codec, rtx))
        offered = {p.media.mid for p in plans if p.accept}
        for mid, track in by_mid.items():
            if mid not in offered:
                removed.append(track)
        answer = self.publisher.answer(offer, answers)
        self.sink.send_answer(answer)
        for track in removed:
            self.unpublish(track.sid)
        for track in new_tracks:
            self._room.on_track_published(self, track)

    def _plan_offer(self, media_list: list[MediaDescription]) -> list[_PublishPlan]:
        by_mid = {t.mid: t for t in self.tracks.values()}
        pending = dict(self._announced)
        plans = []
        for media in media_list:
            plan = _PublishPlan(media=media)
            plans.append(plan)
            if media.kind == "application":
                # Data channels ride the bundle's transport; accepting the
                # m-line is what lets an offer of nothing else connect.
                plan.accept = not media.rejected and "SCTP" in media.protocol.upper()
                continue
            sending = not media.rejected and media.kind in ("audio", "video") and media.direction in ("sendrecv", "sendonly")
            if not sending:
                continue
            if not self.permission.can_publish:
                raise RequestError(ErrorCode.PERMISSION_DENIED, "this participant's token does not grant canPublish")
            if media.mid in by_mid:
                plan.track, plan.accept = by_mid[media.mid], True
                continue
            cid = media.msid[1] if media.msid and media.msid[1] in pending else None
            if cid is None:
                cid = next((c for c, (_, a) in pending.items() if a.kind == media.kind and not media.msid), None)
            if cid is None:
                continue  # nothing announced for this m-line: rejected in the answer
            sid, announcement = pending.pop(cid)
            if announcement.kind != media.kind:
                raise RequestError(
                    ErrorCode.INVALID_ARGUMENT, f"track {cid!r} was announced as {announcement.kind} but offered as {media.kind}"
                )
            if select_codec(media) is None:
                offered = ", ".join(sorted({c.name for c in media.codecs})) or "none"
                raise RequestError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"m-line {media.mid} offers no codec we forward (offered: {offered}; supported: opus, VP8, H264 packetization-mode=1)",
                )
            plan.announcement, plan.accept = (cid, sid, announcement), True
        return plans

    def _publish(
        self, sid: str, announcement: TrackAnnouncement, media: MediaDescription, codec: Codec, rtx: Codec | None
    ) -> PublishedTrack:
        ssrcs = media.primary_ssrcs()
        rids = _layer_order(media.rids, announcement)
        layers = []
        for index, rid in enumerate(rids or ("",)):
            receiver = TrackReceiver(
                track_sid=sid,
                kind=media.kind,
                mime_type=codec.mime_type(media.kind),
                clock_rate=codec.clock_rate,
                # Simulcast layers signal no SSRCs: they are learned from the rid extension.
                ssrc=ssrcs[0] if ssrcs and not rids else 0,
                send_pli=self.publisher.send_pli,
                # NACK the publisher for uplink loss only if it said it retransmits.
                on_gap=self.publisher.nacks.wake if ("nack", "") in codec.feedback else None,
                layer=index,
            )
            self.publisher.add_receiver(media, receiver, rid, codec.payload_type if rtx is not None and rid else None)
            layers.append(receiver)
        receiver = layers[0]
        rtx_ssrc = media.rtx_ssrc_of(receiver.ssrc) if rtx is not None and receiver.ssrc else None
        if rtx is not None and rtx_ssrc is not None:
            self.publisher.add_rtx(rtx_ssrc, receiver, codec.payload_type)
        track = PublishedTrack(
            sid=sid,
            announcement=announcement,
            publisher_sid=self.sid,
            publisher_identity=self.identity,
            mid=media.mid,
            codec=codec,
            layers=tuple(layers),
            rids=rids,
        )
        track.set_muted(announcement.muted)
        self.tracks[sid] = track
        return track

    async def handle_answer(self, sdp_type: str, text: str) -> None:
        """Apply the client's answer to our subscriber offer, parsed off the event loop like an offer."""
        self._check_in_room()
        if sdp_type != "answer":
            raise RequestError(ErrorCode.INVALID_ARGUMENT, "expected an SDP answer on the subscriber connection")
        check_sdp(self._limits, text, "the SDP answer")
        try:
            answer = await parse_off_loop(sdp_type, text)
            require_verifiable_fingerprints(answer, FINGERPRINT_ALGORITHMS)
        except SdpError as exc:
            raise RequestError(ErrorCode.INVALID_ARGUMENT, f"invalid subscriber answer: {exc}") from None
        self._check_in_room()  # it may have been removed while the answer was parsed
        self.subscriber.apply_answer(answer)

    def unpublish(self, track_sid: str) -> None:
        self._check_in_room()
        track = self.tracks.pop(track_sid, None)
        if track is None:
            raise RequestError(ErrorCode.NOT_FOUND, f"track {track_sid!r} is not published by this participant")
        for layer in track.layers:
            self.publisher.remove_receiver(layer)
        track.close()
        self.sink.send_track_unpublished(track_sid)
        self._room.on_track_unpublished(self, track)

    def set_track_muted(self, track_sid: str, muted: bool) -> PublishedTrack:
        self._check_in_room()
        track = self.tracks.get(track_sid)
        if track is None:
            raise RequestError(ErrorCode.NOT_FOUND, f"track {track_sid!r} is not published by this participant")
        if track.muted != muted:
            track.set_muted(muted)
            self._room.broadcast_update(self)
        return track

    def update_subscriptions(self, track_sids: list[str], subscribe: bool) -> None:
        self._check_in_room()
        if subscribe and not self.permission.can_subscribe:
            raise RequestError(ErrorCode.PERMISSION_DENIED, "this participant's token does not grant canSubscribe")
        tracks = []
        for sid in track_sids:
            track = self._room.find_track(sid)
            if track is None:
                raise RequestError(ErrorCode.NOT_FOUND, f"track {sid!r} is not published in this room")
            if track.publisher_sid == self.sid:
                raise RequestError(ErrorCode.INVALID_ARGUMENT, f"track {sid!r} is this participant's own")
            tracks.append(track)
        for track in tracks:
            if subscribe:
                self.subscriber.subscribe(track)
            else:
                self.subscriber.unsubscribe(track.sid)

    def update(
        self,
        *,
        name: str | None = None,
        metadata: str | None = None,
        attributes: Mapping[str, str] | None = None,
        permission: Permission | None = None,
    ) -> None:
        """Change what an administrator may change (LiveKit's UpdateParticipant); None leaves a field as it is.

        The whole change is checked before any of it is applied. An attribute
        with an empty value is removed, as in LiveKit. Revoking canPublish
        unpublishes the participant's tracks and revoking canSubscribe ends its
        subscriptions, so a permission never outlives its grant. Whether a
        participant is hidden was settled when it joined (the others were told,
        or not, accordingly) and cannot change. The room tells everyone.
        """
        self._check_in_room()
        merged = dict(self.attributes)
        for key, value in (attributes or {}).items():
            if value:
                merged[key] = value
            else:
                merged.pop(key, None)
        new_name = self.name if name is None else name
        new_metadata = self.metadata if metadata is None else metadata
        check_participant(self._limits, self.identity, new_name, new_metadata, merged)
        if permission is not None and permission.hidden != self.permission.hidden:
            raise RequestError(
                ErrorCode.INVALID_ARGUMENT, "a participant's hidden permission is set by its token and cannot change in the room"
            )
        self.name, self.metadata, self.attributes = new_name, new_metadata, merged
        if permission is None:
            return
        self.permission = permission
        if not permission.can_publish:
            for sid in list(self.tracks):
                self.unpublish(sid)
        if not permission.can_subscribe:
            for sid in self.subscriber.subscribed_track_sids():
                self.subscriber.unsubscribe(sid)

    def update_track_settings(
        self, track_sids: list[str], quality: int, width: int, height: int, max_temporal: int | None
    ) -> None:
        """Pass the subscriber's wish (simulcast quality or size, VP8 temporal limit) to the tracks' Forwarders."""
        self._check_in_room()
        subscribed = self.subscriber.subscribed_track_sids()
        for sid in track_sids:
            if self._room.find_track(sid) is None or sid not in subscribed:
                raise RequestError(ErrorCode.NOT_FOUND, f"not subscribed to track {sid!r}")
        temporal = MAX_TEMPORAL_LAYER if max_temporal is None else max_temporal
        for sid in track_sids:
            self.subscriber.set_wish(sid, quality, width, height, temporal)

    # -- data packets -----------------------------------------------------------

    def deliver_data(self, message: DataMessage) -> bool:
        """Send a data packet from someone else on the pod's channel of its kind; False (counted) if dropped.

        A frame in this participant's own framing goes as it came; any other
        is re-encoded from the message.
        """
        codec = self._data_codec
        if codec is None or self.state == ParticipantState.DISCONNECTED:
            self._counters.data_drops["channel_not_open"] += 1
            return False
        frame = message.frame if message.frame_format == codec.format else codec.encode(message)
        if not self.subscriber.transport.send_data(message.kind.label, frame):
            return False
        self._counters.data_packets_forwarded += 1
        self._counters.data_bytes_forwarded += len(frame)
        return True

    def _on_data(self, label: str, frame: bytes) -> None:
        """A message on one of its data channels (either PeerConnection): screen, decode, hand to the room."""
        counters = self._counters
        counters.data_packets_received += 1
        assert self._data_codec is not None  # no data handler is registered without a codec
        if self.state == ParticipantState.DISCONNECTED:
            return
        if not self.permission.can_publish_data:
            counters.data_drops["not_permitted"] += 1
            return
        if not self._data_limit.allow(len(frame), time.monotonic()):
            counters.data_drops["rate_limited"] += 1
            return
        kind = DataKind.LOSSY if label == LOSSY_LABEL else DataKind.RELIABLE
        message = self._data_codec.decode(frame, kind, self.identity, self.sid)
        if message is None:
            counters.data_drops["malformed_packet"] += 1
            return
        self._room.on_data(self, message)

    # -- events -------------------------------------------------------------

    def _on_publisher_state(self, state: TransportState) -> None:
        self._on_transport_state("publisher", state)

    def _on_subscriber_state(self, state: TransportState) -> None:
        self._on_transport_state("subscriber", state)

    def _on_transport_state(self, which: str, state: TransportState) -> None:
        """A participant ends only when a PeerConnection it actually uses fails.

        One that was never negotiated has no timer at all; one negotiated but
        never connected is given up by its transport and the participant
        stays, since its signal stream, not an idle PeerConnection, says
        whether it is still here.
        """
        if self.state == ParticipantState.DISCONNECTED:
            return
        if state == TransportState.CONNECTED:
            if self.state == ParticipantState.JOINED:
                self.state = ParticipantState.ACTIVE
                self._room.broadcast_update(self)
        elif state == TransportState.NEVER_CONNECTED:
            log.info("participant %s: %s PeerConnection never connected; given up", self.identity, which)
        else:
            transport = self.publisher.transport if which == "publisher" else self.subscriber.transport
            log.info("participant %s: %s PeerConnection %s %s", self.identity, which, state.value, transport.failure)
            self._room.remove_participant(self, LeaveReason.TRANSPORT_FAILED)

    def _on_media_abuse(self, why: str) -> None:
        """The SSRC guard tripped: disconnect, outside the packet handler that noticed."""
        log.warning("participant %s disconnected: %s", self.identity, why)
        asyncio.get_running_loop().call_soon(self._end_for_abuse)

    def _end_for_abuse(self) -> None:
        if self.state != ParticipantState.DISCONNECTED:
            self._room.remove_participant(self, LeaveReason.PROTOCOL_VIOLATION)

    async def _rtcp_loop(self) -> None:
        while True:
            await asyncio.sleep(RTCP_INTERVAL)
            self.publisher.send_receiver_report()
            self.subscriber.send_sender_reports()
