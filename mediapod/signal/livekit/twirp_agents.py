"""LiveKit's AgentDispatchService over Twirp: explicit dispatch of a named agent into a room.

``POST /twirp/livekit.AgentDispatchService/{CreateDispatch,ListDispatch,DeleteDispatch}``
as livekit-api's ``agent_dispatch`` calls it, with a token granting
roomAdmin for the room (as LiveKit requires). Requests and answers travel
in the encodings twirp.py serves; a room not open on this pod is NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from livekit.protocol import agent as lka
from livekit.protocol import agent_dispatch as lkd

from mediapod import auth
from mediapod.signal.livekit.agent_dispatch import AgentDispatcher
from mediapod.signal.livekit.twirp import JSON, PROTOBUF, bearer_token, encode, read_body
from mediapod.signal.livekit.twirp_errors import TwirpError

PREFIX = "/twirp/livekit.AgentDispatchService/"


class TwirpAgentDispatch:
    """Serves CreateDispatch, ListDispatch and DeleteDispatch on the AgentDispatcher of this pod."""

    def __init__(self, dispatcher: AgentDispatcher, verifier: auth.TokenVerifier) -> None:
        self._dispatcher = dispatcher
        self._verifier = verifier
        self._methods: dict[str, tuple[type[Message], Callable[[Message], Message]]] = {
            "CreateDispatch": (lkd.CreateAgentDispatchRequest, self._create),  # type: ignore[dict-item]
            "ListDispatch": (lkd.ListAgentDispatchRequest, self._list),  # type: ignore[dict-item]
            "DeleteDispatch": (lkd.DeleteAgentDispatchRequest, self._delete),  # type: ignore[dict-item]
        }

    def routes(self) -> list[web.RouteDef]:
        """Registered before the RoomService's catch-all /twirp/ route, so these paths reach this service."""
        return [web.route("*", PREFIX + "{method}", self._handle)]

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            return await self._serve(request)
        except TwirpError as error:
            return web.json_response(error.body(), status=error.status)

    async def _serve(self, request: web.Request) -> web.Response:
        method = self._methods.get(request.match_info["method"])
        if method is None or request.method != "POST":
            raise TwirpError("bad_route", f"no handler for {request.method} {request.path!r}")
        if request.content_type not in (PROTOBUF, JSON):
            raise TwirpError("bad_route", f"unexpected Content-Type {request.content_type!r}: send {PROTOBUF} or {JSON}")
        try:
            claims = self._verifier.verify(bearer_token(request))
        except auth.AuthError as exc:
            raise TwirpError("unauthenticated", exc.reason) from None
        request_type, call = method
        message = request_type()
        body = await read_body(request)
        try:
            if request.content_type == PROTOBUF:
                message.ParseFromString(body)
            else:
                json_format.Parse(body.decode(), message, ignore_unknown_fields=True)
        except (DecodeError, json_format.ParseError, UnicodeDecodeError, RecursionError):
            raise TwirpError("malformed", f"the request could not be decoded as {message.DESCRIPTOR.full_name}") from None
        room = getattr(message, "room")
        if not (claims.video.room_admin and claims.video.room == room):
            raise TwirpError("permission_denied", f"the token does not grant roomAdmin for room {room!r}")
        return encode(call(message), request.content_type)

    def _create(self, request: lkd.CreateAgentDispatchRequest) -> lkd.AgentDispatch:
        job = self._dispatcher.dispatch(request.room, request.agent_name, request.metadata)
        if job is None:
            raise TwirpError("not_found", f"room {request.room!r} is not open on this pod")
        return _dispatch_of([job])

    def _list(self, request: lkd.ListAgentDispatchRequest) -> lkd.ListAgentDispatchResponse:
        by_dispatch: dict[str, list[lka.Job]] = {}
        for job in self._dispatcher.room_jobs(request.room):
            by_dispatch.setdefault(job.dispatch_id, []).append(job)
        dispatches = [_dispatch_of(jobs) for dispatch_id, jobs in sorted(by_dispatch.items())]
        if request.dispatch_id:
            dispatches = [d for d in dispatches if d.id == request.dispatch_id]
        return lkd.ListAgentDispatchResponse(agent_dispatches=dispatches)

    def _delete(self, request: lkd.DeleteAgentDispatchRequest) -> lkd.AgentDispatch:
        jobs = self._dispatcher.cancel(request.room, request.dispatch_id)
        if not jobs:
            raise TwirpError("not_found", f"no dispatch {request.dispatch_id!r} in room {request.room!r}")
        return _dispatch_of(jobs)


def _dispatch_of(jobs: list[lka.Job]) -> lkd.AgentDispatch:
    first = jobs[0]
    return lkd.AgentDispatch(
        id=first.dispatch_id, agent_name=first.agent_name, room=first.room.name, metadata=first.metadata,
        state=lkd.AgentDispatchState(jobs=jobs),
    )
