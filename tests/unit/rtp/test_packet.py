"""RTP packets and RFC 8285 header extensions, pinned down with byte vectors."""

from __future__ import annotations

import pytest
from aiortc import rtp as aiortc_rtp
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from hypothesis import given
from hypothesis import strategies as st

from mediapod.rtp.errors import MalformedPacket
from mediapod.rtp.packet import (
    RTP_HEADER_SIZE,
    RtpHeader,
    RtpPacket,
    get_header_extension,
    is_rtcp,
)

# V=2, M=1, PT=96, seq 0x1234, ts 0xdeadbeef, ssrc 0x11223344, payload "abcd"
PLAIN = bytes.fromhex("80e01234deadbeef11223344" "61626364")

# CC=2, PT=96, seq 1, ts 0x10, CSRCs aaaaaaaa and bbbbbbbb, payload ff
WITH_CSRCS = bytes.fromhex("826000010000001011223344" "aaaaaaaabbbbbbbb" "ff")

# P=1, seq 2, payload 0102, then 3 bytes of padding ending in the count
WITH_PADDING = bytes.fromhex("a06000020000002011223344" "0102" "000003")

# X=1, profile 0xBEDE, 3 words: id1=aa, 2 padding bytes, id2=010203, 1 padding byte, id3=bbcc
ONE_BYTE_EXT = bytes.fromhex(
    "906000030000003011223344" "bede0003" "10aa0000" "22010203" "0031bbcc" "dead"
)

# X=1, profile 0x1000, 2 words: id1 with an empty value, id20=aabbcc, 1 padding byte
TWO_BYTE_EXT = bytes.fromhex(
    "906000040000004011223344" "10000002" "0100" "1403aabbcc" "00" "beef"
)

# X=1, profile 0xBEDE: id1=aa, then id 15 which stops the walk before "garbage" id2
ONE_BYTE_EXT_WITH_STOP = bytes.fromhex(
    "906000050000005011223344" "bede0002" "10aaf000" "22010203" "ee"
)

# X=1, a profile that is not RFC 8285, kept raw
OTHER_PROFILE_EXT = bytes.fromhex("906000060000006011223344" "abcd0001" "01020304" "ee")


# --- plain packets -------------------------------------------------------


def test_plain_packet_fields_are_read_from_the_fixed_header() -> None:
    packet = RtpPacket.parse(PLAIN)
    assert packet.version == 2
    assert packet.marker is True
    assert packet.payload_type == 96
    assert packet.sequence_number == 0x1234
    assert packet.timestamp == 0xDEADBEEF
    assert packet.ssrc == 0x11223344
    assert packet.csrcs == []
    assert packet.extension_profile is None
    assert packet.extensions == {}
    assert packet.padding_size == 0
    assert packet.payload == b"abcd"


def test_plain_packet_serializes_to_the_same_bytes() -> None:
    assert RtpPacket.parse(PLAIN).serialize() == PLAIN


def test_packet_built_from_fields_serializes_to_the_vector() -> None:
    packet = RtpPacket(
        marker=True, payload_type=96, sequence_number=0x1234, timestamp=0xDEADBEEF,
        ssrc=0x11223344, payload=b"abcd",
    )
    assert packet.serialize() == PLAIN


def test_csrcs_are_listed_and_the_payload_starts_after_them() -> None:
    packet = RtpPacket.parse(WITH_CSRCS)
    assert packet.marker is False
    assert packet.csrcs == [0xAAAAAAAA, 0xBBBBBBBB]
    assert packet.payload == b"\xff"
    assert packet.serialize() == WITH_CSRCS


def test_padding_is_excluded_from_the_payload_and_written_back() -> None:
    packet = RtpPacket.parse(WITH_PADDING)
    assert packet.padding_size == 3
    assert packet.payload == b"\x01\x02"
    assert packet.serialize() == WITH_PADDING


def test_packet_that_is_only_padding_has_an_empty_payload() -> None:
    buf = bytes.fromhex("a06000020000002011223344" "00000004")
    packet = RtpPacket.parse(buf)
    assert packet.payload == b""
    assert packet.padding_size == 4


