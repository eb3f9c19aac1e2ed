"""gRPC front end: the Signal stream per participant and the RoomService API.

Failures to join end the stream with a status (UNAUTHENTICATED for a token
that does not verify, PERMISSION_DENIED for one that does not allow this).
Once joined, a bad request is answered with an ErrorResponse carrying the
request id and the session stays up, so one malformed offer cannot cost a
participant its media. Bytes that are no SignalRequest at all are a protocol
violation: the stream ends with INVALID_ARGUMENT.

A session ends as soon as its participant leaves the room, whoever caused
it, so a removed client's stream is read no further. Responses wait in a
bounded queue; a client that does not take them within the limits ends with
SIGNAL_STALLED.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, NoReturn

import grpc

from mediapod import auth
from mediapod.config import LimitsConfig
from mediapod.protocol import room_service_pb2, room_service_pb2_grpc, signal_pb2, signal_pb2_grpc
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.node import MediaNode
from mediapod.rtc.participant import LeaveReason, Participant, Permission
from mediapod.rtc.room import Room
from mediapod.rtc.speaker import Speaker
from mediapod.rtc.track import TrackAnnouncement
from mediapod.routing.router import Router
from mediapod.signal import convert
from mediapod.signal.decoding import UndecodableRequest

if TYPE_CHECKING:
    from mediapod.signal.relay import SignalRelay

log = logging.getLogger(__name__)

SERVER_VERSION = "0.1.0"
# A client has this long after opening the stream to send its JoinRequest.
JOIN_TIMEOUT = 10.0
# Time given to a session's last responses (a leave, say) to go out.
FLUSH_TIMEOUT = 2.0


def status_of(code: ErrorCode) -> grpc.StatusCode:
    return grpc.StatusCode[code.value]


class ProtocolViolation(Exception):
    """The client sent something that is not the protocol; its session ends with INVALID_ARGUMENT."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class QueueSink:
    """SignalSink that queues protobuf responses for the stream's writer task, within a byte budget.

    A client that stops reading makes grpc's write() wait on HTTP/2 flow
    control, and responses pile up here. Rather than grow the pod's memory
    without bound, the sink stops queueing once ``max_bytes`` wait and marks
    the session stalled; the session then ends with SIGNAL_STALLED.
    """

    def __init__(self, max_bytes: int) -> None:
        self._queue: asyncio.Queue[tuple[signal_pb2.SignalResponse, int] | None] = asyncio.Queue()
        self._max_bytes = max_bytes
        self._queued_bytes = 0
        # Set when nothing more will be queued: a leave was sent, the session is over, or it stalled.
        self.ended = asyncio.Event()
        self.stalled = False

    def _put(self, response: signal_pb2.SignalResponse) -> None:
        if self.ended.is_set():
            return
        size = response.ByteSize()
        if self._queued_bytes + size > self._max_bytes:
            self.stall()
            return
        self._queued_bytes += size
        self._queue.put_nowait((response, size))

    async def next(self) -> signal_pb2.SignalResponse | None:
        """The next response to write; None once the sink has ended and everything before was taken."""
        item = await self._queue.get()
        if item is None:
            return None
        response, size = item
        self._queued_bytes -= size
        return response

    def stall(self) -> None:
        """The client is not taking its responses: queue nothing more; the session ends with SIGNAL_STALLED."""
        self.stalled = True
        self.end()

    def end(self) -> None:
        if not self.ended.is_set():
            self.ended.set()
            self._queue.put_nowait(None)

    def send_offer(self, sdp: str) -> None:
        self._put(signal_pb2.SignalResponse(offer=signal_pb2.SessionDescription(type="offer", sdp=sdp)))

    def send_answer(self, sdp: str) -> None:
        self._put(signal_pb2.SignalResponse(answer=signal_pb2.SessionDescription(type="answer", sdp=sdp)))

    def send_track_published(self, cid: str, sid: str, announcement: TrackAnnouncement) -> None:
        info = convert.announced_track_info(sid, announcement)
        self._put(signal_pb2.SignalResponse(track_published=signal_pb2.TrackPublishedResponse(cid=cid, track=info)))

    def send_track_unpublished(self, track_sid: str) -> None:
        self._put(signal_pb2.SignalResponse(track_unpublished=signal_pb2.TrackUnpublishedResponse(track_sid=track_sid)))

    def send_participants_update(self, participants: list[Participant]) -> None:
        update = signal_pb2.ParticipantUpdate(participants=[convert.participant_info(p) for p in participants])
        self._put(signal_pb2.SignalResponse(update=update))

    def send_mute(self, track_sid: str, muted: bool) -> None:
        self._put(signal_pb2.SignalResponse(mute=signal_pb2.MuteTrackRequest(sid=track_sid, muted=muted)))

    def send_leave(self, reason: LeaveReason) -> None:
        self._put(signal_pb2.SignalResponse(leave=signal_pb2.LeaveRequest(reason=convert.LEAVE_REASONS[reason])))
        self.end()

    def send_speakers_changed(self, speakers: list[Speaker]) -> None:
        self._put(signal_pb2.SignalResponse(speakers_changed=convert.speakers_changed(speakers)))

    def send_pong(self, ping_timestamp: int) -> None:
        pong = signal_pb2.Pong(last_ping_timestamp=ping_timestamp, timestamp=int(time.time() * 1000))
        self._put(signal_pb2.SignalResponse(pong=pong))

    def send_error(self, request_id: int, code: ErrorCode, message: str) -> None:
        error = signal_pb2.ErrorResponse(request_id=request_id, code=status_of(code).value[0], message=message)
        self._put(signal_pb2.SignalResponse(error=error))


