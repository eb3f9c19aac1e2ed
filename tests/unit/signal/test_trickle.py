"""check_candidate_init: what browsers and LiveKit's SDKs trickle passes, garbage is refused with the reason."""

from __future__ import annotations

import json

import pytest

from mediapod.rtc.errors import ErrorCode, RequestError
from mediapod.signal.trickle import check_candidate_init

# As libwebrtc (Chrome, LiveKit's Rust core) writes them, mDNS host names included.
VALID = [
    "",
    json.dumps({"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0}),
    json.dumps({
        "candidate": "candidate:1467250027 1 udp 2122260223 192.168.1.7 46243 typ host generation 0 ufrag EEtu network-id 1",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "EEtu",
    }),
    json.dumps({"candidate": "candidate:3 1 UDP 2122187007 8f0b7d0e-6d8a-4bc8-a5d6-0a1b7e3c.local 54400 typ host"}),
    json.dumps({"candidate": "candidate:842163049 1 udp 1677729535 203.0.113.4 61223 typ srflx raddr 0.0.0.0 rport 0"}),
    json.dumps({"candidate": "candidate:4 1 tcp 1518280447 10.0.0.2 9 typ host tcptype active"}),
]

INVALID = [
    ("not json at all", "is not JSON"),
    ('["candidate"]', "object"),
    (json.dumps({"candidate": 7}), "object"),
    (json.dumps({"candidate": "candidate:garbage"}), "unparsable"),
    (json.dumps({"candidate": "candidate:1 1 udp prio 1.2.3.4 5 typ host"}), "unparsable"),
    (json.dumps({"candidate": "candidate:1 1 udp 1 1.2.3.4 5 kind host"}), "unparsable"),
    (json.dumps({"candidate": "candidate:1 1 sctp 1 1.2.3.4 5 typ host"}), "unparsable"),
    (json.dumps({"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ bogus"}), "unparsable"),
    (json.dumps({"candidate": "candidate:1 1 udp 1 1.2.3.4 70000 typ host"}), "out-of-range port"),
    (json.dumps({"candidate": "candidate:1 " + "1 " * 600}), "over 1024"),
]


@pytest.mark.parametrize("text", VALID)
def test_what_browsers_trickle_is_accepted(text: str) -> None:
    check_candidate_init(text)


@pytest.mark.parametrize(("text", "words"), INVALID)
def test_garbage_is_refused_as_invalid_argument_saying_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(RequestError) as refused:
        check_candidate_init(text)
    assert refused.value.code == ErrorCode.INVALID_ARGUMENT
    assert words in refused.value.message and refused.value.message.startswith("trickle: ")
