"""ICE-lite (RFC 8445 section 2.5) on aioice's STUN codec.

A media pod has a public-ish address (hostNetwork pods advertise the node IP),
so it gathers one host candidate per port and never sends checks itself: it
answers the controlling peer's binding requests, learns the peer's address
from them, and uses the pair the peer nominates with USE-CANDIDATE. Binding
requests keep arriving as consent checks (RFC 7675); when they stop, the peer
is gone.
"""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass

from aioice import stun

Address = tuple[str, int]

# RFC 7675: consent expires 30 s after the last successful check.
CONSENT_TIMEOUT = 30.0

_ICE_CHARS = string.ascii_letters + string.digits + "+/"


class MalformedStun(ValueError):
    """A datagram on a STUN first byte that is not a STUN message we can use."""


def random_ice_string(length: int) -> str:
    return "".join(secrets.choice(_ICE_CHARS) for _ in range(length))


_MAGIC_COOKIE = b"\x21\x12\xa4\x42"


def _check_framing(data: bytes) -> None:
    """What aioice does not check: the magic cookie, and attributes tiling the body exactly."""
    if len(data) < 20 or data[4:8] != _MAGIC_COOKIE:
        raise MalformedStun("malformed STUN message: no magic cookie")
    pos, end = 20, len(data)
    while pos + 4 <= end:
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        pos += 4 + length + (-length % 4)
    if pos != end:
        raise MalformedStun("malformed STUN message: an attribute runs past the end")


def parse_stun(data: bytes) -> stun.Message:
    """Parse a STUN message, turning every way aioice can fail into MalformedStun."""
    _check_framing(data)
    try:
        return stun.parse_message(data)
    # aioice's decoder raises whatever its struct/str/enum helpers raise on
    # garbage; all of them mean the same thing to us: drop and count.
    except Exception as exc:  # noqa: BLE001
        raise MalformedStun(f"malformed STUN message: {exc}") from None


def local_ufrag_of(message: stun.Message) -> str | None:
    """Our ufrag from a binding request's USERNAME "<ours>:<theirs>"."""
    username = message.attributes.get("USERNAME")
    if not isinstance(username, str) or ":" not in username:
        return None
    return username.split(":", 1)[0]


@dataclass(slots=True)
class BindingResult:
    """What a binding request did: the response to send, whether it authenticated and nominated."""

    response: bytes
    ok: bool
    nominated: bool = False


class IceLiteAgent:
    """The ICE-lite side of one PeerConnection: credentials, checks, consent."""

    def __init__(self) -> None:
        self.local_ufrag = random_ice_string(8)
        self.local_pwd = random_ice_string(24)
        self.remote_ufrag: str | None = None
        self.nominated: Address | None = None
        self.last_consent = time.monotonic()

    def handle_request(self, message: stun.Message, addr: Address) -> BindingResult | None:
        """Answer a binding request addressed to us; None if it must be dropped.

        Requests that fail authentication get a 401 per RFC 8445 7.3, so a
        peer with stale credentials learns it instead of timing out.
        """
        if message.message_method != stun.Method.BINDING or message.message_class != stun.Class.REQUEST:
            return None
        username = message.attributes.get("USERNAME")
        expected_prefix = self.local_ufrag + ":"
        if (
            not isinstance(username, str)
            or not username.startswith(expected_prefix)
            or not message.check_message_integrity(self.local_pwd.encode())
        ):
            return BindingResult(self._error(message, 401, "Unauthorized"), ok=False)
        remote_ufrag = username[len(expected_prefix) :]
        if self.remote_ufrag is not None and remote_ufrag != self.remote_ufrag:
            return BindingResult(self._error(message, 401, "Unauthorized"), ok=False)
        if "ICE-CONTROLLING" not in message.attributes:
            # Both sides lite or both controlled: the full agent must control.
            # The request authenticated, so the error is signed (RFC 8489
            # 9.1.3); peers discard unsigned answers to signed requests.
            return BindingResult(self._error(message, 487, "Role Conflict", sign=True), ok=False)
        self.last_consent = time.monotonic()
        nominated = "USE-CANDIDATE" in message.attributes
        if nominated:
            self.nominated = addr
        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.RESPONSE,
            transaction_id=message.transaction_id,
        )
        response.attributes["XOR-MAPPED-ADDRESS"] = addr
        response.add_message_integrity(self.local_pwd.encode())
        return BindingResult(bytes(response), ok=True, nominated=nominated)

    def consent_expired(self, now: float | None = None) -> bool:
        return (now if now is not None else time.monotonic()) - self.last_consent > CONSENT_TIMEOUT

    def _error(self, request: stun.Message, code: int, reason: str, sign: bool = False) -> bytes:
        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.ERROR,
            transaction_id=request.transaction_id,
        )
        response.attributes["ERROR-CODE"] = (code, reason)
        if sign:
            response.add_message_integrity(self.local_pwd.encode())
        else:
            response.add_fingerprint()
        return bytes(response)
