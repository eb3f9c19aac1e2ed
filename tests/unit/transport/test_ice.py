"""ICE-lite connectivity checks, specified with aioice-built requests and STUN byte vectors."""

from __future__ import annotations

import struct
import time

import pytest
from aioice import stun
from hypothesis import given
from hypothesis import strategies as st

from mediapod.transport.ice import CONSENT_TIMEOUT, IceLiteAgent, MalformedStun, local_ufrag_of, parse_stun
from tests.support.stun_requests import RFC5769_PASSWORD, RFC5769_REQUEST

PEER_ADDR = ("192.0.2.10", 50123)
REMOTE_UFRAG = "peer"
TRANSACTION_ID = bytes.fromhex("0102030405060708090a0b0c")


def binding_request(
    agent: IceLiteAgent,
    *,
    username: str | None = None,
    password: str | None = None,
    controlling: bool = True,
    use_candidate: bool = False,
    integrity: bool = True,
) -> stun.Message:
    """A binding request as a controlling full agent sends it, parsed back from its bytes."""
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST, transaction_id=TRANSACTION_ID)
    request.attributes["USERNAME"] = username if username is not None else f"{agent.local_ufrag}:{REMOTE_UFRAG}"
    request.attributes["PRIORITY"] = 0x6E0001FF
    if controlling:
        request.attributes["ICE-CONTROLLING"] = 0x932FF9B151263B36
    if use_candidate:
        request.attributes["USE-CANDIDATE"] = None
    if integrity:
        request.add_message_integrity((password if password is not None else agent.local_pwd).encode())
    else:
        request.add_fingerprint()
    return parse_stun(bytes(request))


def valid_request_bytes(agent: IceLiteAgent) -> bytes:
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST, transaction_id=TRANSACTION_ID)
    request.attributes["USERNAME"] = f"{agent.local_ufrag}:{REMOTE_UFRAG}"
    request.attributes["ICE-CONTROLLING"] = 1
    request.add_message_integrity(agent.local_pwd.encode())
    return bytes(request)


# --- credentials -------------------------------------------------------------


def test_agent_credentials_are_long_enough_and_use_the_ice_char_set() -> None:
    agent = IceLiteAgent()
    # RFC 8445 section 5.3: ufrag >= 4 chars (24 bits), pwd >= 22 chars (128 bits), ice-char only.
    assert len(agent.local_ufrag) >= 4
    assert len(agent.local_pwd) >= 22
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/")
    assert set(agent.local_ufrag) <= allowed
    assert set(agent.local_pwd) <= allowed
    assert IceLiteAgent().local_pwd != agent.local_pwd


def test_local_ufrag_is_read_from_the_first_half_of_username() -> None:
    agent = IceLiteAgent()
    assert local_ufrag_of(binding_request(agent)) == agent.local_ufrag


@pytest.mark.parametrize("username", [None, "no-colon"])
def test_local_ufrag_is_none_without_a_two_part_username(username: str | None) -> None:
    message = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    if username is not None:
        message.attributes["USERNAME"] = username
    assert local_ufrag_of(message) is None


# --- successful checks -------------------------------------------------------


def test_authenticated_check_is_answered_with_the_source_address() -> None:
    agent = IceLiteAgent()

    result = agent.handle_request(binding_request(agent), PEER_ADDR)

    assert result is not None
    assert result.ok is True
    response = parse_stun(result.response)  # FINGERPRINT is verified here
    assert response.message_method == stun.Method.BINDING
    assert response.message_class == stun.Class.RESPONSE
    assert response.transaction_id == TRANSACTION_ID
    assert response.attributes["XOR-MAPPED-ADDRESS"] == PEER_ADDR
    assert "FINGERPRINT" in response.attributes


def test_success_response_is_signed_with_our_password() -> None:
    agent = IceLiteAgent()

    result = agent.handle_request(binding_request(agent), PEER_ADDR)

    assert result is not None
    response = parse_stun(result.response)
    assert response.check_message_integrity(agent.local_pwd.encode())
    assert not response.check_message_integrity(b"some other password")