def test_parse_accepts_a_memoryview() -> None:
    assert RtpPacket.parse(memoryview(WITH_CSRCS)) == RtpPacket.parse(WITH_CSRCS)


# --- header extensions ---------------------------------------------------


def test_one_byte_extension_elements_are_found_after_padding() -> None:
    packet = RtpPacket.parse(ONE_BYTE_EXT)
    assert packet.extension_profile == 0xBEDE
    assert packet.extensions == {1: b"\xaa", 2: b"\x01\x02\x03", 3: b"\xbb\xcc"}
    assert packet.payload == b"\xde\xad"


def test_one_byte_id_0_with_a_length_stops_the_walk_and_keeps_the_packet() -> None:
    # 0x05 is id 0 with L=5: not padding (only 0x00 is), so like libwebrtc and
    # pion we stop there; id1 after it is ignored, the payload is intact
    buf = bytes.fromhex("906000030000003011223344" "bede0001" "0510aa00" "dead")
    packet = RtpPacket.parse(buf)
    assert packet.extensions == {}
    assert packet.payload == b"\xde\xad"
    assert get_header_extension(buf, 1) is None


def test_one_byte_extension_id_15_stops_parsing() -> None:
    packet = RtpPacket.parse(ONE_BYTE_EXT_WITH_STOP)
    assert packet.extensions == {1: b"\xaa"}
    assert get_header_extension(ONE_BYTE_EXT_WITH_STOP, 2) is None
    assert packet.payload == b"\xee"


def test_two_byte_extension_allows_empty_values_and_ids_above_14() -> None:
    packet = RtpPacket.parse(TWO_BYTE_EXT)
    assert packet.extension_profile == 0x1000
    assert packet.extensions == {1: b"", 20: b"\xaa\xbb\xcc"}
    assert packet.payload == b"\xbe\xef"


def test_two_byte_extension_serializes_to_the_same_bytes() -> None:
    assert RtpPacket.parse(TWO_BYTE_EXT).serialize() == TWO_BYTE_EXT


def test_extensions_that_fit_are_written_in_one_byte_form_padded_to_a_word() -> None:
    packet = RtpPacket(payload_type=96, sequence_number=3, timestamp=0x30, ssrc=0x11223344,
                       extensions={1: b"\xaa", 2: b"\x01\x02\x03", 3: b"\xbb\xcc"}, payload=b"\xde\xad")
    # elements packed without the padding bytes of the vector: 10aa 22010203 31bbcc + 2 pad
    assert packet.serialize() == bytes.fromhex(
        "906000030000003011223344" "bede0003" "10aa2201" "020331bb" "cc000000" "dead"
    )


def test_an_empty_value_forces_the_two_byte_form() -> None:
    packet = RtpPacket(extensions={1: b"", 20: b"\xaa\xbb\xcc"})
    reparsed = RtpPacket.parse(packet.serialize())
    assert reparsed.extension_profile == 0x1000
    assert reparsed.extensions == {1: b"", 20: b"\xaa\xbb\xcc"}


def test_a_value_longer_than_16_bytes_forces_the_two_byte_form() -> None:
    packet = RtpPacket(extensions={1: bytes(range(17))})
    reparsed = RtpPacket.parse(packet.serialize())
    assert reparsed.extension_profile == 0x1000
    assert reparsed.extensions == {1: bytes(range(17))}


def test_unknown_extension_profile_is_kept_raw_and_written_back() -> None:
    packet = RtpPacket.parse(OTHER_PROFILE_EXT)
    assert packet.extension_profile == 0xABCD
    assert packet.extensions == {}
    assert packet.extension_raw == b"\x01\x02\x03\x04"
    assert packet.payload == b"\xee"
    assert packet.serialize() == OTHER_PROFILE_EXT