class SignalServicer(signal_pb2_grpc.SignalServicer):
    """One Connect stream per participant session."""

    def __init__(self, node: MediaNode, router: Router, verifier: auth.TokenVerifier) -> None:
        self._node = node
        self._router = router
        self._verifier = verifier
        # Set when rooms may live on other nodes (RedisRouter): sessions for them are relayed.
        self.relay: SignalRelay | None = None

    async def Connect(self, request_iterator: object, context: grpc.aio.ServicerContext) -> None:  # noqa: N802
        join = await self._read_join(context)
        claims = await _verify(self._verifier, join.token, context)
        room_name = join.room or claims.video.room
        try:
            auth.require_room_join(claims, room_name)
        except auth.PermissionDenied as exc:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, exc.reason)
        try:
            node_id = await self._router.node_for_room(room_name)
        except RequestError as exc:
            await context.abort(status_of(exc.code), exc.message)
        if node_id != self._node.context.node_id:
            if self.relay is None:
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"room {room_name!r} is hosted on node {node_id!r}")
            await self.relay.forward(node_id, join, claims, room_name, context)
            return
        await self.host_session(join, claims, room_name, context)

    async def host_session(
        self, join: signal_pb2.JoinRequest, claims: auth.Claims, room_name: str, context: grpc.aio.ServicerContext
    ) -> None:
        """Join the participant to room_name on this node and run its session until it ends.

        context is the participant's own stream, or the relay of a stream
        that landed on another node (same read/write/abort).
        """
        limits = self._node.config.limits
        sink = QueueSink(limits.signal_queue_size)
        try:
            room = self._node.room_for_join(room_name)
            grant = claims.video
            participant = room.join(
                identity=claims.identity,
                name=claims.name,
                metadata=claims.metadata,
                permission=Permission(grant.can_publish, grant.can_subscribe, grant.can_publish_data, grant.hidden),
                auto_subscribe=not join.disable_auto_subscribe,
                sink=sink,
                attributes=claims.attributes,
            )
        except RequestError as exc:
            await context.abort(status_of(exc.code), exc.message)
        others = [convert.participant_info(p) for p in room.participants.values() if p is not participant and not p.permission.hidden]
        response = signal_pb2.SignalResponse(
            join=signal_pb2.JoinResponse(
                room=convert.room_info(room, self._node.context.node_id),
                participant=convert.participant_info(participant),
                other_participants=others,
                server_version=SERVER_VERSION,
                node_id=self._node.context.node_id,
            )
        )
        try:
            await asyncio.wait_for(context.write(response), limits.signal_write_timeout)
        except TimeoutError:
            room.remove_participant(participant, LeaveReason.SIGNAL_STALLED)
            return
        log.info("participant %s joined room %s", participant.identity, room.name)
        await self._run_session(room, participant, sink, context, limits)

    async def _read_join(self, context: grpc.aio.ServicerContext) -> signal_pb2.JoinRequest:
        try:
            first = await asyncio.wait_for(context.read(), JOIN_TIMEOUT)
        except asyncio.TimeoutError:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "no JoinRequest within 10 s")
        if isinstance(first, UndecodableRequest):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, first.reason)
        if first is grpc.aio.EOF or not first.HasField("join"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first SignalRequest must be a JoinRequest")
        return first.join

    async def _run_session(
        self, room: Room, participant: Participant, sink: QueueSink, context: grpc.aio.ServicerContext, limits: LimitsConfig
    ) -> None:
        """Serve the participant until its client leaves, stalls or violates the protocol, or the room lets it go."""
        loop = asyncio.get_running_loop()
        writer = loop.create_task(_write_responses(sink, context, limits.signal_write_timeout))
        room.activate(participant)
        reader = loop.create_task(self._read_requests(participant, sink, context))
        # The room ending the participant (removal, duplicate identity,
        # transport failure) ends the sink: stop reading its stream then.
        ended = loop.create_task(sink.ended.wait())
        violation: ProtocolViolation | None = None
        try:
            done, _ = await asyncio.wait({reader, writer, ended}, return_when=asyncio.FIRST_COMPLETED)
            for task in done & {reader, writer}:
                error = None if task.cancelled() else task.exception()
                if isinstance(error, ProtocolViolation):
                    violation = error
                elif error is not None:
                    # A bug, not bad input (that becomes an ErrorResponse):
                    # end this session loudly and keep the pod serving.
                    log.error("session of %s failed", participant.identity, exc_info=error)
        finally:
            reader.cancel()
            ended.cancel()
            if sink.stalled:
                reason = LeaveReason.SIGNAL_STALLED
            elif violation is not None:
                reason = LeaveReason.PROTOCOL_VIOLATION
            else:
                reason = LeaveReason.CLIENT_INITIATED
            room.remove_participant(participant, reason)
            sink.end()
            if sink.stalled:
                writer.cancel()  # the client takes nothing: no leave can reach it
                flushed = False
            else:
                flushed = await _flush(writer, FLUSH_TIMEOUT)
        if not flushed:
            log.info("participant %s: its client is not reading; the stream is abandoned", participant.identity)
            # grpc.aio cannot send a status behind a message that waits for flow
            # control the client never opens (the status send would hang, then
            # fail at shutdown). Ending as cancelled sends nothing; the stream
            # goes with the client's connection or the server's stop.
            raise asyncio.CancelledError("signal stream not read")
        if violation is not None:
            log.info("participant %s ended for a protocol violation: %s", participant.identity, violation.message)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, violation.message)

    async def _read_requests(self, participant: Participant, sink: QueueSink, context: grpc.aio.ServicerContext) -> None:
        while True:
            request = await context.read()
            if request is grpc.aio.EOF:
                return
            if isinstance(request, UndecodableRequest):
                raise ProtocolViolation(request.reason)
            kind = request.WhichOneof("message")
            if kind == "leave":
                return
            try:
                await _dispatch(participant, sink, request, kind)
            except RequestError as exc:
                sink.send_error(request.request_id, exc.code, exc.message)