def test_success_response_carries_the_address_xored_on_the_wire() -> None:
    agent = IceLiteAgent()

    result = agent.handle_request(binding_request(agent), ("192.0.2.1", 32853))

    assert result is not None
    # XOR-MAPPED-ADDRESS: family 1, port 32853 ^ 0x2112, 192.0.2.1 ^ magic cookie (RFC 5769 2.2).
    assert bytes.fromhex("00200008" "0001a147e112a643") in result.response


def test_check_without_use_candidate_does_not_nominate() -> None:
    agent = IceLiteAgent()

    result = agent.handle_request(binding_request(agent), PEER_ADDR)

    assert result is not None
    assert result.nominated is False
    assert agent.nominated is None


def test_use_candidate_nominates_the_source_address() -> None:
    agent = IceLiteAgent()

    result = agent.handle_request(binding_request(agent, use_candidate=True), PEER_ADDR)

    assert result is not None
    assert result.ok is True
    assert result.nominated is True
    assert agent.nominated == PEER_ADDR


def test_later_nomination_moves_the_selected_pair() -> None:
    agent = IceLiteAgent()
    agent.handle_request(binding_request(agent, use_candidate=True), PEER_ADDR)

    agent.handle_request(binding_request(agent, use_candidate=True), ("198.51.100.7", 4000))

    assert agent.nominated == ("198.51.100.7", 4000)


def test_check_matching_the_signaled_remote_ufrag_succeeds() -> None:
    agent = IceLiteAgent()
    agent.remote_ufrag = REMOTE_UFRAG

    result = agent.handle_request(binding_request(agent), PEER_ADDR)

    assert result is not None and result.ok


# --- failed checks -----------------------------------------------------------


def assert_error(result: object, code: int, transaction_id: bytes = TRANSACTION_ID) -> stun.Message:
    assert result is not None
    assert result.ok is False  # type: ignore[attr-defined]
    assert result.nominated is False  # type: ignore[attr-defined]
    response = parse_stun(result.response)  # type: ignore[attr-defined]
    assert response.message_method == stun.Method.BINDING
    assert response.message_class == stun.Class.ERROR
    assert response.transaction_id == transaction_id
    assert response.error_code == code
    assert "FINGERPRINT" in response.attributes
    assert "XOR-MAPPED-ADDRESS" not in response.attributes
    return response


def test_check_signed_with_a_wrong_password_gets_401() -> None:
    agent = IceLiteAgent()

    result = agent.handle_request(binding_request(agent, password="not-the-password-at-all"), PEER_ADDR)

    assert_error(result, 401)


def test_check_for_another_ufrag_gets_401() -> None:
    agent = IceLiteAgent()

    result = agent.handle_request(binding_request(agent, username=f"zzzz:{REMOTE_UFRAG}"), PEER_ADDR)

    assert_error(result, 401)


def test_check_whose_ufrag_only_starts_like_ours_gets_401() -> None:
    agent = IceLiteAgent()

    result = agent.handle_request(binding_request(agent, username=f"{agent.local_ufrag}x:{REMOTE_UFRAG}"), PEER_ADDR)

    assert_error(result, 401)


def test_check_without_message_integrity_gets_401() -> None:
    agent = IceLiteAgent()

    result = agent.handle_request(binding_request(agent, integrity=False), PEER_ADDR)

    assert_error(result, 401)


def test_check_from_another_remote_ufrag_than_signaled_gets_401() -> None:
    agent = IceLiteAgent()
    agent.remote_ufrag = "signaled"

    result = agent.handle_request(binding_request(agent, username=f"{agent.local_ufrag}:stale"), PEER_ADDR)

    assert_error(result, 401)


def test_unauthenticated_use_candidate_nominates_nothing() -> None:
    agent = IceLiteAgent()

    result = agent.handle_request(binding_request(agent, password="wrong-password-wrong-pw", use_candidate=True), PEER_ADDR)

    assert_error(result, 401)
    assert agent.nominated is None


def test_check_without_ice_controlling_gets_487_role_conflict() -> None:
    agent = IceLiteAgent()

    result = agent.handle_request(binding_request(agent, controlling=False, use_candidate=True), PEER_ADDR)

    assert_error(result, 487)
    assert agent.nominated is None


