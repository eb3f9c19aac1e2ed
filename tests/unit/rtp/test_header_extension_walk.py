"""The RFC 8285 element walk, pion style: a raw extension block in, the elements out.

Every vector is checked through both readers of header extensions, the full
parse (RtpPacket.parse) and the hot-path look-up (get_header_extension), so
the two cannot drift apart; the packet around the block must keep its payload.
"""

from __future__ import annotations

import pytest

from mediapod.rtp.errors import MalformedPacket
from mediapod.rtp.packet import RtpHeader, RtpPacket, get_header_extension

_FIXED_WITH_X = bytes.fromhex("906000070000007011223344")
_PAYLOAD = b"\xde\xad"


def rtp_with_block(profile: int, block_hex: str) -> bytes:
    """A valid RTP packet with this extension block and a two-byte payload; bench/fuzz_seeds.py seeds from these too."""
    block = bytes.fromhex(block_hex)
    assert len(block) % 4 == 0, "a vector's block must be whole words"
    return _FIXED_WITH_X + profile.to_bytes(2, "big") + (len(block) // 4).to_bytes(2, "big") + block + _PAYLOAD


# (name, profile, block, elements the walk must find)
VECTORS = [
    # RFC 8285 section 4.2's own figure: L=0, L=1, two padding bytes, L=3
    ("rfc8285 figure", 0xBEDE, "10aa21bb" "cc000033" "ddeeff11", {1: b"\xaa", 2: b"\xbb\xcc", 3: b"\xdd\xee\xff\x11"}),
    ("padding bytes before the first element", 0xBEDE, "000010aa", {1: b"\xaa"}),
    ("a 16-byte value, the one-byte maximum", 0xBEDE, "1f" + "ab" * 16 + "000000", {1: b"\xab" * 16}),
    ("id 0 with a length stops the walk", 0xBEDE, "10aa0521" "bbcc0000", {1: b"\xaa"}),
    ("id 0 with a length first leaves nothing", 0xBEDE, "0510aa00", {}),
    ("id 0 whose length would run past the block stops, not malformed", 0xBEDE, "10aa0f00", {1: b"\xaa"}),
    ("id 15 stops the walk", 0xBEDE, "10aaf022" "01020300", {1: b"\xaa"}),
    ("id 15 whose length would run past the block stops, not malformed", 0xBEDE, "10aaff00", {1: b"\xaa"}),
    ("a repeated id: the first element wins", 0xBEDE, "10aa10bb", {1: b"\xaa"}),
    ("two-byte: 0x00 is padding, id 15 is an ordinary id", 0x1000, "000101aa" "0f01bb00", {1: b"\xaa", 15: b"\xbb"}),
    ("two-byte with appbits: empty value, then a value", 0x1005, "01000201" "cc000000", {1: b"", 2: b"\xcc"}),
    ("two-byte: an empty element in the block's last two bytes", 0x1000, "0101aa00" "00000700", {1: b"\xaa", 7: b""}),
    ("two-byte: ids above 14 and a 255-byte value", 0x1000, "c8ff" + "5a" * 255 + "00" * 3, {200: b"\x5a" * 255}),
    ("a profile that is not RFC 8285 has no elements", 0xABCD, "10aa21bb", {}),
]


@pytest.mark.parametrize(("profile", "block", "expected"), [v[1:] for v in VECTORS], ids=[v[0] for v in VECTORS])
def test_the_full_parse_finds_exactly_the_elements_and_keeps_the_packet(
    profile: int, block: str, expected: dict[int, bytes]
) -> None:
    buf = rtp_with_block(profile, block)
    packet = RtpPacket.parse(buf)
    assert packet.extensions == expected
    assert packet.payload == _PAYLOAD
    assert RtpHeader.parse(buf).header_size == len(buf) - len(_PAYLOAD)


@pytest.mark.parametrize(("profile", "block", "expected"), [v[1:] for v in VECTORS], ids=[v[0] for v in VECTORS])
def test_the_hot_path_look_up_agrees_with_the_full_parse_for_every_id(
    profile: int, block: str, expected: dict[int, bytes]
) -> None:
    buf = rtp_with_block(profile, block)
    assert {i: v for i in range(256) if (v := get_header_extension(buf, i)) is not None} == expected


MALFORMED = [
    ("one-byte element runs past the block", 0xBEDE, "13aabbcc"),
    ("two-byte element header cut by the block end", 0x1000, "0101aa05"),
    ("two-byte value runs past the block", 0x1000, "0105aabb"),
]


@pytest.mark.parametrize(("profile", "block"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_an_element_that_lies_about_its_length_is_malformed(profile: int, block: str) -> None:
    buf = rtp_with_block(profile, block)
    with pytest.raises(MalformedPacket):
        RtpPacket.parse(buf)
    with pytest.raises(MalformedPacket):
        get_header_extension(buf, 200)
    # the header view never walks the elements, so forwarding is unaffected
    assert RtpHeader.parse(buf).payload_end == len(buf)


def test_an_element_found_before_a_broken_one_is_still_returned_by_the_look_up() -> None:
    buf = rtp_with_block(0xBEDE, "10aa13bb")
    assert get_header_extension(buf, 1) == b"\xaa"