async def _dispatch(participant: Participant, sink: QueueSink, request: signal_pb2.SignalRequest, kind: str | None) -> None:
    """Apply one in-session request to the participant."""
    if kind == "offer":
        await participant.handle_offer(request.offer.type, request.offer.sdp)
    elif kind == "answer":
        participant.handle_answer(request.answer.type, request.answer.sdp)
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
        # Our transport is ICE-lite: the client's checks reveal its addresses,
        # so its candidates need no processing.
        pass
    elif kind == "ping":
        sink.send_pong(request.ping.timestamp)
    elif kind == "join":
        raise RequestError(ErrorCode.FAILED_PRECONDITION, "already joined")
    else:
        raise RequestError(ErrorCode.INVALID_ARGUMENT, "empty SignalRequest")


async def _flush(writer: asyncio.Task[None], timeout: float) -> bool:
    """Let the writer send what is queued (a leave, say); False if the stream did not take it in time."""
    try:
        await asyncio.wait_for(writer, timeout)
        return True
    except (TimeoutError, asyncio.CancelledError, grpc.aio.AioRpcError):
        writer.cancel()
        return False


async def _write_responses(sink: QueueSink, context: grpc.aio.ServicerContext, timeout: float) -> None:
    """Write queued responses in order; one the client does not take within timeout stalls the session.

    grpc.aio's write() waits for HTTP/2 flow control, so a client that never
    reads would hold it forever without the deadline.
    """
    while (response := await sink.next()) is not None:
        try:
            await asyncio.wait_for(context.write(response), timeout)
        except TimeoutError:
            sink.stall()
            return


async def _verify(verifier: auth.TokenVerifier, token: str, context: grpc.aio.ServicerContext) -> auth.Claims:
    try:
        return verifier.verify(token)
    except auth.PermissionDenied as exc:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, exc.reason)
    except auth.AuthError as exc:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.reason)
    raise AssertionError("unreachable: abort raises")