def test_role_conflict_response_is_signed_so_the_peer_accepts_it() -> None:
    # RFC 8489 section 9.1.3 / RFC 5389 10.1.2: once a request authenticated,
    # every response to it (all but 400 and 401) carries MESSAGE-INTEGRITY.
    # aioice and libwebrtc discard unsigned responses to signed requests, so
    # an unsigned 487 is never seen and the peer just times out.
    agent = IceLiteAgent()

    result = agent.handle_request(binding_request(agent, controlling=False), PEER_ADDR)

    response = assert_error(result, 487)
    assert response.check_message_integrity(agent.local_pwd.encode())


def test_rfc5769_sample_request_authenticates_but_is_a_role_conflict() -> None:
    # The sample comes from a controlled agent, which a lite agent cannot serve.
    agent = IceLiteAgent()
    agent.local_ufrag, agent.local_pwd = "evtj", RFC5769_PASSWORD

    result = agent.handle_request(parse_stun(RFC5769_REQUEST), PEER_ADDR)

    assert_error(result, 487, transaction_id=bytes.fromhex("b7e7a701bc34d686fa87dfae"))


def test_failed_check_does_not_renew_consent() -> None:
    agent = IceLiteAgent()
    agent.last_consent = 0.0

    agent.handle_request(binding_request(agent, password="wrong-password-wrong-pw"), PEER_ADDR)

    assert agent.last_consent == 0.0


@pytest.mark.parametrize(
    ("method", "message_class"),
    [
        (stun.Method.BINDING, stun.Class.INDICATION),
        (stun.Method.BINDING, stun.Class.RESPONSE),
        (stun.Method.BINDING, stun.Class.ERROR),
        (stun.Method.ALLOCATE, stun.Class.REQUEST),
        (stun.Method.REFRESH, stun.Class.REQUEST),
    ],
)
def test_anything_but_a_binding_request_is_not_answered(method: stun.Method, message_class: stun.Class) -> None:
    agent = IceLiteAgent()
    message = stun.Message(method, message_class, transaction_id=TRANSACTION_ID)
    message.attributes["USERNAME"] = f"{agent.local_ufrag}:{REMOTE_UFRAG}"
    message.attributes["ICE-CONTROLLING"] = 1
    message.add_message_integrity(agent.local_pwd.encode())

    assert agent.handle_request(parse_stun(bytes(message)), PEER_ADDR) is None


# --- parse_stun on the wire --------------------------------------------------


def test_rfc5769_sample_request_parses_and_verifies_with_its_password() -> None:
    message = parse_stun(RFC5769_REQUEST)

    assert message.message_method == stun.Method.BINDING
    assert message.message_class == stun.Class.REQUEST
    assert message.transaction_id == bytes.fromhex("b7e7a701bc34d686fa87dfae")
    assert message.attributes["SOFTWARE"] == "STUN test client"
    assert message.attributes["PRIORITY"] == 0x6E0001FF
    assert message.attributes["ICE-CONTROLLED"] == 0x932FF9B151263B36
    assert message.attributes["USERNAME"] == "evtj:h6vY"
    assert local_ufrag_of(message) == "evtj"
    assert message.check_message_integrity(RFC5769_PASSWORD.encode())
    assert not message.check_message_integrity(b"VOkJxbRl1RmTxUk/WvJxBT")


def _flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


def _with_length(data: bytes, length: int) -> bytes:
    return data[:2] + struct.pack("!H", length) + data[4:]


