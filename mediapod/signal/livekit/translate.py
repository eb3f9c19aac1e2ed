"""One session's messages between LiveKit's signaling vocabulary and ours.

LiveKit's SignalRequest and SignalResponse (livekit_rtc.proto) carry the
same conversation as our signal.proto with other names and a few extras.
The translation is stateful in three small ways, all per session: requests
are numbered so a refusal (our ErrorResponse, LiveKit's RequestResponse) can
name and echo the request it refuses; the answer to a publisher offer echoes
the offer's id; and a ping is answered in the style it came in (the legacy
``ping``/``pong`` integers or ``ping_req``/``pong_resp``).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from livekit.protocol import models as lk_models
from livekit.protocol import rtc as lk

from mediapod.protocol import models_pb2, signal_pb2
from mediapod.rtc.errors import ErrorCode
from mediapod.signal.decoding import UndecodableRequest
from mediapod.signal.livekit import models
from mediapod.signal.status import error_code

# LiveKit's SDKs turn features on by the server version they are told: RPC
# needs 1.8.0 or later (the SDKs refuse perform_rpc below it). A LiveKit
# client is told the LiveKit release whose client-facing protocol this front
# end serves; our own version travels beside it in ServerInfo.debug_info.
LIVEKIT_VERSION = "1.8.0"

# Refused requests whose body a RequestResponse can echo, remembered this many at a time.
_REMEMBERED_REQUESTS = 64

_LEAVE_REASONS = {
    signal_pb2.LeaveRequest.CLIENT_INITIATED: lk_models.CLIENT_INITIATED,
    signal_pb2.LeaveRequest.ROOM_DELETED: lk_models.ROOM_DELETED,
    signal_pb2.LeaveRequest.PARTICIPANT_REMOVED: lk_models.PARTICIPANT_REMOVED,
    signal_pb2.LeaveRequest.DUPLICATE_IDENTITY: lk_models.DUPLICATE_IDENTITY,
    signal_pb2.LeaveRequest.SERVER_SHUTDOWN: lk_models.SERVER_SHUTDOWN,
    signal_pb2.LeaveRequest.TRANSPORT_FAILURE: lk_models.MEDIA_FAILURE,
    signal_pb2.LeaveRequest.PROTOCOL_VIOLATION: lk_models.STATE_MISMATCH,
    signal_pb2.LeaveRequest.SIGNAL_STALLED: lk_models.SIGNAL_CLOSE,
}
_REFUSALS = {
    ErrorCode.NOT_FOUND: lk.RequestResponse.NOT_FOUND,
    ErrorCode.PERMISSION_DENIED: lk.RequestResponse.NOT_ALLOWED,
    ErrorCode.UNAUTHENTICATED: lk.RequestResponse.NOT_ALLOWED,
    ErrorCode.RESOURCE_EXHAUSTED: lk.RequestResponse.LIMIT_EXCEEDED,
    ErrorCode.INVALID_ARGUMENT: lk.RequestResponse.INVALID_REQUEST,
    ErrorCode.FAILED_PRECONDITION: lk.RequestResponse.INVALID_REQUEST,
    ErrorCode.UNIMPLEMENTED: lk.RequestResponse.UNSUPPORTED_TYPE,
}


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A well-formed LiveKit request this server does not act on yet; dropped and counted, the session goes on."""

    kind: str


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """What a LiveKit JoinResponse says beyond our own: keepalive timing and who the server is."""

    version: str             # ours (switchboard's), not the LiveKit version we speak
    ping_interval: int = 5   # seconds between the client's pings; 0 would crash LiveKit's Rust core
    ping_timeout: int = 15   # seconds without a pong after which the client reconnects
    region: str = ""