@pytest.mark.parametrize(
    ("buf", "ext_id", "expected"),
    [
        (ONE_BYTE_EXT, 1, b"\xaa"),
        (ONE_BYTE_EXT, 2, b"\x01\x02\x03"),
        (ONE_BYTE_EXT, 3, b"\xbb\xcc"),
        (ONE_BYTE_EXT, 4, None),
        (TWO_BYTE_EXT, 1, b""),
        (TWO_BYTE_EXT, 20, b"\xaa\xbb\xcc"),
        (TWO_BYTE_EXT, 2, None),
        (PLAIN, 1, None),
        (OTHER_PROFILE_EXT, 1, None),
    ],
)
def test_get_header_extension_finds_one_element_without_parsing_the_rest(
    buf: bytes, ext_id: int, expected: bytes | None
) -> None:
    assert get_header_extension(buf, ext_id) == expected


# --- the hot-path header view --------------------------------------------


def test_header_view_locates_the_payload_between_extensions_and_padding() -> None:
    buf = bytes.fromhex("b06000030000003011223344" "bede0001" "10aa0000" "dead" "0002")
    header = RtpHeader.parse(buf)
    assert header.payload_type == 96
    assert header.marker is False
    assert header.sequence_number == 3
    assert header.timestamp == 0x30
    assert header.ssrc == 0x11223344
    assert header.header_size == 20
    assert header.payload_end == 22
    assert buf[header.header_size : header.payload_end] == b"\xde\xad"


@pytest.mark.parametrize("buf", [PLAIN, WITH_CSRCS, WITH_PADDING, ONE_BYTE_EXT, TWO_BYTE_EXT])
def test_header_view_agrees_with_the_full_parse(buf: bytes) -> None:
    header = RtpHeader.parse(buf)
    packet = RtpPacket.parse(buf)
    assert (header.payload_type, header.marker, header.sequence_number, header.timestamp, header.ssrc) == (
        packet.payload_type, packet.marker, packet.sequence_number, packet.timestamp, packet.ssrc,
    )
    assert buf[header.header_size : header.payload_end] == packet.payload
    assert len(buf) - header.payload_end == packet.padding_size


# --- RTP/RTCP demux --------------------------------------------------------


@pytest.mark.parametrize(
    ("second_byte", "expected"),
    [(200, True), (192, True), (205, True), (206, True), (223, True), (191, False), (224, False),
     (0x60, False), (0xE0, False), (0x6F, False)],
)
def test_is_rtcp_accepts_packet_types_192_to_223(second_byte: int, expected: bool) -> None:
    assert is_rtcp(bytes((0x80, second_byte)) + bytes(10)) is expected


def test_is_rtcp_is_false_for_a_one_byte_buffer() -> None:
    assert is_rtcp(b"\x80") is False


# --- malformed ---------------------------------------------------------------


MALFORMED = {
    "empty": b"",
    "11 bytes": PLAIN[:11],
    "version 1": bytes((0x40,)) + PLAIN[1:],
    "CC runs past the end": bytes.fromhex("836000010000001011223344" "aaaaaaaabbbbbbbb"),
    "extension header truncated": bytes.fromhex("906000010000001011223344" "bede"),
    "extension length past the end": bytes.fromhex("906000010000001011223344" "bede0002" "10aa0000"),
    "padding size 0": bytes.fromhex("a06000020000002011223344" "010200"),
    "padding larger than the payload": bytes.fromhex("a06000020000002011223344" "010204"),
}


