"""QueueSink: the room model's messages to one client, as SignalResponses in its ResponseQueue."""

from __future__ import annotations

import time

from mediapod.protocol import signal_pb2
from mediapod.rtc.errors import ErrorCode
from mediapod.rtc.participant import LeaveReason, Participant
from mediapod.rtc.room_state import RoomState
from mediapod.rtc.speaker import Speaker
from mediapod.rtc.track import TrackAnnouncement
from mediapod.signal import convert
from mediapod.signal.status import status_number
from mediapod.signal.stream import ResponseQueue


class QueueSink:
    """SignalSink that translates to protobuf and queues for the stream's writer.

    A leave is the last thing a session says: it ends the queue. Beyond the
    model's SignalSink it answers pings and reports refused requests.
    """

    def __init__(self, queue: ResponseQueue) -> None:
        self._queue = queue

    def send_offer(self, sdp: str) -> None:
        self._queue.put(signal_pb2.SignalResponse(offer=signal_pb2.SessionDescription(type="offer", sdp=sdp)))

    def send_answer(self, sdp: str) -> None:
        self._queue.put(signal_pb2.SignalResponse(answer=signal_pb2.SessionDescription(type="answer", sdp=sdp)))

    def send_track_published(self, cid: str, sid: str, announcement: TrackAnnouncement) -> None:
        info = convert.announced_track_info(sid, announcement)
        self._queue.put(signal_pb2.SignalResponse(track_published=signal_pb2.TrackPublishedResponse(cid=cid, track=info)))

    def send_track_unpublished(self, track_sid: str) -> None:
        unpublished = signal_pb2.TrackUnpublishedResponse(track_sid=track_sid)
        self._queue.put(signal_pb2.SignalResponse(track_unpublished=unpublished))

    def send_participants_update(self, participants: list[Participant]) -> None:
        update = signal_pb2.ParticipantUpdate(participants=[convert.participant_info(p) for p in participants])
        self._queue.put(signal_pb2.SignalResponse(update=update))

    def send_mute(self, track_sid: str, muted: bool) -> None:
        self._queue.put(signal_pb2.SignalResponse(mute=signal_pb2.MuteTrackRequest(sid=track_sid, muted=muted)))

    def send_leave(self, reason: LeaveReason) -> None:
        self._queue.put(signal_pb2.SignalResponse(leave=signal_pb2.LeaveRequest(reason=convert.LEAVE_REASONS[reason])))
        self._queue.end()

    def send_speakers_changed(self, speakers: list[Speaker]) -> None:
        self._queue.put(signal_pb2.SignalResponse(speakers_changed=convert.speakers_changed(speakers)))

    def send_room_update(self, room: RoomState) -> None:
        self._queue.put(signal_pb2.SignalResponse(room_update=signal_pb2.RoomUpdate(room=convert.room_info(room))))

    def send_pong(self, ping_timestamp: int) -> None:
        pong = signal_pb2.Pong(last_ping_timestamp=ping_timestamp, timestamp=int(time.time() * 1000))
        self._queue.put(signal_pb2.SignalResponse(pong=pong))

    def send_error(self, request_id: int, code: ErrorCode, message: str) -> None:
        error = signal_pb2.ErrorResponse(request_id=request_id, code=status_number(code), message=message)
        self._queue.put(signal_pb2.SignalResponse(error=error))
