"""LiveKit's signaling routes on the pod's HTTP port: /rtc (WebSocket) and /rtc/validate.

Only LiveKit's v0 protocol is served. Today's SDKs try /rtc/v1 (one
PeerConnection, the join in the URL) first and fall back to /rtc on a 404,
so the v1 routes answer exactly that. A connect is checked before the
WebSocket is accepted: a refused token gets the HTTP status LiveKit gives
it (401) and no socket. An accepted socket is handed to the SignalGateway
like any other signal stream, and closed with a code that says how its
session ended.
"""

from __future__ import annotations

import logging

from aiohttp import WSCloseCode, web

from mediapod import auth
from mediapod.metrics import MediaCounters
from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.signal.gateway import SignalGateway
from mediapod.signal.livekit.connect import ConnectParams, check_access, connect_params, http_status
from mediapod.signal.livekit.transport import MAX_FRAME_BYTES, WebSocketTransport
from mediapod.signal.livekit.translate import LiveKitTranslator, ServerSettings, resume_refusal
from mediapod.signal.stream import StreamAbandoned

log = logging.getLogger(__name__)

FRONTEND = "livekit"  # the `frontend` label of switchboard_signal_errors
_CLOSE_REASON_BYTES = 123  # RFC 6455 section 5.5: a close frame's reason fits in 125 bytes with its code

_CLOSE_CODES = {
    ErrorCode.UNAUTHENTICATED: WSCloseCode.POLICY_VIOLATION,
    ErrorCode.PERMISSION_DENIED: WSCloseCode.POLICY_VIOLATION,
    ErrorCode.INVALID_ARGUMENT: WSCloseCode.POLICY_VIOLATION,
    ErrorCode.FAILED_PRECONDITION: WSCloseCode.POLICY_VIOLATION,
    ErrorCode.DEADLINE_EXCEEDED: WSCloseCode.POLICY_VIOLATION,
    ErrorCode.RESOURCE_EXHAUSTED: WSCloseCode.TRY_AGAIN_LATER,
    ErrorCode.UNAVAILABLE: WSCloseCode.TRY_AGAIN_LATER,
}


class LiveKitSignaling:
    """Serves LiveKit clients' signal connections through the SignalGateway."""

    def __init__(
        self, gateway: SignalGateway, verifier: auth.TokenVerifier, counters: MediaCounters, settings: ServerSettings
    ) -> None:
        self._gateway = gateway
        self._verifier = verifier
        self._counters = counters
        self._settings = settings

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/rtc", self._connect),
            web.get("/rtc/validate", self._validate),
            web.get("/rtc/v1", self._not_served),
            web.get("/rtc/v1/validate", self._not_served),
        ]

    def _count(self, reason: str) -> None:
        self._counters.signal_errors[(FRONTEND, reason)] += 1

    def _admit(self, request: web.Request) -> ConnectParams | web.Response:
        """The connect's parameters if its token lets it in, else the refusal: LiveKit's status and why."""
        try:
            params = connect_params(request.headers, request.query)
            check_access(self._verifier, params)
        except RequestError as exc:
            status = http_status(exc.code)
            if status == 401:
                self._count("unauthorized")
            return web.Response(status=status, text=exc.message)
        return params

    async def _validate(self, request: web.Request) -> web.Response:
        """LiveKit's SDKs ask here why a connect failed; 200 "success" when it would be admitted."""
        admitted = self._admit(request)
        return admitted if isinstance(admitted, web.Response) else web.Response(text="success")

    async def _not_served(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="LiveKit signaling v1 (single PeerConnection) is not served; use /rtc (v0)")

    async def _connect(self, request: web.Request) -> web.StreamResponse:
        params = self._admit(request)
        if isinstance(params, web.Response):
            return params
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="/rtc takes a WebSocket upgrade")
        await ws.prepare(request)
        if params.reconnect:
            await ws.send_bytes(resume_refusal().SerializeToString())
            await ws.close(code=WSCloseCode.OK, message=b"resuming a session is not supported yet; join again")
            return ws
        transport = WebSocketTransport(ws, params.join_request(), LiveKitTranslator(self._settings), self._count)
        code, reason = WSCloseCode.OK, ""
        try:
            await self._gateway.serve(transport)
        except RequestError as exc:
            code = transport.close_code or _CLOSE_CODES.get(exc.code, WSCloseCode.INTERNAL_ERROR)
            reason = exc.message
        except StreamAbandoned:
            code, reason = WSCloseCode.POLICY_VIOLATION, "the client stopped reading its signal responses"
        await ws.close(code=code, message=reason.encode()[:_CLOSE_REASON_BYTES].decode(errors="ignore").encode())
        return ws

