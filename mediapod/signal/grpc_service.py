"""gRPC front end: the Signal stream and the RoomService, translated to and from the session layer.

Nothing here decides anything: a Connect stream becomes a SignalTransport
for the SignalGateway, a RoomService call becomes a call on a RoomService
with the caller's verified token, and a RequestError becomes the status of
the same name. A session that failed to join, or whose client broke the
protocol, ends with that status; one whose client stopped reading ends as
cancelled (grpc.aio cannot send a status behind a message that waits for
flow control the client never opens).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from mediapod import auth
from mediapod.protocol import models_pb2, room_service_pb2, room_service_pb2_grpc, signal_pb2
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.signal.access import Caller, authenticate
from mediapod.signal.decoding import UndecodableRequest, decode_signal_request
from mediapod.signal.gateway import SignalGateway
from mediapod.signal.room_admin import RoomService
from mediapod.signal.stream import StreamAbandoned

Response = TypeVar("Response")

SIGNAL_SERVICE = "switchboard.v1.Signal"


def status_of(code: ErrorCode) -> grpc.StatusCode:
    return grpc.StatusCode[code.value]


def add_signal_service(connect: Callable[..., Awaitable[None]], server: grpc.aio.Server) -> None:
    """Serve Signal.Connect with ``connect``, its requests decoded by decode_signal_request.

    Replaces the generated add_SignalServicer_to_server, whose deserializer raises.
    """
    handlers = {
        "Connect": grpc.stream_stream_rpc_method_handler(
            connect,
            request_deserializer=decode_signal_request,
            response_serializer=signal_pb2.SignalResponse.SerializeToString,
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SIGNAL_SERVICE, handlers),))
    server.add_registered_method_handlers(SIGNAL_SERVICE, handlers)


class GrpcSignalTransport:
    """SignalTransport over one Connect stream."""

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._context = context

    async def read(self) -> signal_pb2.SignalRequest | UndecodableRequest | None:
        request = await self._context.read()
        return None if request is grpc.aio.EOF else request

    async def write(self, response: signal_pb2.SignalResponse) -> None:
        await self._context.write(response)


class SignalServicer:
    """Signal.Connect: one stream per participant session."""

    def __init__(self, gateway: SignalGateway) -> None:
        self._gateway = gateway

    async def Connect(self, request_iterator: object, context: grpc.aio.ServicerContext) -> None:  # noqa: N802
        try:
            await self._gateway.serve(GrpcSignalTransport(context))
        except RequestError as exc:
            await context.abort(status_of(exc.code), exc.message)
        except StreamAbandoned:
            # Ending as cancelled sends nothing; the stream goes with the
            # client's connection or the server's stop.
            raise asyncio.CancelledError("signal stream not read") from None


class RoomServicer(room_service_pb2_grpc.RoomServiceServicer):
    """RoomService over gRPC, authorized by the caller's ``authorization: Bearer`` token."""

    def __init__(self, rooms: RoomService, verifier: auth.TokenVerifier) -> None:
        self._rooms = rooms
        self._verifier = verifier

    async def CreateRoom(  # noqa: N802
        self, request: room_service_pb2.CreateRoomRequest, context: grpc.aio.ServicerContext
    ) -> models_pb2.Room:
        return await self._answer(context, lambda caller: self._rooms.create_room(caller, request))

    async def ListRooms(  # noqa: N802
        self, request: room_service_pb2.ListRoomsRequest, context: grpc.aio.ServicerContext
    ) -> room_service_pb2.ListRoomsResponse:
        return await self._answer(context, lambda caller: self._rooms.list_rooms(caller, request))

    async def DeleteRoom(  # noqa: N802
        self, request: room_service_pb2.DeleteRoomRequest, context: grpc.aio.ServicerContext
    ) -> room_service_pb2.DeleteRoomResponse:
        return await self._answer(context, lambda caller: self._rooms.delete_room(caller, request))

    async def ListParticipants(  # noqa: N802
        self, request: room_service_pb2.ListParticipantsRequest, context: grpc.aio.ServicerContext
    ) -> room_service_pb2.ListParticipantsResponse:
        return await self._answer(context, lambda caller: self._rooms.list_participants(caller, request))

    async def RemoveParticipant(  # noqa: N802
        self, request: room_service_pb2.RoomParticipantIdentity, context: grpc.aio.ServicerContext
    ) -> room_service_pb2.RemoveParticipantResponse:
        return await self._answer(context, lambda caller: self._rooms.remove_participant(caller, request))

    async def MutePublishedTrack(  # noqa: N802
        self, request: room_service_pb2.MuteRoomTrackRequest, context: grpc.aio.ServicerContext
    ) -> room_service_pb2.MuteRoomTrackResponse:
        return await self._answer(context, lambda caller: self._rooms.mute_published_track(caller, request))

    async def GetParticipant(  # noqa: N802
        self, request: room_service_pb2.RoomParticipantIdentity, context: grpc.aio.ServicerContext
    ) -> models_pb2.ParticipantInfo:
        return await self._answer(context, lambda caller: self._rooms.get_participant(caller, request))

    async def UpdateParticipant(  # noqa: N802
        self, request: room_service_pb2.UpdateParticipantRequest, context: grpc.aio.ServicerContext
    ) -> models_pb2.ParticipantInfo:
        return await self._answer(context, lambda caller: self._rooms.update_participant(caller, request))

    async def UpdateSubscriptions(  # noqa: N802
        self, request: room_service_pb2.UpdateSubscriptionsRequest, context: grpc.aio.ServicerContext
    ) -> room_service_pb2.UpdateSubscriptionsResponse:
        return await self._answer(context, lambda caller: self._rooms.update_subscriptions(caller, request))

    async def SendData(  # noqa: N802
        self, request: room_service_pb2.SendDataRequest, context: grpc.aio.ServicerContext
    ) -> room_service_pb2.SendDataResponse:
        return await self._answer(context, lambda caller: self._rooms.send_data(caller, request))

    async def UpdateRoomMetadata(  # noqa: N802
        self, request: room_service_pb2.UpdateRoomMetadataRequest, context: grpc.aio.ServicerContext
    ) -> models_pb2.Room:
        return await self._answer(context, lambda caller: self._rooms.update_room_metadata(caller, request))

    async def _answer(self, context: grpc.aio.ServicerContext, call: Callable[[Caller], Awaitable[Response]]) -> Response:
        try:
            return await call(self._caller(context))
        except RequestError as exc:
            await context.abort(status_of(exc.code), exc.message)
            raise AssertionError("unreachable: abort raises") from exc

    def _caller(self, context: grpc.aio.ServicerContext) -> Caller:
        header = dict(context.invocation_metadata() or ()).get("authorization", "")
        if not isinstance(header, str) or not header.lower().startswith("bearer "):
            raise RequestError(ErrorCode.UNAUTHENTICATED, "missing 'authorization: Bearer <token>' metadata")
        return authenticate(self._verifier, header[7:].strip())
