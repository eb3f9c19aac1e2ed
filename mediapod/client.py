"""Python client for Switchboard rooms: gRPC signaling, aiortc for the media.

Server-side agents use it to take part in a room, and our tests use it as the
real peer, so it follows the wire contract (proto/switchboard/v1/signal.proto)
and nothing else. Like LiveKit's SDKs it keeps two PeerConnections: on the
publisher PC we offer and the server answers; on the subscriber PC the server
offers and we answer.

Requires the ``switchboard[client]`` extra (aiortc)::

    async with await connect("127.0.0.1:7881", token) as session:
        await session.publish(VideoStreamTrack(), name="camera")
        [remote] = await session.wait_for_tracks(1, kind="video")
        frame = await remote.track.recv()
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import grpc
import sdp_transform
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from mediapod.protocol import models_pb2, signal_pb2, signal_pb2_grpc

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0

# How long leave() waits for the server to end the stream after our
# LeaveRequest; past that we hang up ourselves.
LEAVE_GRACE = 2.0

# Bounds Session.messages, so an agent that stays in a room for days does not
# keep every participant update it ever saw.
MESSAGE_HISTORY = 10_000

_TRACK_TYPES = {"audio": models_pb2.AUDIO, "video": models_pb2.VIDEO}


class JoinError(Exception):
    """The server refused the join (or never answered it); code says why."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class RequestFailed(Exception):
    """The server answered a request with an ErrorResponse; the session stays up."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


@dataclass(slots=True)
class RemoteTrack:
    """A track the server forwards to us on the subscriber PeerConnection."""

    sid: str
    kind: str  # "audio" | "video"
    participant_sid: str
    track: MediaStreamTrack
    receiver: RTCRtpReceiver


@dataclass(slots=True)
class _Waiter:
    """A request waiting for a response of one oneof kind (or its ErrorResponse)."""

    request_id: int
    expect: str
    match: Callable[[signal_pb2.SignalResponse], bool] | None
    future: asyncio.Future[signal_pb2.SignalResponse]


class Session:
    """One participant in one room: the signal stream and both PeerConnections.

    Created by connect(). All state is updated by one reader task, so callers
    observe it between awaits without locks; wait_for() re-checks a condition
    whenever that state may have changed. Use ``async with`` (or call leave()
    or close()) so the tasks, the stream and the PeerConnections end with it.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        call: grpc.aio.StreamStreamCall,
        join: signal_pb2.JoinResponse,
    ) -> None:
        self.join = join
        self.participant = join.participant
        # Everyone else in the room; our own info is in self.participant.
        self.participants: dict[str, models_pb2.ParticipantInfo] = {
            p.sid: p for p in join.other_participants
        }
        self.remote_tracks: dict[str, RemoteTrack] = {}
        self.published_tracks: dict[str, models_pb2.TrackInfo] = {}
        # Who is speaking, loudest first, as of the last SpeakersChanged
        # (our own participant included); wait_for() on it to follow speakers.
        self.active_speakers: list[signal_pb2.SpeakerInfo] = []
        self.messages: collections.deque[signal_pb2.SignalResponse] = collections.deque(maxlen=MESSAGE_HISTORY)
        # ErrorResponses no request awaited (request_id 0 or already given up).
        self.errors: list[signal_pb2.ErrorResponse] = []
        self.leave_reason: int | None = None  # LeaveRequest.Reason, set if the server ended the session
        self.close_reason = ""
        self.closed = asyncio.Event()

        # No ICE servers: aiortc otherwise asks Google's STUN server, and the
        # server gives us its reachable host candidate in the SDP anyway.
        self.publisher_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.subscriber_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        for pc in (self.publisher_pc, self.subscriber_pc):
            pc.on("connectionstatechange", self._notify)

        self._channel = channel
        self._call = call
        self._request_ids = itertools.count(1)
        self._write_lock = asyncio.Lock()
        self._publish_lock = asyncio.Lock()
        self._waiters: list[_Waiter] = []
        self._changed = asyncio.Event()
        self._offers: asyncio.Queue[signal_pb2.SessionDescription] = asyncio.Queue()
        self._close_task: asyncio.Task[None] | None = None
        self._reader = asyncio.create_task(self._read_signals(), name="switchboard-signal-reader")
        self._answerer = asyncio.create_task(self._answer_offers(), name="switchboard-subscriber-answerer")

    @property
    def participant_sid(self) -> str:
        return self.participant.sid

    @property
    def room_name(self) -> str:
        return self.join.room.name

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.leave()

    # -- publishing ---------------------------------------------------------

    async def publish(
        self,
        track: MediaStreamTrack,
        *,
        name: str = "",
        source: int = models_pb2.TRACK_SOURCE_UNSPECIFIED,
        codec: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> models_pb2.TrackInfo:
        """Announce track, send it on the publisher PC, return once the server answered.

        codec ("video/H264", or just "H264") restricts the offer to that codec
        so a test can choose what the server has to forward.

        Raises:
            RequestFailed: the server refused the track or the offer.
            TimeoutError: no answer within timeout.
        """
        preferences = _codec_preferences(track.kind, codec) if codec else None
        announce = signal_pb2.SignalRequest(
            add_track=signal_pb2.AddTrackRequest(
                cid=track.id, name=name, type=_TRACK_TYPES[track.kind], source=source
            )
        )
        # One negotiation at a time: an offer made while another awaits its
        # answer would leave the PC in have-local-offer when that answer lands.
        async with asyncio.timeout(timeout), self._publish_lock:
            published = await self.request(
                announce,
                "track_published",
                match=lambda r: r.track_published.cid == track.id,
                timeout=timeout,
            )
            # aiortc writes track.id into a=msid, which is how the server
            # matches this m-line to the announcement above.
            transceiver = self.publisher_pc.addTransceiver(track, direction="sendonly")
            if preferences:
                transceiver.setCodecPreferences(preferences)
            offer = await self.publisher_pc.createOffer()
            await self.publisher_pc.setLocalDescription(offer)
            response = await self.request(
                signal_pb2.SignalRequest(
                    offer=signal_pb2.SessionDescription(type="offer", sdp=self.publisher_pc.localDescription.sdp)
                ),
                "answer",
                timeout=timeout,
            )
            await self.publisher_pc.setRemoteDescription(
                RTCSessionDescription(sdp=response.answer.sdp, type="answer")
            )
        # A copy: set_muted() edits it, and self.messages must keep what was received.
        info = models_pb2.TrackInfo()
        info.CopyFrom(published.track_published.track)
        self.published_tracks[info.sid] = info
        return info

    async def set_muted(self, track_sid: str, muted: bool) -> None:
        """Tell the server one of our tracks is (un)muted; media keeps flowing from aiortc."""
        await self.send(signal_pb2.SignalRequest(mute=signal_pb2.MuteTrackRequest(sid=track_sid, muted=muted)))
        if track_sid in self.published_tracks:
            self.published_tracks[track_sid].muted = muted

    async def send_offer_sdp(self, sdp: str) -> int:
        """Send raw SDP as a publisher offer, bypassing aiortc; returns its request_id.

        For tests of malformed offers: the publisher PC is untouched, and the
        server's ErrorResponse lands in self.errors (or use request() to await it).
        """
        return await self.send(signal_pb2.SignalRequest(offer=signal_pb2.SessionDescription(type="offer", sdp=sdp)))

    # -- subscribing --------------------------------------------------------

    async def subscribe(self, track_sids: list[str], subscribe: bool = True) -> None:
        """Ask for (or stop) tracks; the server follows up with a subscriber offer."""
        await self.send(
            signal_pb2.SignalRequest(
                subscription=signal_pb2.UpdateSubscription(track_sids=track_sids, subscribe=subscribe)
            )
        )

    async def set_video_quality(
        self,
        track_sids: list[str],
        quality: int = signal_pb2.HIGH,
        *,
        width: int = 0,
        height: int = 0,
        max_temporal_layer: int | None = None,
    ) -> None:
        """Ask for a simulcast layer (by quality, or the size to fit); it changes on the next keyframe."""
        settings = signal_pb2.UpdateTrackSettings(track_sids=track_sids, quality=quality, width=width, height=height)
        if max_temporal_layer is not None:
            settings.max_temporal_layer = max_temporal_layer
        await self.send(signal_pb2.SignalRequest(track_settings=settings))

    async def wait_for_tracks(
        self, count: int, kind: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> list[RemoteTrack]:
        """Wait until at least count remote tracks (of kind) are here; return all of them."""

        def matching() -> list[RemoteTrack]:
            return [t for t in self.remote_tracks.values() if kind is None or t.kind == kind]

        await self.wait_for(lambda _: len(matching()) >= count, timeout=timeout)
        return matching()

    # -- generic requests and observation -------------------------------------

    async def wait_for(self, predicate: Callable[[Session], bool], timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until predicate(self) holds, re-checked after every change of session state.

        Raises:
            TimeoutError: it did not hold within timeout.
            ConnectionError: the session closed before it held.
        """
        try:
            async with asyncio.timeout(timeout):
                while not predicate(self):
                    if self.closed.is_set():
                        raise ConnectionError(f"session closed ({self.close_reason}) before the condition held")
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"condition not met within {timeout}s") from None

    async def request(
        self,
        req: signal_pb2.SignalRequest,
        expect: str,
        *,
        match: Callable[[signal_pb2.SignalResponse], bool] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> signal_pb2.SignalResponse:
        """Send req and return the first later response whose oneof is expect (and match()es).

        Responses carry no request id, so correlation is by kind; callers that
        can be confused by a concurrent request pass match. An ErrorResponse
        echoing req.request_id (assigned here if unset) fails the request.

        Raises:
            RequestFailed: the server answered with an ErrorResponse.
            TimeoutError: nothing within timeout.
            ConnectionError: the session closed first.
        """
        if not req.request_id:
            req.request_id = next(self._request_ids)
        waiter = _Waiter(req.request_id, expect, match, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            await self.send(req, timeout=timeout)
            async with asyncio.timeout(timeout):
                return await waiter.future
        except TimeoutError:
            raise TimeoutError(f"no {expect} for request {req.request_id} within {timeout}s") from None
        finally:
            self._waiters.remove(waiter)

    async def send(self, req: signal_pb2.SignalRequest, *, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Write one request to the signal stream; assigns and returns its request_id."""
        if self._close_task is not None:
            # Checked before writing: grpc.aio raises CancelledError for a
            # write to a call we cancelled, which would look like our caller
            # being cancelled.
            raise ConnectionError(f"session closed ({self.close_reason})")
        if not req.request_id:
            req.request_id = next(self._request_ids)
        try:
            # grpc.aio allows one write in flight per call.
            async with self._write_lock, asyncio.timeout(timeout):
                await self._call.write(req)
        except grpc.aio.AioRpcError as exc:
            raise ConnectionError(f"signal stream ended: {exc.code().name}: {exc.details()}") from None
        except asyncio.InvalidStateError as exc:  # the stream ended or we half-closed it
            raise ConnectionError(f"signal stream ended: {exc}") from None
        return req.request_id

    # -- ending -------------------------------------------------------------

    async def leave(self, timeout: float = LEAVE_GRACE) -> None:
        """Leave the room politely: send LeaveRequest, let the server hang up, then close."""
        if not self.closed.is_set() and self._close_task is None:
            self.close_reason = self.close_reason or "left"
            with contextlib.suppress(ConnectionError, TimeoutError):
                await self.send(signal_pb2.SignalRequest(leave=signal_pb2.LeaveRequest()), timeout=timeout)
                async with asyncio.timeout(timeout):
                    await self._call.done_writing()
                # The server ending the stream is our receipt for the leave;
                # cancelling at once could drop it with the stream.
                await asyncio.wait({self._reader}, timeout=timeout)
        await self.close()

    async def close(self) -> None:
        """Hang up without a LeaveRequest: cancel tasks, end the stream, close both PCs."""
        self.close_reason = self.close_reason or "closed by client"
        # Shielded so a caller's cancellation cannot leave a half-closed session.
        await asyncio.shield(self._start_shut_down())

    def _start_shut_down(self) -> asyncio.Task[None]:
        # One shutdown however many paths (caller, stream end, failed offer)
        # ask for it; the session owns the task and close() awaits it.
        if self._close_task is None:
            self._close_task = asyncio.create_task(self._shut_down(), name="switchboard-session-close")
        return self._close_task

    async def _shut_down(self) -> None:
        for task in (self._reader, self._answerer):
            task.cancel()
        await asyncio.gather(self._reader, self._answerer, return_exceptions=True)
        self._call.cancel()
        await self._channel.close()
        for pc in (self.publisher_pc, self.subscriber_pc):
            try:
                async with asyncio.timeout(DEFAULT_TIMEOUT):
                    await pc.close()
            except Exception:
                log.exception("closing a PeerConnection failed")
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(ConnectionError(f"session closed ({self.close_reason})"))
        self.closed.set()
        self._notify()

    # -- the reader and the answerer ------------------------------------------

    async def _read_signals(self) -> None:
        """Apply server messages in arrival order until the stream ends, then close."""
        try:
            while True:
                response = await self._call.read()
                if response is grpc.aio.EOF:
                    self.close_reason = self.close_reason or "server ended the stream"
                    break
                self.messages.append(response)
                self._apply(response)
                self._notify()
        except grpc.aio.AioRpcError as exc:
            self.close_reason = self.close_reason or f"stream failed: {exc.code().name}: {exc.details()}"
        except Exception as exc:
            log.exception("applying a signal message failed")
            self.close_reason = self.close_reason or f"client error: {exc!r}"
        finally:
            # Also on cancellation, which only _shut_down does: then this is
            # the task already running.
            self._start_shut_down()

    def _apply(self, response: signal_pb2.SignalResponse) -> None:
        kind = response.WhichOneof("message")
        if kind == "error":
            self._fail_request(response.error)
            return
        for waiter in self._waiters:
            if waiter.expect == kind and not waiter.future.done() and (waiter.match is None or waiter.match(response)):
                waiter.future.set_result(response)
                break
        if kind == "offer":
            self._offers.put_nowait(response.offer)
        elif kind == "update":
            self._apply_participants(response.update.participants)
        elif kind == "track_unpublished":
            self.remote_tracks.pop(response.track_unpublished.track_sid, None)
            self.published_tracks.pop(response.track_unpublished.track_sid, None)
        elif kind == "speakers_changed":
            # Each update lists every current speaker, so it replaces the old
            # list; the inactive entries only announce who stopped.
            self.active_speakers = [s for s in response.speakers_changed.speakers if s.active]
        elif kind == "mute" and response.mute.sid in self.published_tracks:
            self.published_tracks[response.mute.sid].muted = response.mute.muted
        elif kind == "leave":
            self.leave_reason = response.leave.reason
            self.close_reason = f"server sent leave ({signal_pb2.LeaveRequest.Reason.Name(response.leave.reason)})"

    def _fail_request(self, error: signal_pb2.ErrorResponse) -> None:
        for waiter in self._waiters:
            if error.request_id and waiter.request_id == error.request_id and not waiter.future.done():
                waiter.future.set_exception(RequestFailed(_status_code(error.code), error.message))
                return
        self.errors.append(error)

    def _apply_participants(self, participants: Iterable[models_pb2.ParticipantInfo]) -> None:
        for info in participants:
            if info.sid == self.participant_sid:
                self.participant = info
            elif info.state == models_pb2.ParticipantInfo.DISCONNECTED:
                self.participants.pop(info.sid, None)
                for sid in [s for s, t in self.remote_tracks.items() if t.participant_sid == info.sid]:
                    del self.remote_tracks[sid]
            else:
                self.participants[info.sid] = info

    async def _answer_offers(self) -> None:
        """Answer subscriber offers one by one, in the order the server sent them."""
        while True:
            offer = await self._offers.get()
            pc = self.subscriber_pc
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
                await pc.setLocalDescription(await pc.createAnswer())
                self._track_remote_media(offer.sdp)
            except Exception as exc:
                # The server waits for this answer and has no way to retract
                # its offer, so the subscriber side cannot recover: end it.
                log.exception("cannot answer the subscriber offer")
                self.close_reason = self.close_reason or f"cannot answer subscriber offer: {exc!r}"
                self._start_shut_down()
                return
            try:
                await self.send(
                    signal_pb2.SignalRequest(
                        answer=signal_pb2.SessionDescription(type="answer", sdp=pc.localDescription.sdp)
                    )
                )
            except ConnectionError:
                return
            self._notify()

    def _track_remote_media(self, offer_sdp: str) -> None:
        """Bring remote_tracks in line with the m-lines of an applied subscriber offer.

        Read from the SDP rather than pc.on("track"): aiortc fires that once
        per transceiver and needs a=msid-semantic to name the track, while a
        slot may turn inactive or (later) carry another track.
        """
        transceivers = {t.mid: t for t in self.subscriber_pc.getTransceivers()}
        for media in sdp_transform.parse(offer_sdp).get("media", []):
            transceiver = transceivers.get(str(media.get("mid")))
            if transceiver is None or media.get("type") not in ("audio", "video"):
                continue
            stream_id, _, track_sid = str(media.get("msid", "")).partition(" ")
            participant_sid = stream_id.partition("|")[0]  # the stream id is "<participant sid>|<track sid>"
            sending = media.get("direction", "sendrecv") in ("sendonly", "sendrecv") and media.get("port") != 0
            for sid in [s for s, t in self.remote_tracks.items() if t.receiver is transceiver.receiver]:
                if not sending or sid != track_sid:
                    del self.remote_tracks[sid]
            track = transceiver.receiver.track
            if sending and track_sid and track is not None and track_sid not in self.remote_tracks:
                self.remote_tracks[track_sid] = RemoteTrack(
                    sid=track_sid,
                    kind=media["type"],
                    participant_sid=participant_sid,
                    track=track,
                    receiver=transceiver.receiver,
                )

    def _notify(self) -> None:
        # Wake every wait_for() once; each re-checks its predicate and waits
        # on the fresh event.
        self._changed.set()
        self._changed = asyncio.Event()


async def connect(
    target: str,
    token: str,
    *,
    room: str = "",
    auto_subscribe: bool = True,
    credentials: grpc.ChannelCredentials | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Session:
    """Open the signal stream to target ("host:port"), join, and return the live Session.

    room may be empty: the server then uses the room in the token.

    Raises:
        JoinError: the server refused (UNAUTHENTICATED, PERMISSION_DENIED,
            NOT_FOUND, ...), was unreachable (UNAVAILABLE) or did not answer
            within timeout (DEADLINE_EXCEEDED).
    """
    channel = grpc.aio.secure_channel(target, credentials) if credentials else grpc.aio.insecure_channel(target)
    call = signal_pb2_grpc.SignalStub(channel).Connect()
    join = signal_pb2.SignalRequest(
        join=signal_pb2.JoinRequest(token=token, room=room, disable_auto_subscribe=not auto_subscribe)
    )
    try:
        try:
            async with asyncio.timeout(timeout):
                await call.write(join)
                first = await call.read()
                if first is grpc.aio.EOF:
                    code, details = await call.code(), await call.details()
                    if code == grpc.StatusCode.OK:
                        code, details = grpc.StatusCode.UNKNOWN, "stream ended without a join response"
                    raise JoinError(code, details)
        except grpc.aio.AioRpcError as exc:
            raise JoinError(exc.code(), exc.details() or "") from None
        except TimeoutError:
            raise JoinError(grpc.StatusCode.DEADLINE_EXCEEDED, f"no join response within {timeout}s") from None
        if first.WhichOneof("message") != "join":
            raise JoinError(grpc.StatusCode.INTERNAL, f"expected a join response, got {first.WhichOneof('message')}")
    except BaseException:
        call.cancel()
        await channel.close()
        raise
    return Session(channel, call, first.join)


def _codec_preferences(kind: str, codec: str) -> list[RTCRtpCodecCapability]:
    """aiortc's capabilities for one codec, plus its rtx so NACK repair keeps working."""
    mime = codec if "/" in codec else f"{kind}/{codec}"
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for c in capabilities if c.mimeType.lower() == mime.lower()]
    if not chosen:
        offered = sorted({c.mimeType for c in capabilities})
        raise ValueError(f"aiortc cannot send {mime}; it offers {', '.join(offered)}")
    return chosen + [c for c in capabilities if c.mimeType.lower() == f"{kind}/rtx"]


def _status_code(value: int) -> grpc.StatusCode:
    return next((c for c in grpc.StatusCode if c.value[0] == value), grpc.StatusCode.UNKNOWN)
