"""A participant's signal session on the node that hosts its room, independent of the wire.

The session joins the participant (the token was verified by the caller),
sends the join response, then applies each request to the Participant until
the client leaves, stalls or breaks the protocol, or the room lets the
participant go; it leaves the room on the way out. Its client may be on a
gRPC stream here or on another node behind the relay: both are a
SignalTransport, and both get the same bounds (stream.py).

Once joined, a bad request is answered with an ErrorResponse carrying the
request id and the session stays up, so one malformed offer cannot cost a
participant its media. Failures to join, and bytes that are no
SignalRequest at all, end the session with a RequestError for the front end
to report as a status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from mediapod import auth
from mediapod.protocol import signal_pb2
from mediapod.rtc.data import DataCodec
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.node import MediaNode
from mediapod.rtc.participant import LeaveReason, Participant, Permission
from mediapod.rtc.room import Room
from mediapod.signal import convert
from mediapod.signal.sink import QueueSink
from mediapod.signal.stream import (
    ProtocolViolation,
    ResponseQueue,
    SignalTransport,
    StreamAbandoned,
    next_request,
    serve_stream,
)
from mediapod.signal.trickle import check_candidate_init

log = logging.getLogger(__name__)

SERVER_VERSION = "0.1.0"
# A client has this long after opening the stream to send its JoinRequest.
JOIN_TIMEOUT = 10.0


async def read_join(transport: SignalTransport) -> signal_pb2.JoinRequest:
    """The client's first request, which must be a JoinRequest.

    Raises:
        RequestError: DEADLINE_EXCEEDED when none comes within JOIN_TIMEOUT.
        ProtocolViolation: anything else came first.
    """
    try:
        first = await asyncio.wait_for(next_request(transport), JOIN_TIMEOUT)
    except TimeoutError:
        raise RequestError(ErrorCode.DEADLINE_EXCEEDED, f"no JoinRequest within {JOIN_TIMEOUT:.0f} s") from None
    if first is None or not first.HasField("join"):
        raise ProtocolViolation("the first SignalRequest must be a JoinRequest")
    return first.join


class SessionHost:
    """Joins participants to rooms on this node and serves their sessions."""

    def __init__(self, node: MediaNode, data_codecs: Mapping[str, DataCodec] | None = None) -> None:
        """data_codecs: the data packet framings front ends may name in a JoinRequest's data_format.

        The framing travels in the join, not with the front end's transport,
        so a session relayed from another node gets its data channels too.
        """
        self._node = node
        self._data_codecs = dict(data_codecs or {})

    async def serve(self, join: signal_pb2.JoinRequest, claims: auth.Claims, room_name: str, transport: SignalTransport) -> None:
        """Join the participant the claims name to room_name and serve it until its session ends.

        Raises:
            RequestError: the join was refused (no such room, full, a claim over its limits).
            ProtocolViolation: the client broke the protocol; it was told with a leave first.
            StreamAbandoned: the client is not reading.
        """
        limits = self._node.config.limits
        queue = ResponseQueue(limits.signal_queue_size)
        sink = QueueSink(queue)
        data_codec = self._data_codec(join.data_format)
        room = self._node.room_for_join(room_name, claims.room_agents)
        grant = claims.video
        participant = room.join(
            identity=claims.identity,
            name=claims.name,
            metadata=claims.metadata,
            permission=Permission(grant.can_publish, grant.can_subscribe, grant.can_publish_data, grant.hidden),
            auto_subscribe=not join.disable_auto_subscribe,
            sink=sink,
            attributes=claims.attributes,
            data_codec=data_codec,
        )
        try:
            await asyncio.wait_for(transport.write(self._join_response(room, participant)), limits.signal_write_timeout)
        except TimeoutError:
            room.remove_participant(participant, LeaveReason.SIGNAL_STALLED)
            raise StreamAbandoned(f"participant {participant.identity}") from None
        log.info("participant %s joined room %s", participant.identity, room.name)
        room.activate(participant)

        async def read_requests() -> None:
            while (request := await next_request(transport)) is not None:
                if request.WhichOneof("message") == "leave":
                    return
                try:
                    await dispatch(participant, sink, request)
                except RequestError as exc:
                    sink.send_error(request.request_id, exc.code, exc.message)

        await serve_stream(
            transport,
            queue,
            limits.signal_write_timeout,
            read_requests,
            lambda reason: room.remove_participant(participant, reason),
            f"participant {participant.identity}",
        )

    def _data_codec(self, data_format: str) -> DataCodec | None:
        """The codec a join names; None for a client that uses no data channels.

        Raises:
            RequestError: INVALID_ARGUMENT for a framing this node does not know.
        """
        if not data_format:
            return None
        codec = self._data_codecs.get(data_format)
        if codec is None:
            raise RequestError(ErrorCode.INVALID_ARGUMENT, f"unknown data_format {data_format!r}; known: {sorted(self._data_codecs)}")
        return codec

    def _join_response(self, room: Room, participant: Participant) -> signal_pb2.SignalResponse:
        node_id = self._node.context.node_id
        others = [convert.participant_info(p) for p in room.participants.values() if p is not participant and not p.permission.hidden]
        return signal_pb2.SignalResponse(
            join=signal_pb2.JoinResponse(
                room=convert.room_info(room.state()),
                participant=convert.participant_info(participant),
                other_participants=others,
                server_version=SERVER_VERSION,
                node_id=node_id,
            )
        )


async def dispatch(participant: Participant, sink: QueueSink, request: signal_pb2.SignalRequest) -> None:
    """Apply one in-session request to the participant.

    Raises:
        RequestError: the request was refused; the client gets an ErrorResponse.
    """
    kind = request.WhichOneof("message")
    if kind == "offer":
        await participant.handle_offer(request.offer.type, request.offer.sdp)
    elif kind == "answer":
        await participant.handle_answer(request.answer.type, request.answer.sdp)
    elif kind == "add_track":
        participant.announce_track(convert.announcement_from_proto(request.add_track))
    elif kind == "remove_track":
        participant.unpublish(request.remove_track.sid)
    elif kind == "mute":
        track = participant.set_track_muted(request.mute.sid, request.mute.muted)
        sink.send_mute(track.sid, track.muted)
    elif kind == "track_settings":
        settings = request.track_settings
        participant.update_track_settings(
            list(settings.track_sids),
            settings.quality,
            settings.width,
            settings.height,
            settings.max_temporal_layer if settings.HasField("max_temporal_layer") else None,
        )
    elif kind == "subscription":
        participant.update_subscriptions(list(request.subscription.track_sids), request.subscription.subscribe)
    elif kind == "trickle":
        check_candidate_init(request.trickle.candidate_init)  # checked, then unused: we are ICE-lite
    elif kind == "ping":
        sink.send_pong(request.ping.timestamp)
    elif kind == "join":
        raise RequestError(ErrorCode.FAILED_PRECONDITION, "already joined")
    else:
        raise RequestError(ErrorCode.INVALID_ARGUMENT, "empty SignalRequest")
