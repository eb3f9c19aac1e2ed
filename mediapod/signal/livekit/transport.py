"""SignalTransport over one LiveKit WebSocket: the join from its URL, then its binary frames, translated.

The session layer above reads our SignalRequests and writes our
SignalResponses; this adapter turns the WebSocket's frames into the one and
the other into frames, through a LiveKitTranslator. Bad input ends here in
one of two ways, each counted: a request this server does not act on is
dropped and the session goes on; bytes that are not LiveKit signaling at all
(an undecodable frame, a text frame, a frame over the size limit) end the
session as a protocol violation, and ``close_code`` tells the front end how
to close the socket.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web

from mediapod.protocol import signal_pb2
from mediapod.signal.decoding import UndecodableRequest
from mediapod.signal.livekit.translate import LiveKitTranslator, Unsupported

log = logging.getLogger(__name__)

# LiveKit's clients never send a signaling frame near this size (an SDP offer
# with many tracks is tens of KiB); aiohttp refuses bigger ones unread.
MAX_FRAME_BYTES = 1024 * 1024


class WebSocketTransport:
    """One LiveKit client's signal stream: reads yield our SignalRequests, writes take our SignalResponses."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        join: signal_pb2.JoinRequest,
        translator: LiveKitTranslator,
        count_error: Callable[[str], None],
    ) -> None:
        """count_error is told the reason (a SIGNAL_ERROR_REASONS value) of each bad input."""
        self._ws = ws
        self._join: signal_pb2.JoinRequest | None = join
        self._translator = translator
        self._count_error = count_error
        # Set when this transport ended the session for bad input: how to close the socket.
        self.close_code: WSCloseCode | None = None

    async def read(self) -> signal_pb2.SignalRequest | UndecodableRequest | None:
        if self._join is not None:
            # LiveKit's client joins by connecting; the session layer reads the join first all the same.
            join, self._join = self._join, None
            return signal_pb2.SignalRequest(join=join)
        while True:
            message = await self._ws.receive()
            if message.type == WSMsgType.BINARY:
                request = self._translator.request(message.data)
                if isinstance(request, Unsupported):
                    self._count_error("unsupported_request")
                    log.debug("dropped a LiveKit %s request: not supported", request.kind)
                    continue
                if isinstance(request, UndecodableRequest):
                    return self._refuse("malformed_message", WSCloseCode.INVALID_TEXT, request.reason)
                return request
            if message.type == WSMsgType.TEXT:
                return self._refuse(
                    "text_frame", WSCloseCode.UNSUPPORTED_DATA, "LiveKit signaling is binary protobuf; a text frame was refused"
                )
            error = message.data if message.type == WSMsgType.ERROR else None
            if isinstance(error, WebSocketError) and error.code == WSCloseCode.MESSAGE_TOO_BIG:
                return self._refuse(
                    "frame_too_large", WSCloseCode.MESSAGE_TOO_BIG, f"a signaling frame over {MAX_FRAME_BYTES} bytes was refused"
                )
            return None  # closed, or the connection failed: the client is gone either way

    def _refuse(self, reason: str, code: WSCloseCode, message: str) -> UndecodableRequest:
        self._count_error(reason)
        self.close_code = code
        return UndecodableRequest(message)

    async def write(self, response: signal_pb2.SignalResponse) -> None:
        theirs = self._translator.response(response)
        if response.HasField("error"):
            self._count_error("request_refused")
        if theirs is None or self._ws.closed:
            return  # nothing LiveKit would understand, or a client already gone (the reader sees the close)
        try:
            await self._ws.send_bytes(theirs.SerializeToString())
        except ConnectionError:
            pass  # the client hung up mid-write; the reader ends the session