@pytest.mark.parametrize("buf", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_packet_is_rejected_by_the_full_parse(buf: bytes) -> None:
    with pytest.raises(MalformedPacket):
        RtpPacket.parse(buf)


@pytest.mark.parametrize("buf", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_packet_is_rejected_by_the_header_view(buf: bytes) -> None:
    with pytest.raises(MalformedPacket):
        RtpHeader.parse(buf)


def test_one_byte_element_running_past_the_block_is_malformed() -> None:
    # id1 claims 4 bytes (L=3) but only 3 remain in the one-word block
    buf = bytes.fromhex("906000010000001011223344" "bede0001" "13aabbcc")
    with pytest.raises(MalformedPacket):
        RtpPacket.parse(buf)
    with pytest.raises(MalformedPacket):
        get_header_extension(buf, 2)


def test_two_byte_element_running_past_the_block_is_malformed() -> None:
    buf = bytes.fromhex("906000010000001011223344" "10000001" "0105aabb")
    with pytest.raises(MalformedPacket):
        RtpPacket.parse(buf)
    with pytest.raises(MalformedPacket):
        get_header_extension(buf, 1)


def test_get_header_extension_rejects_a_short_buffer() -> None:
    with pytest.raises(MalformedPacket):
        get_header_extension(b"\x90" * 5, 1)


rtp_like = st.binary(min_size=RTP_HEADER_SIZE, max_size=80).map(lambda b: bytes((0x80 | (b[0] & 0x3F),)) + b[1:])


@given(st.one_of(st.binary(max_size=80), rtp_like))
def test_random_bytes_raise_nothing_but_malformed_packet(buf: bytes) -> None:
    for parse in (RtpPacket.parse, RtpHeader.parse, lambda b: get_header_extension(b, 1)):
        try:
            parse(buf)
        except MalformedPacket:
            pass


@given(rtp_like)
def test_whatever_parses_serializes_to_something_that_parses_the_same(buf: bytes) -> None:
    try:
        packet = RtpPacket.parse(buf)
    except MalformedPacket:
        return
    again = RtpPacket.parse(packet.serialize())
    assert again.payload == packet.payload
    assert again.extensions == packet.extensions
    assert again.csrcs == packet.csrcs
    assert again.padding_size == packet.padding_size


# --- cross-checks with aiortc, a parser nobody here wrote -----------------


def _aiortc_extension_map() -> aiortc_rtp.HeaderExtensionsMap:
    extensions_map = aiortc_rtp.HeaderExtensionsMap()
    extensions_map.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
                RTCRtpHeaderExtensionParameters(id=10, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
                RTCRtpHeaderExtensionParameters(
                    id=3,
                    uri="http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
                ),
            ]
        )
    )
    return extensions_map


def test_packet_serialized_by_aiortc_parses_here() -> None:
    theirs = aiortc_rtp.RtpPacket(payload_type=111, marker=1, sequence_number=65535,
                                  timestamp=4_000_000_000, ssrc=0xCAFEBABE, payload=b"opus")
    theirs.csrc = [7, 8]
    theirs.padding_size = 5
    theirs.extensions.mid = "0"
    theirs.extensions.audio_level = (True, 42)
    theirs.extensions.transport_sequence_number = 0x0102
    buf = theirs.serialize(_aiortc_extension_map())

    ours = RtpPacket.parse(buf)
    assert (ours.payload_type, ours.marker, ours.sequence_number, ours.timestamp, ours.ssrc) == (
        111, True, 65535, 4_000_000_000, 0xCAFEBABE,
    )
    assert ours.csrcs == [7, 8]
    assert ours.padding_size == 5
    assert ours.payload == b"opus"
    assert ours.extensions == {1: b"0", 10: bytes((0x80 | 42,)), 3: b"\x01\x02"}
    assert get_header_extension(buf, 10) == bytes((0x80 | 42,))


def test_packet_serialized_here_parses_in_aiortc() -> None:
    ours = RtpPacket(marker=True, payload_type=96, sequence_number=7, timestamp=90000, ssrc=0x01020304,
                     csrcs=[5], padding_size=2, payload=b"video",
                     extensions={1: b"mid1", 3: b"\x00\x09"})
    theirs = aiortc_rtp.RtpPacket.parse(ours.serialize(), _aiortc_extension_map())
    assert (theirs.payload_type, theirs.marker, theirs.sequence_number, theirs.timestamp, theirs.ssrc) == (
        96, 1, 7, 90000, 0x01020304,
    )
    assert theirs.csrc == [5]
    assert theirs.padding_size == 2
    assert theirs.payload == b"video"
    assert theirs.extensions.mid == "mid1"
    assert theirs.extensions.transport_sequence_number == 9
