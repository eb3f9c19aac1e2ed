"""Checks a trickled ICE candidate (an RTCIceCandidateInit as JSON) before the session takes it.

Our transport is ICE-lite: the client's connectivity checks reveal its
addresses, so a trickled candidate is never used. It is still checked,
because a client that trickles garbage is broken or probing, and a refusal
it can read (and a counted error) tells its developer so, where silently
taking it would hide the fault. Both front ends carry the same JSON, so the
check lives here, once, on the session's side of the translation.
"""

from __future__ import annotations

import json

from aioice.candidate import Candidate

from mediapod.rtc.errors import ErrorCode, RequestError

# RFC 8839 section 5.1: candidate types and transports a WebRTC peer may send.
_TYPES = frozenset({"host", "srflx", "prflx", "relay"})
_TRANSPORTS = frozenset({"udp", "tcp"})
_MAX_BYTES = 1024  # a candidate line is ~150 bytes; far more is not a candidate


def check_candidate_init(text: str) -> None:
    """Accept a well-formed RTCIceCandidateInit; an empty one (or an empty candidate) ends gathering.

    Raises:
        RequestError: INVALID_ARGUMENT naming what is wrong with it.
    """
    if not text:
        return
    if len(text) > _MAX_BYTES:
        raise _invalid(f"is {len(text)} bytes, over {_MAX_BYTES}")
    try:
        init = json.loads(text)
    except ValueError:
        raise _invalid("is not JSON") from None
    if not isinstance(init, dict) or not isinstance(init.get("candidate", ""), str):
        raise _invalid('is not an object with a string "candidate"')
    line = init.get("candidate", "").removeprefix("a=").removeprefix("candidate:")
    if not line:
        return
    try:
        candidate = Candidate.from_sdp(line)
    except ValueError as exc:
        raise _invalid(f"has an unparsable candidate ({exc})") from None
    if line.split()[6] != "typ" or candidate.type not in _TYPES or candidate.transport.lower() not in _TRANSPORTS:
        raise _invalid("has an unparsable candidate (RFC 8839: ... <transport> <priority> <address> <port> typ <type>)")
    if not 0 < candidate.port < 65536 or candidate.component not in (1, 2):
        raise _invalid(f"has an out-of-range port {candidate.port} or component {candidate.component}")


def _invalid(what: str) -> RequestError:
    return RequestError(ErrorCode.INVALID_ARGUMENT, f"trickle: the candidateInit {what}")
