"""The rooms one media pod hosts, and the transport resources they share."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from mediapod.config import MediaConfig
from mediapod.metrics import MediaCounters, RoomGauges
from mediapod.rtc.context import MediaContext, new_sid
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.events import RoomListener, RoomListeners
from mediapod.rtc.room import Room, RoomSettings
from mediapod.rtc.ssrc_guard import UnknownSsrcLimits
from mediapod.sfu.allocator import AllocatorState
from mediapod.transport.dtls import DtlsCertificate
from mediapod.transport.udp import UdpMux

log = logging.getLogger(__name__)


class MediaNode:
    """Creates, finds and closes the rooms of this node."""

    def __init__(self, config: MediaConfig, context: MediaContext, listener: RoomListener | None = None) -> None:
        self.config = config
        self.context = context
        # Told of every room's lifecycle (webhooks, agent dispatch).
        self.listener = listener or RoomListeners()
        self.rooms: dict[str, Room] = {}
        # Told the name of each room that closes (the router forgets where it was).
        self.room_closed_listeners: list[Callable[[str], None]] = []

    @classmethod
    async def start(
        cls, config: MediaConfig, listener: RoomListener | None = None, counters: MediaCounters | None = None
    ) -> MediaNode:
        """Open the node's UDP port; ``counters`` are shared with what main.py builds before the node (webhooks)."""
        counters = counters or MediaCounters()
        mux = await UdpMux.listen(config.rtc.bind_ip, config.rtc.udp_port, counters)
        assert mux.local_address is not None
        certificate = DtlsCertificate.generate()
        context = MediaContext(
            node_id=config.node_id,
            mux=mux,
            certificate=certificate,
            ssl_context=certificate.ssl_context(),
            advertised_ip=config.rtc.advertised_ip,
            udp_port=config.rtc.advertised_port or mux.local_address[1],
            counters=counters,
            connect_timeout=config.rtc.connect_timeout,
            congestion_control=config.rtc.congestion_control,
            unknown_ssrc_limits=UnknownSsrcLimits(
                max_ssrcs=config.rtc.max_unknown_ssrcs, max_packets=config.rtc.max_unknown_ssrc_packets
            ),
        )
        return cls(config, context, listener)

    def create_room(
        self,
        name: str,
        empty_timeout: int | None = None,
        departure_timeout: int | None = None,
        max_participants: int | None = None,
        metadata: str = "",
        agents: tuple[tuple[str, str], ...] = (),
    ) -> Room:
        """The room of that name, created with these settings if it does not exist yet."""
        if not name:
            raise RequestError(ErrorCode.INVALID_ARGUMENT, "room name must not be empty")
        room = self.rooms.get(name)
        if room is not None:
            return room
        defaults = self.config.room
        settings = RoomSettings(
            empty_timeout=defaults.empty_timeout if empty_timeout is None else empty_timeout,
            departure_timeout=defaults.departure_timeout if departure_timeout is None else departure_timeout,
            max_participants=defaults.max_participants if max_participants is None else max_participants,
            metadata=metadata,
            agents=agents,
        )
        room = Room(
            name, new_sid("RM_"), settings, self.context,
            on_closed=self._on_room_closed, limits=self.config.limits, listener=self.listener,
        )
        self.rooms[name] = room
        log.info("room %s created", name)
        return room

    def room_for_join(self, name: str, agents: tuple[tuple[str, str], ...] = ()) -> Room:
        """The room to join, created if it does not exist; ``agents`` (the joining token's roomConfig) only apply to a new room."""
        room = self.rooms.get(name)
        if room is not None:
            return room
        if not self.config.room.auto_create:
            raise RequestError(ErrorCode.NOT_FOUND, f"room {name!r} does not exist and auto-create is off")
        return self.create_room(name, agents=agents)

    def delete_room(self, name: str) -> None:
        room = self.rooms.get(name)
        if room is None:
            raise RequestError(ErrorCode.NOT_FOUND, f"room {name!r} does not exist")
        room.close(reason="room deleted")

    def gauges(self) -> RoomGauges:
        participants = published = subscribed = stable = deficient = paused = 0
        jitter = target = sent = 0.0
        now = time.monotonic()
        for room in self.rooms.values():
            participants += len(room.participants)
            for participant in room.participants.values():
                published += len(participant.tracks)
                subscribed += participant.subscriber.downtrack_count
                for track in participant.tracks.values():
                    for layer in track.layers:
                        jitter = max(jitter, layer.stats.jitter / layer.clock_rate)
                bandwidth = participant.subscriber.bandwidth
                if bandwidth.state is AllocatorState.STABLE:
                    stable += 1
                else:
                    deficient += 1
                paused += bandwidth.paused_tracks
                target += bandwidth.target_bps
                sent += bandwidth.sent_bps(now)
        return RoomGauges(
            len(self.rooms), participants, published, subscribed, jitter,
            allocators_stable=stable, allocators_deficient=deficient, paused_tracks=paused,
            target_bitrate_bps=target, sent_bitrate_bps=sent,
        )

    def close(self) -> None:
        for room in list(self.rooms.values()):
            room.close(reason="server shutdown")
        self.context.mux.close()

    def _on_room_closed(self, room: Room) -> None:
        if self.rooms.get(room.name) is room:
            del self.rooms[room.name]
            log.info("room %s closed", room.name)
            for listener in self.room_closed_listeners:
                listener(room.name)
