"""A room: who is in it, what is published, who receives what, and when it closes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mediapod.config import LimitsConfig
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.data import DataCodec, DataMessage, recipients
from mediapod.rtc.events import RoomListener, RoomListeners
from mediapod.rtc.limits import check_participant
from mediapod.rtc.participant import LeaveReason, Participant, Permission, SignalSink
from mediapod.rtc.room_state import RoomState
from mediapod.rtc.speaker import UPDATE_INTERVAL, ActiveSpeakerDetector
from mediapod.rtc.track import PublishedTrack

if TYPE_CHECKING:
    from mediapod.rtc.context import MediaContext

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RoomSettings:
    """The knobs of one room (LiveKit's CreateRoomRequest)."""

    empty_timeout: int
    departure_timeout: int
    max_participants: int
    metadata: str = ""
    # (agent name, metadata) of agents to dispatch as the room starts (the creating token's roomConfig).
    agents: tuple[tuple[str, str], ...] = ()


class Room:
    """Participants and their tracks; auto-subscribes and closes itself when idle.

    A room nobody joins closes after ``empty_timeout``; once everyone has
    left it closes after ``departure_timeout`` (``empty_timeout`` if that is 0).
    While open it evaluates active speakers every ``UPDATE_INTERVAL`` and tells
    everyone when they change. Nothing about a participant that has left is
    sent to the others, whatever its stream still asks for.
    """

    def __init__(
        self,
        name: str,
        sid: str,
        settings: RoomSettings,
        context: MediaContext,
        on_closed: Callable[[Room], None],
        limits: LimitsConfig,
        listener: RoomListener | None = None,
    ) -> None:
        self.name = name
        self.sid = sid
        self.settings = settings
        self.limits = limits
        self.created_at = time.time()
        self.participants: dict[str, Participant] = {}
        self.closed = False
        self._context = context
        self._on_closed = on_closed
        # Told of every lifecycle event (webhooks, agent dispatch); it only enqueues.
        self._listener = listener or RoomListeners()
        self._ever_joined = False
        self._close_timer: asyncio.TimerHandle | None = None
        self._arm_close_timer()
        self._speakers = ActiveSpeakerDetector()
        self._speaker_task = asyncio.get_running_loop().create_task(self._speaker_loop(), name=f"speakers-{name}")
        self._listener.room_started(self.state())

    # -- membership -----------------------------------------------------------

    def join(
        self,
        identity: str,
        name: str,
        metadata: str,
        permission: Permission,
        auto_subscribe: bool,
        sink: SignalSink,
        attributes: Mapping[str, str] | None = None,
        data_codec: DataCodec | None = None,
    ) -> Participant:
        """Add a participant; the caller sends its join response, then calls ``activate``.

        Raises:
            RequestError: the room is closed or full, or a claim is over its limit.
        """
        if self.closed:
            raise RequestError(ErrorCode.UNAVAILABLE, f"room {self.name!r} is closed")
        attributes = attributes or {}
        check_participant(self.limits, identity, name, metadata, attributes)
        previous = self.participants.get(identity)
        if previous is not None:
            self.remove_participant(previous, LeaveReason.DUPLICATE_IDENTITY)
        limit = self.settings.max_participants
        if limit and len(self.participants) >= limit:
            raise RequestError(ErrorCode.RESOURCE_EXHAUSTED, f"room {self.name!r} is full ({limit} participants)")
        participant = Participant(
            self, self._context, identity, name, metadata, permission, auto_subscribe, sink, self.limits, attributes, data_codec
        )
        self.participants[identity] = participant
        self._ever_joined = True
        self._cancel_close_timer()
        return participant

    def activate(self, participant: Participant) -> None:
        """The participant's client has its join response: start it and tell the others."""
        participant.start(self.published_tracks(exclude=participant))
        if self.is_member(participant):
            self._listener.participant_joined(self.state(), participant)
        self.broadcast_update(participant)
        # Changes alone would leave a newcomer blind to someone already talking.
        if self._speakers.speakers:
            participant.sink.send_speakers_changed(list(self._speakers.speakers))

    def remove_participant(self, participant: Participant, reason: LeaveReason) -> None:
        if self.participants.get(participant.identity) is not participant:
            return
        del self.participants[participant.identity]
        if reason != LeaveReason.CLIENT_INITIATED:
            participant.sink.send_leave(reason)
        # Only one whose join went through was announced as joined (LiveKit's order: its tracks, then it).
        announced = participant.state.value in ("joined", "active")
        for track in participant.close():
            self._unsubscribe_all(track)
            if announced:
                self._listener.track_unpublished(self.state(), participant, track)
        if announced:
            self._listener.participant_left(self.state(), participant)
        self._speakers.forget(participant.sid)
        self._send_update(participant)  # its departure: the last update anyone gets about it
        self._context.counters.leaves[reason.value] += 1
        log.info("participant %s left room %s (%s)", participant.identity, self.name, reason.value)
        if not self.participants:
            self._arm_close_timer()

    # -- tracks ----------------------------------------------------------------

    def published_tracks(self, exclude: Participant | None = None) -> Iterator[PublishedTrack]:
        for participant in self.participants.values():
            if participant is not exclude:
                yield from participant.tracks.values()

    def find_track(self, sid: str) -> PublishedTrack | None:
        for participant in self.participants.values():
            track = participant.tracks.get(sid)
            if track is not None:
                return track
        return None

    def is_member(self, participant: Participant) -> bool:
        """Whether this participant (not merely one with its identity) is in the room."""
        return self.participants.get(participant.identity) is participant

    def on_track_published(self, publisher: Participant, track: PublishedTrack) -> None:
        """Tell everyone about the track, then subscribe those who auto-subscribe.

        The update goes first: LiveKit's SDKs match a track arriving in a
        subscriber offer to a publication they already know of, and drop it
        otherwise.
        """
        if not self.is_member(publisher):
            return
        self._listener.track_published(self.state(), publisher, track)
        self.broadcast_update(publisher)
        for participant in self.participants.values():
            if participant is not publisher and participant.auto_subscribe and participant.permission.can_subscribe:
                if participant.state.value in ("joined", "active"):
                    participant.subscriber.subscribe(track)

    def on_track_unpublished(self, publisher: Participant, track: PublishedTrack) -> None:
        if not self.is_member(publisher):
            return  # its tracks were unsubscribed when it left
        self._unsubscribe_all(track)
        self._listener.track_unpublished(self.state(), publisher, track)
        self.broadcast_update(publisher)

    def _unsubscribe_all(self, track: PublishedTrack) -> None:
        for participant in self.participants.values():
            participant.subscriber.unsubscribe(track.sid)

    # -- data packets ----------------------------------------------------------

    def on_data(self, sender: Participant, message: DataMessage) -> None:
        if self.is_member(sender):
            self.send_data(message)

    def send_data(self, message: DataMessage) -> int:
        """Deliver a data packet to everyone but its sender, or only to its destination identities; returns how many took it.

        The server API sends with no sender sid, so nobody is skipped as the sender.
        """
        return sum(1 for participant in recipients(message, list(self.participants.values())) if participant.deliver_data(message))

    # -- updates ---------------------------------------------------------------

    def broadcast_update(self, participant: Participant) -> None:
        """Tell everyone else about a participant's state and tracks (hidden ones stay hidden)."""
        if self.is_member(participant):
            self._send_update(participant)

    def _send_update(self, participant: Participant, *, to_itself: bool = False) -> None:
        for other in self.participants.values():
            if other is participant:
                if to_itself:
                    other.sink.send_participants_update([participant])
            elif not participant.permission.hidden:
                other.sink.send_participants_update([participant])

    def update_participant(
        self,
        participant: Participant,
        *,
        name: str | None = None,
        metadata: str | None = None,
        attributes: Mapping[str, str] | None = None,
        permission: Permission | None = None,
    ) -> None:
        """An administrator's change to a participant (Participant.update); everyone is told, the participant too.

        The participant hears of it as LiveKit's clients expect: its own
        ParticipantUpdate is how an SDK learns its new metadata or permission.
        A newly granted canSubscribe subscribes an auto-subscribing participant
        to what is already published, as joining would have.

        Raises:
            RequestError: the change is over a limit or not allowed (nothing changed).
        """
        could_subscribe = participant.permission.can_subscribe
        participant.update(name=name, metadata=metadata, attributes=attributes, permission=permission)
        granted = participant.permission.can_subscribe and not could_subscribe
        if granted and participant.auto_subscribe and participant.state.value in ("joined", "active"):
            for track in self.published_tracks(exclude=participant):
                participant.subscriber.subscribe(track)
        self._send_update(participant, to_itself=True)

    def set_metadata(self, metadata: str) -> None:
        """Replace the room's metadata and send every participant a RoomUpdate.

        Raises:
            RequestError: INVALID_ARGUMENT when it is over limits.max_metadata_size (the participants' limit too).
        """
        size, limit = len(metadata.encode()), self.limits.max_metadata_size
        if size > limit:
            raise RequestError(
                ErrorCode.INVALID_ARGUMENT, f"room metadata is {size} bytes, over the limit of {limit} (limits.max_metadata_size)"
            )
        self.settings.metadata = metadata
        state = self.state()
        for participant in self.participants.values():
            participant.sink.send_room_update(state)

    def state(self) -> RoomState:
        """What clients and the room API are told about this room right now."""
        settings = self.settings
        return RoomState(
            sid=self.sid,
            name=self.name,
            node_id=self._context.node_id,
            metadata=settings.metadata,
            empty_timeout=settings.empty_timeout,
            departure_timeout=settings.departure_timeout,
            max_participants=settings.max_participants,
            created_at=self.created_at,
            num_participants=len(self.participants),
            num_publishers=self.publisher_count,
            agents=settings.agents,
        )

    @property
    def publisher_count(self) -> int:
        return sum(1 for p in self.participants.values() if p.is_publisher)

    # -- active speakers -------------------------------------------------------

    async def _speaker_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(UPDATE_INTERVAL)
            self._update_speakers(loop.time())

    def _update_speakers(self, now: float) -> None:
        """Close one speaker interval: feed the detector, and on change tell every participant."""
        detector = self._speakers
        for participant in self.participants.values():
            windows = participant.drain_audio_levels()
            # Hidden participants (recorders, agents) are never shown
            # speaking: that would reveal them.
            if not participant.permission.hidden:
                for window in windows:
                    detector.observe(participant.sid, window)
        speakers = detector.update(now)
        if speakers is None:
            return
        for participant in self.participants.values():
            participant.sink.send_speakers_changed(speakers)
        self._context.counters.speaker_updates += len(self.participants)

    # -- closing ---------------------------------------------------------------

    def close(self, reason: str) -> None:
        """Disconnect everyone and stop all media of the room."""
        if self.closed:
            return
        self.closed = True
        self._cancel_close_timer()
        self._speaker_task.cancel()
        leave = LeaveReason.SERVER_SHUTDOWN if reason == "server shutdown" else LeaveReason.ROOM_DELETED
        for participant in list(self.participants.values()):
            self.remove_participant(participant, leave)
        self._listener.room_finished(self.state())
        self._on_closed(self)

    def _arm_close_timer(self) -> None:
        self._cancel_close_timer()
        if self.closed:
            return
        timeout = self.settings.empty_timeout
        if self._ever_joined and self.settings.departure_timeout > 0:
            timeout = self.settings.departure_timeout
        self._close_timer = asyncio.get_running_loop().call_later(timeout, self._close_if_empty)

    def _cancel_close_timer(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None

    def _close_if_empty(self) -> None:
        self._close_timer = None
        if not self.participants:
            self.close(reason="empty timeout")