class RoomServicer(room_service_pb2_grpc.RoomServiceServicer):
    """Room administration on this node, authorized by the caller's token grants."""

    def __init__(self, node: MediaNode, verifier: auth.TokenVerifier) -> None:
        self._node = node
        self._verifier = verifier

    async def _claims(self, context: grpc.aio.ServicerContext) -> auth.Claims:
        metadata = dict(context.invocation_metadata() or ())
        header = metadata.get("authorization", "")
        if not isinstance(header, str) or not header.lower().startswith("bearer "):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing 'authorization: Bearer <token>' metadata")
        return await _verify(self._verifier, header[7:].strip(), context)

    async def _require(self, context: grpc.aio.ServicerContext, grant: str, room: str = "") -> None:
        claims = await self._claims(context)
        video = claims.video
        if not getattr(video, grant):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"token does not grant {_CLAIM_NAMES[grant]}")
        if grant == "room_admin" and not video.room:
            # As in LiveKit: an admin grant is for one room, never for all of them.
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, "token grants roomAdmin but names no room; an admin token must name its room"
            )
        if grant == "room_admin" and video.room != room:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"token administers room {video.room!r}, not {room!r}")

    async def _room(self, name: str, context: grpc.aio.ServicerContext) -> Room:
        room = self._node.rooms.get(name)
        if room is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"room {name!r} does not exist")
        return room  # type: ignore[return-value]

    async def CreateRoom(self, request: room_service_pb2.CreateRoomRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        await self._require(context, "room_create")
        try:
            # proto3 cannot tell 0 from unset: a request that sets either
            # timeout is taken to set both, so "empty 5 s, departure 0" works.
            explicit = bool(request.empty_timeout or request.departure_timeout)
            room = self._node.create_room(
                request.name,
                empty_timeout=request.empty_timeout if explicit else None,
                departure_timeout=request.departure_timeout if explicit else None,
                max_participants=request.max_participants or None,
                metadata=request.metadata,
            )
        except RequestError as exc:
            await _abort(context, exc)
        return convert.room_info(room, self._node.context.node_id)

    async def ListRooms(self, request: room_service_pb2.ListRoomsRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        await self._require(context, "room_list")
        names = set(request.names)
        rooms = [
            convert.room_info(room, self._node.context.node_id)
            for room in self._node.rooms.values()
            if not names or room.name in names
        ]
        return room_service_pb2.ListRoomsResponse(rooms=rooms)

    async def DeleteRoom(self, request: room_service_pb2.DeleteRoomRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        await self._require(context, "room_create")
        try:
            self._node.delete_room(request.room)
        except RequestError as exc:
            await _abort(context, exc)
        return room_service_pb2.DeleteRoomResponse()

    async def ListParticipants(self, request: room_service_pb2.ListParticipantsRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        await self._require(context, "room_admin", request.room)
        room = await self._room(request.room, context)
        return room_service_pb2.ListParticipantsResponse(
            participants=[convert.participant_info(p) for p in room.participants.values()]
        )

    async def RemoveParticipant(self, request: room_service_pb2.RoomParticipantIdentity, context: grpc.aio.ServicerContext):  # noqa: N802
        await self._require(context, "room_admin", request.room)
        room = await self._room(request.room, context)
        participant = room.participants.get(request.identity)
        if participant is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no participant {request.identity!r} in room {request.room!r}")
        room.remove_participant(participant, LeaveReason.PARTICIPANT_REMOVED)
        return room_service_pb2.RemoveParticipantResponse()

    async def MutePublishedTrack(self, request: room_service_pb2.MuteRoomTrackRequest, context: grpc.aio.ServicerContext):  # noqa: N802
        await self._require(context, "room_admin", request.room)
        room = await self._room(request.room, context)
        participant = room.participants.get(request.identity)
        if participant is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no participant {request.identity!r} in room {request.room!r}")
        try:
            track = participant.set_track_muted(request.track_sid, request.muted)
        except RequestError as exc:
            await _abort(context, exc)
        participant.sink.send_mute(track.sid, track.muted)
        return room_service_pb2.MuteRoomTrackResponse(track=convert.track_info(track))


_CLAIM_NAMES = {"room_create": "roomCreate", "room_list": "roomList", "room_admin": "roomAdmin"}


async def _abort(context: grpc.aio.ServicerContext, exc: RequestError) -> NoReturn:
    await context.abort(status_of(exc.code), exc.message)
    raise AssertionError("unreachable: abort raises")
