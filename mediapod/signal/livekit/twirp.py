"""LiveKit's RoomService over Twirp: POST /twirp/livekit.RoomService/<Method> on the pod's HTTP port.

This is what livekit-api (and every LiveKit server SDK) calls: a Bearer
access token, the request as ``application/protobuf`` (what the SDKs send)
or ``application/json`` (the protobuf JSON mapping, LiveKit's field names),
the answer in the same encoding, and refusals as Twirp JSON errors. The
handler only decodes, authenticates, and encodes: each call runs on a
RoomService (RoomAdmin here, RoutedRoomAdmin in a cluster, so a room on
another pod is reached through the relay), translated by twirp_messages.
Every call is counted by method and result code.
"""

from __future__ import annotations

import logging

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from mediapod import auth
from mediapod.metrics import MediaCounters
from mediapod.rtc.errors import RequestError
from mediapod.signal.access import authenticate
from mediapod.signal.livekit.twirp_errors import TwirpError
from mediapod.signal.livekit.twirp_messages import METHODS, RoomMethod
from mediapod.signal.room_admin import RoomService

log = logging.getLogger(__name__)

PREFIX = "/twirp/livekit.RoomService/"
PROTOBUF = "application/protobuf"
JSON = "application/json"
# The `method` label of a call that names no RoomService method: keeps the label set bounded.
UNKNOWN_METHOD = "unknown"
OK = "ok"  # the `code` label of a call that succeeded


class TwirpRoomService:
    """Serves LiveKit's RoomService to Twirp clients on the HTTP port."""

    def __init__(self, rooms: RoomService, verifier: auth.TokenVerifier, counters: MediaCounters) -> None:
        self._rooms = rooms
        self._verifier = verifier
        self._counters = counters

    def routes(self) -> list[web.RouteDef]:
        # Every method and every path under /twirp/ is ours to answer, so a
        # wrong one gets Twirp's bad_route instead of aiohttp's HTML 404/405.
        return [web.route("*", "/twirp/{path:.*}", self._handle)]

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.path.removeprefix(PREFIX) if request.path.startswith(PREFIX) else ""
        label = name if name in METHODS else UNKNOWN_METHOD
        try:
            response = await self._serve(request, name)
        except TwirpError as error:
            response = web.json_response(error.body(), status=error.status)
            self._counters.twirp_calls[(label, error.code)] += 1
            return response
        self._counters.twirp_calls[(label, OK)] += 1
        return response

    async def _serve(self, request: web.Request, name: str) -> web.Response:
        """Answer one call, or raise the TwirpError it gets."""
        method = METHODS.get(name)
        if method is None:
            raise TwirpError("bad_route", f"no handler for path {request.path!r}")
        if request.method != "POST":
            raise TwirpError("bad_route", f"unsupported method {request.method!r} (only POST is allowed)")
        content_type = request.content_type
        if content_type not in (PROTOBUF, JSON):
            raise TwirpError("bad_route", f"unexpected Content-Type {content_type!r}: send {PROTOBUF} or {JSON}")
        try:
            caller = authenticate(self._verifier, bearer_token(request))
            theirs = _decode(method, content_type, await read_body(request))
            ours = await getattr(self._rooms, method.call)(caller, method.request(theirs))
        except RequestError as exc:
            raise TwirpError.from_request_error(exc) from None
        except TwirpError:
            raise
        except Exception:
            log.exception("Twirp %s failed", name)
            raise TwirpError("internal", f"{name} failed on the server") from None
        return encode(method.response(ours), content_type)


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TwirpError("unauthenticated", "missing 'Authorization: Bearer <token>' header")
    return token.strip()


async def read_body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise TwirpError("invalid_argument", f"the request body is over the limit of {exc.max_size} bytes") from None


def _decode(method: RoomMethod, content_type: str, body: bytes) -> Message:
    message = method.request_type()
    if content_type == PROTOBUF:
        try:
            message.ParseFromString(body)
        except DecodeError:
            raise TwirpError("malformed", f"the protobuf request could not be decoded as {message.DESCRIPTOR.full_name}") from None
        return message
    try:
        # Twirp's servers discard unknown JSON fields, so clients of a newer protocol still get through.
        json_format.Parse(body.decode(), message, ignore_unknown_fields=True)
    except (json_format.ParseError, UnicodeDecodeError, RecursionError) as exc:
        raise TwirpError("malformed", f"the JSON request could not be decoded as {message.DESCRIPTOR.full_name}: {exc}") from None
    return message


def encode(message: Message, content_type: str) -> web.Response:
    if content_type == PROTOBUF:
        return web.Response(body=message.SerializeToString(), content_type=PROTOBUF)
    # As Twirp's servers answer by default: proto field names, every field present.
    text = json_format.MessageToJson(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True, indent=None
    )
    return web.Response(text=text, content_type=JSON)
