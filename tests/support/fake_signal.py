"""Test doubles of the signal layer's surroundings: a client's stream, verified claims, and Redis pub/sub.

Each replaces a wire or a server, never the component under test: the
sessions, queues, relay, rooms and media nodes they drive are the product's
own, on a socket-free media context (tests/support/fake_client.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from mediapod import auth
from mediapod.config import LimitsConfig, MediaConfig
from mediapod.protocol import relay_pb2, signal_pb2
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.rtc.node import MediaNode
from mediapod.signal.decoding import UndecodableRequest
from mediapod.signal.gateway import SignalGateway
from mediapod.signal.relay import SignalRelay
from mediapod.signal.room_admin import RoomAdmin
from mediapod.signal.room_routing import RoutedRoomAdmin
from mediapod.signal.session import SessionHost
from tests.support.fake_client import media_pod

Incoming = signal_pb2.SignalRequest | UndecodableRequest | BaseException | None


class FakeTransport:
    """Requests are handed over with send(); responses are taken while ``reading`` is set, else writes wait."""

    def __init__(self, *, reading: bool = True) -> None:
        self._incoming: asyncio.Queue[Incoming] = asyncio.Queue()
        self.taken: list[signal_pb2.SignalResponse] = []
        self.reading = asyncio.Event()
        if reading:
            self.reading.set()

    def send(self, item: Incoming) -> None:
        """What the client sends next: a request, undecodable bytes, None to hang up, or an error the read raises."""
        self._incoming.put_nowait(item)

    def request(self, request_id: int = 0, **message: object) -> None:
        self.send(signal_pb2.SignalRequest(request_id=request_id, **message))

    def hang_up(self) -> None:
        self.send(None)

    async def read(self) -> signal_pb2.SignalRequest | UndecodableRequest | None:
        item = await self._incoming.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def write(self, response: signal_pb2.SignalResponse) -> None:
        await self.reading.wait()  # a client that does not read holds the write, as HTTP/2 flow control does
        self.taken.append(response)

    def kinds(self) -> list[str]:
        return [str(response.WhichOneof("message")) for response in self.taken]

    def of(self, kind: str) -> list[signal_pb2.SignalResponse]:
        return [response for response in self.taken if response.WhichOneof("message") == kind]

    async def until(self, kind: str, count: int = 1, timeout: float = 2.0) -> list[signal_pb2.SignalResponse]:
        """The responses of one kind once at least count were taken."""
        async with asyncio.timeout(timeout):
            while len(self.of(kind)) < count:
                await asyncio.sleep(0.005)
        return self.of(kind)


def claims(identity: str = "alice", room: str = "room", **grant: object) -> auth.Claims:
    """What TokenVerifier.verify returns for a token with these grants (joining room unless told otherwise)."""
    video = auth.VideoGrant(**{"room_join": True, "room": room, **grant})  # type: ignore[arg-type]
    return auth.Claims(
        identity=identity,
        name=identity.title(),
        metadata="",
        video=video,
        api_key="key",
        exp=datetime.now(timezone.utc) + timedelta(hours=1),
        nbf=None,
    )


def new_node(limits: LimitsConfig | None = None, node_id: str = "node-test") -> MediaNode:
    """A MediaNode whose UdpMux is real and whose socket is a recorder (tests.support.fake_client)."""
    config = dataclasses.replace(MediaConfig(), node_id=node_id, limits=limits or LimitsConfig())
    return MediaNode(config, dataclasses.replace(media_pod().context, node_id=node_id))


KEY, SECRET = "relay-test", "s" * 32
ROOM = "room"


class Bus:
    """The pub/sub channels of every node and the shared room -> node map."""

    def __init__(self) -> None:
        self.routers: dict[str, MemoryRouter] = {}
        self.room_map: dict[str, str] = {}
        self.gone: set[str] = set()


class MemoryRouter:
    """What the relay uses of RedisRouter, over a Bus instead of Redis."""

    def __init__(self, bus: Bus, node_id: str) -> None:
        self._bus = bus
        self._node_id = node_id
        self.on_message: Callable[[relay_pb2.RelayMessage], None] | None = None  # RedisRouter.start's handler
        self.draining = False
        bus.routers[node_id] = self

    @property
    def node_id(self) -> str:
        return self._node_id

    async def send(self, node_id: str, message: relay_pb2.RelayMessage) -> None:
        target = self._bus.routers.get(node_id)
        if target is None or target.on_message is None or node_id in self._bus.gone:
            raise RequestError(ErrorCode.UNAVAILABLE, f"node {node_id!r} is not listening")
        message.from_node = self._node_id
        delivered = relay_pb2.RelayMessage.FromString(message.SerializeToString())
        asyncio.get_running_loop().call_soon(target.on_message, delivered)

    async def node_for_room(self, room_name: str, avoid: str = "") -> str:
        host = self._bus.room_map.get(room_name)
        if host is None or host == avoid:
            host = next(n for n in self._bus.routers if n != avoid)
            self._bus.room_map[room_name] = host
        return host

    async def hosting_node(self, room_name: str) -> str | None:
        return self._bus.room_map.get(room_name)

    async def room_nodes(self) -> dict[str, str]:
        return dict(self._bus.room_map)

    def accepts_room(self, room_name: str) -> bool:
        return not self.draining

    def is_gone(self, node_id: str, patience: float = 1.0) -> bool:
        return node_id in self._bus.gone


@dataclasses.dataclass
class Node:
    """One media node wired as main.py and Cluster wire it."""

    media: MediaNode
    router: MemoryRouter
    relay: SignalRelay
    gateway: SignalGateway
    rooms: RoutedRoomAdmin


def token(identity: str = "alice", room: str = ROOM, **grant: object) -> str:
    video = auth.VideoGrant(**{"room_join": True, "room": room, **grant})  # type: ignore[arg-type]
    return auth.AccessToken(KEY, SECRET).with_identity(identity).with_grant(video).to_jwt()


def start_node(bus: Bus, node_id: str, limits: LimitsConfig, keys: dict[str, str] | None = None) -> Node:
    media = new_node(limits, node_id)
    verifier = auth.TokenVerifier(keys or {KEY: SECRET})
    sessions, local_rooms = SessionHost(media), RoomAdmin(media)
    router = MemoryRouter(bus, node_id)
    relay = SignalRelay(router, sessions, local_rooms, verifier, limits, check_interval=0.02)
    router.on_message = relay.handle  # as RedisRouter.start(on_message=relay.handle) does in Cluster.start
    return Node(media, router, relay, SignalGateway(sessions, router, verifier, relay), RoutedRoomAdmin(local_rooms, router, relay.call))