class LiveKitTranslator:
    """Translates one LiveKit session's requests into ours and our responses into LiveKit's."""

    def __init__(self, settings: ServerSettings) -> None:
        self._settings = settings
        self._next_request_id = 1
        self._remembered: collections.OrderedDict[int, lk.SignalRequest] = collections.OrderedDict()
        self._publisher_offer_id = 0
        self._subscriber_offer_id = 0
        self._legacy_ping = False

    # -- client to server ---------------------------------------------------

    def request(self, data: bytes) -> signal_pb2.SignalRequest | UndecodableRequest | Unsupported:
        """Our SignalRequest for one binary frame; never raises."""
        try:
            theirs = lk.SignalRequest.FromString(data)
        except Exception as exc:  # noqa: BLE001 - any decoding failure is the client's bad bytes
            detail = str(exc).rpartition(": ")[2] or type(exc).__name__
            return UndecodableRequest(f"a LiveKit SignalRequest of {len(data)} bytes could not be decoded ({detail})")
        kind = theirs.WhichOneof("message")
        ours = signal_pb2.SignalRequest(request_id=self._next_request_id)
        self._next_request_id += 1
        if kind == "offer":
            self._publisher_offer_id = theirs.offer.id
            ours.offer.CopyFrom(signal_pb2.SessionDescription(type=theirs.offer.type, sdp=theirs.offer.sdp))
        elif kind == "answer":
            ours.answer.CopyFrom(signal_pb2.SessionDescription(type=theirs.answer.type, sdp=theirs.answer.sdp))
        elif kind == "trickle":
            ours.trickle.CopyFrom(signal_pb2.TrickleRequest(candidate_init=theirs.trickle.candidateInit, target=theirs.trickle.target))
        elif kind == "add_track":
            ours.add_track.CopyFrom(_add_track(theirs.add_track))
        elif kind == "mute":
            ours.mute.CopyFrom(signal_pb2.MuteTrackRequest(sid=theirs.mute.sid, muted=theirs.mute.muted))
        elif kind == "subscription":
            subscription = theirs.subscription
            sids = [*subscription.track_sids, *(sid for p in subscription.participant_tracks for sid in p.track_sids)]
            ours.subscription.CopyFrom(signal_pb2.UpdateSubscription(track_sids=sids, subscribe=subscription.subscribe))
        elif kind == "track_setting":
            # LiveKit's `disabled` (pause without renegotiating) has no counterpart yet; the size and quality do.
            setting = theirs.track_setting
            ours.track_settings.CopyFrom(
                signal_pb2.UpdateTrackSettings(
                    track_sids=list(setting.track_sids),
                    quality=min(setting.quality, lk_models.HIGH),
                    width=setting.width,
                    height=setting.height,
                )
            )
        elif kind == "leave":
            ours.leave.CopyFrom(signal_pb2.LeaveRequest(reason=signal_pb2.LeaveRequest.CLIENT_INITIATED))
        elif kind in ("ping", "ping_req"):
            self._legacy_ping = kind == "ping"
            ours.ping.timestamp = theirs.ping if kind == "ping" else theirs.ping_req.timestamp
        else:
            return Unsupported(kind or "empty")
        if kind in ("trickle", "add_track", "mute"):
            self._remember(ours.request_id, theirs)
        return ours

    def _remember(self, request_id: int, request: lk.SignalRequest) -> None:
        self._remembered[request_id] = request
        while len(self._remembered) > _REMEMBERED_REQUESTS:
            self._remembered.popitem(last=False)

    # -- server to client ---------------------------------------------------

    def response(self, ours: signal_pb2.SignalResponse) -> lk.SignalResponse | None:
        """LiveKit's SignalResponse for one of ours; None for one LiveKit has no word for."""
        kind = ours.WhichOneof("message")
        if kind == "join":
            return lk.SignalResponse(join=self._join(ours.join))
        if kind == "answer":
            return lk.SignalResponse(answer=lk.SessionDescription(type="answer", sdp=ours.answer.sdp, id=self._publisher_offer_id))
        if kind == "offer":
            self._subscriber_offer_id += 1
            return lk.SignalResponse(offer=lk.SessionDescription(type="offer", sdp=ours.offer.sdp, id=self._subscriber_offer_id))
        if kind == "trickle":
            return lk.SignalResponse(trickle=lk.TrickleRequest(candidateInit=ours.trickle.candidate_init, target=ours.trickle.target))
        if kind == "update":
            return lk.SignalResponse(update=lk.ParticipantUpdate(participants=[models.participant(p) for p in ours.update.participants]))
        if kind == "track_published":
            published = ours.track_published
            return lk.SignalResponse(track_published=lk.TrackPublishedResponse(cid=published.cid, track=models.track(published.track)))
        if kind == "track_unpublished":
            return lk.SignalResponse(track_unpublished=lk.TrackUnpublishedResponse(track_sid=ours.track_unpublished.track_sid))
        if kind == "leave":
            reason = _LEAVE_REASONS.get(ours.leave.reason, lk_models.UNKNOWN_REASON)
            return lk.SignalResponse(leave=lk.LeaveRequest(reason=reason, action=lk.LeaveRequest.DISCONNECT))
        if kind == "mute":
            return lk.SignalResponse(mute=lk.MuteTrackRequest(sid=ours.mute.sid, muted=ours.mute.muted))
        if kind == "room_update":
            return lk.SignalResponse(room_update=lk.RoomUpdate(room=models.room(ours.room_update.room)))
        if kind == "speakers_changed":
            speakers = [lk_models.SpeakerInfo(sid=s.sid, level=s.level, active=s.active) for s in ours.speakers_changed.speakers]
            return lk.SignalResponse(speakers_changed=lk.SpeakersChanged(speakers=speakers))
        if kind == "pong":
            pong = ours.pong
            if self._legacy_ping:
                return lk.SignalResponse(pong=pong.timestamp)
            return lk.SignalResponse(pong_resp=lk.Pong(last_ping_timestamp=pong.last_ping_timestamp, timestamp=pong.timestamp))
        if kind == "error":
            return lk.SignalResponse(request_response=self._refusal(ours.error))
        return None

    def _join(self, join: signal_pb2.JoinResponse) -> lk.JoinResponse:
        settings = self._settings
        return lk.JoinResponse(
            room=models.room(join.room),
            participant=models.participant(join.participant),
            other_participants=[models.participant(p) for p in join.other_participants],
            server_version=LIVEKIT_VERSION,
            server_info=lk_models.ServerInfo(
                edition=lk_models.ServerInfo.Standard,
                version=LIVEKIT_VERSION,
                node_id=join.node_id,
                region=settings.region,
                debug_info=f"switchboard {settings.version}",
            ),
            server_region=settings.region,
            # We answer the publisher PeerConnection: the client negotiates it
            # (its data channels) at once, and no subscriber offer is due until
            # there is something to receive.
            subscriber_primary=False,
            ping_interval=settings.ping_interval,
            ping_timeout=settings.ping_timeout,
        )

    def _refusal(self, error: signal_pb2.ErrorResponse) -> lk.RequestResponse:
        # request_id is the client's own id, which only some requests carry
        # (UpdateParticipantMetadata); ours would resolve an unrelated pending
        # request in the SDK. The echoed request says what was refused.
        refusal = lk.RequestResponse(
            reason=_REFUSALS.get(error_code(error.code), lk.RequestResponse.UNCLASSIFIED_ERROR),
            message=error.message,
        )
        request = self._remembered.pop(error.request_id, None)
        if request is not None:
            kind = request.WhichOneof("message")
            getattr(refusal, kind).CopyFrom(getattr(request, kind))
        return refusal