MALFORMED = {
    "empty": b"",
    "one byte": b"\x00",
    "19 bytes": RFC5769_REQUEST[:19],
    "header claims 4 more bytes": _with_length(RFC5769_REQUEST, 0x5C),
    "header claims 4 fewer bytes": _with_length(RFC5769_REQUEST, 0x54),
    "cut in the middle of FINGERPRINT": RFC5769_REQUEST[:-2],
    "bad fingerprint": _flip_last_byte(RFC5769_REQUEST),
    # header + PRIORITY claiming 4 bytes with only 2 present, length field consistent
    "truncated PRIORITY": bytes.fromhex("00010006" "2112a442" "b7e7a701bc34d686fa87dfae" "00240004" "6e00"),
    # header + USERNAME claiming 9 bytes with only 4 present, length field consistent
    "truncated USERNAME": bytes.fromhex("00010008" "2112a442" "b7e7a701bc34d686fa87dfae" "00060009" "6576746a"),
    # XOR-MAPPED-ADDRESS with an unknown address family 3
    "bad address family": bytes.fromhex("01010008" "2112a442" "b7e7a701bc34d686fa87dfae" "00200004" "00030000"),
    "unknown method 0x0fff": bytes.fromhex("0fef0000" "2112a442" "b7e7a701bc34d686fa87dfae"),
    "username not utf-8": bytes.fromhex("00010008" "2112a442" "b7e7a701bc34d686fa87dfae" "00060002" "c3280000"),
    # RFC 8489 section 6.3: a wrong magic cookie means it is not STUN
    "wrong magic cookie": bytes.fromhex("00010000" "deadbeef" "b7e7a701bc34d686fa87dfae"),
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_message_raises_malformed_stun(data: bytes) -> None:
    with pytest.raises(MalformedStun):
        parse_stun(data)


def test_malformed_stun_is_a_value_error_with_a_message() -> None:
    with pytest.raises(ValueError, match="malformed STUN"):
        parse_stun(b"\x00\x01")


def test_our_own_request_bytes_round_trip() -> None:
    agent = IceLiteAgent()

    message = parse_stun(valid_request_bytes(agent))

    assert message.attributes["USERNAME"] == f"{agent.local_ufrag}:{REMOTE_UFRAG}"
    assert message.check_message_integrity(agent.local_pwd.encode())


@given(st.binary(max_size=300))
def test_random_bytes_parse_or_raise_malformed_stun(data: bytes) -> None:
    try:
        parse_stun(data)
    except MalformedStun:
        pass


@given(
    message_type=st.integers(0, 0x3FFF),
    transaction_id=st.binary(min_size=12, max_size=12),
    body=st.binary(max_size=200),
)
def test_random_bodies_behind_a_valid_header_parse_or_raise_malformed_stun(
    message_type: int, transaction_id: bytes, body: bytes
) -> None:
    # A consistent header gets past the length check, so the attribute decoders see the garbage.
    data = struct.pack("!HHI12s", message_type, len(body), 0x2112A442, transaction_id) + body
    try:
        parse_stun(data)
    except MalformedStun:
        pass


@given(
    attr_type=st.sampled_from([0x0001, 0x0006, 0x0008, 0x0009, 0x0020, 0x0024, 0x0025, 0x8028, 0x8029, 0x802A]),
    value=st.binary(max_size=40),
)
def test_known_attributes_with_random_values_parse_or_raise_malformed_stun(attr_type: int, value: bytes) -> None:
    padded = value + bytes(-len(value) % 4)
    body = struct.pack("!HH", attr_type, len(value)) + padded
    data = struct.pack("!HHI12s", 0x0001, len(body), 0x2112A442, TRANSACTION_ID) + body
    try:
        parse_stun(data)
    except MalformedStun:
        pass


# --- consent freshness -------------------------------------------------------


def test_consent_lasts_thirty_seconds_after_the_last_check() -> None:
    agent = IceLiteAgent()
    agent.last_consent = 1000.0

    assert CONSENT_TIMEOUT == 30.0
    assert not agent.consent_expired(now=1000.0)
    assert not agent.consent_expired(now=1029.9)
    assert not agent.consent_expired(now=1030.0)
    assert agent.consent_expired(now=1030.1)


def test_new_agent_has_fresh_consent() -> None:
    agent = IceLiteAgent()

    assert not agent.consent_expired()
    assert agent.consent_expired(now=time.monotonic() + CONSENT_TIMEOUT + 1)


def test_successful_check_renews_consent() -> None:
    agent = IceLiteAgent()
    agent.last_consent = 0.0

    agent.handle_request(binding_request(agent), PEER_ADDR)

    assert not agent.consent_expired(now=time.monotonic())