def resume_refusal() -> lk.SignalResponse:
    """Tells a client asking to resume (``reconnect=1``) to join afresh: sessions cannot be resumed yet.

    LiveKit's SDKs answer a leave with the RECONNECT action by reconnecting in
    full (a new join, tracks published again), which is what works today.
    """
    leave = lk.LeaveRequest(can_reconnect=True, reason=lk_models.STATE_MISMATCH, action=lk.LeaveRequest.RECONNECT)
    return lk.SignalResponse(leave=leave)


def _add_track(theirs: lk.AddTrackRequest) -> signal_pb2.AddTrackRequest:
    # Clients that publish several codecs describe the layers per codec; the first codec's are the primary's.
    layers = theirs.layers or (theirs.simulcast_codecs[0].layers if theirs.simulcast_codecs else [])
    return signal_pb2.AddTrackRequest(
        cid=theirs.cid,
        name=theirs.name,
        type=models.TRACK_TYPES_BACK.get(theirs.type, 0),
        source=theirs.source,
        muted=theirs.muted,
        width=theirs.width,
        height=theirs.height,
        layers=[
            models_pb2.SimulcastLayer(
                rid=layer.rid or models.QUALITY_RID.get(layer.quality, ""),
                width=layer.width,
                height=layer.height,
                bitrate=layer.bitrate,
            )
            for layer in layers
        ],
    )
