"""RTCP packets, pinned down with byte vectors and cross-checked against aiortc."""

from __future__ import annotations

import time

import pytest
from aiortc import rtp as aiortc_rtp
from hypothesis import given
from hypothesis import strategies as st

from mediapod.rtp.errors import MalformedPacket
from mediapod.rtp.rtcp import (
    FullIntraRequest,
    Goodbye,
    Nack,
    PictureLossIndication,
    ReceiverReport,
    ReceptionReport,
    Remb,
    RtcpPacket,
    SdesChunk,
    SenderReport,
    SourceDescription,
    TransportCC,
    UnknownRtcp,
    ntp_middle32,
    ntp_now,
    parse_rtcp,
    serialize_compound,
)

# Report block about 0xbc5e9a40: fraction 16/256, packets lost -2 (duplicates),
# highest sequence 123456, jitter 627, LSR 0x12345678, DLSR 0xabcd.
REPORT_BLOCK = bytes.fromhex("bc5e9a40" "10fffffe" "0001e240" "00000273" "12345678" "0000abcd")
REPORT = ReceptionReport(
    ssrc=0xBC5E9A40, fraction_lost=16, packets_lost=-2, highest_sequence=123456,
    jitter=627, lsr=0x12345678, dlsr=0xABCD,
)

# SR, RC=1, length 12 words: SSRC, NTP, RTP ts, packet count 1, octet count 2, one block
SR_VECTOR = bytes.fromhex(
    "81c8000c" "902f9e2e" "da8bd1fcdddda05a" "aaf4edd5" "00000001" "00000002"
) + REPORT_BLOCK
SR_PACKET = SenderReport(
    ssrc=0x902F9E2E, ntp_timestamp=0xDA8BD1FCDDDDA05A, rtp_timestamp=0xAAF4EDD5,
    packet_count=1, octet_count=2, reports=[REPORT],
)

RR_VECTOR = bytes.fromhex("81c90007" "902f9e2e") + REPORT_BLOCK
RR_PACKET = ReceiverReport(ssrc=0x902F9E2E, reports=[REPORT])

# SDES, one chunk, CNAME "user@host" (9 bytes), END, already word aligned
SDES_VECTOR = bytes.fromhex("81ca0004" "902f9e2e" "0109" "7573657240686f7374" "00")
SDES_PACKET = SourceDescription([SdesChunk(0x902F9E2E, [(1, b"user@host")])])

# BYE, one source, reason "bye!" padded to a word
BYE_VECTOR = bytes.fromhex("81cb0003" "902f9e2e" "04" "62796521" "000000")
BYE_PACKET = Goodbye([0x902F9E2E], b"bye!")

# Generic NACK, PID 100, BLP 0b101: 100, 101 and 103 are lost
NACK_VECTOR = bytes.fromhex("81cd0003" "902f9e2e" "902f9e2f" "0064" "0005")
NACK_PACKET = Nack(sender_ssrc=0x902F9E2E, media_ssrc=0x902F9E2F, lost=[100, 101, 103])

PLI_VECTOR = bytes.fromhex("81ce0002" "902f9e2e" "902f9e2f")
PLI_PACKET = PictureLossIndication(sender_ssrc=0x902F9E2E, media_ssrc=0x902F9E2F)

# FIR, one entry: SSRC 0x902f9e2f, command sequence number 42
FIR_VECTOR = bytes.fromhex("84ce0004" "902f9e2e" "00000000" "902f9e2f" "2a000000")
FIR_PACKET = FullIntraRequest(sender_ssrc=0x902F9E2E, media_ssrc=0, entries=[(0x902F9E2F, 42)])

# REMB: exponent 3, mantissa 250000 -> 2 Mbit/s, for one SSRC
REMB_VECTOR = bytes.fromhex("8fce0005" "902f9e2e" "00000000" "52454d42" "01" "0fd090" "902f9e2f")
REMB_PACKET = Remb(sender_ssrc=0x902F9E2E, bitrate=2_000_000, ssrcs=[0x902F9E2F])

# Transport-wide CC with a 6-byte FCI, padded by RTCP padding to a word
TWCC_VECTOR = bytes.fromhex("afcd0004" "902f9e2e" "902f9e2f" "000100020003" "0002")
TWCC_PACKET = TransportCC(sender_ssrc=0x902F9E2E, media_ssrc=0x902F9E2F, raw=bytes.fromhex("000100020003"))

# APP (PT 204), subtype 3, name "test", no data
APP_VECTOR = bytes.fromhex("83cc0002" "902f9e2e" "74657374")
APP_PACKET = UnknownRtcp(packet_type=204, fmt=3, raw=bytes.fromhex("902f9e2e74657374"))

VECTORS = {
    "SR": (SR_VECTOR, SR_PACKET),
    "RR": (RR_VECTOR, RR_PACKET),
    "SDES": (SDES_VECTOR, SDES_PACKET),
    "BYE": (BYE_VECTOR, BYE_PACKET),
    "NACK": (NACK_VECTOR, NACK_PACKET),
    "PLI": (PLI_VECTOR, PLI_PACKET),
    "FIR": (FIR_VECTOR, FIR_PACKET),
    "REMB": (REMB_VECTOR, REMB_PACKET),
    "TWCC": (TWCC_VECTOR, TWCC_PACKET),
    "APP": (APP_VECTOR, APP_PACKET),
}


@pytest.mark.parametrize(("vector", "packet"), VECTORS.values(), ids=VECTORS.keys())
def test_each_packet_kind_parses_from_its_byte_vector(vector: bytes, packet: object) -> None:
    assert parse_rtcp(vector) == [packet]


@pytest.mark.parametrize(("vector", "packet"), VECTORS.values(), ids=VECTORS.keys())
def test_each_packet_kind_serializes_to_its_byte_vector(vector: bytes, packet: object) -> None:
    assert packet.serialize() == vector  # type: ignore[attr-defined]


def test_compound_sr_and_sdes_parse_in_order() -> None:
    compound = SR_VECTOR + SDES_VECTOR
    assert parse_rtcp(compound) == [SR_PACKET, SDES_PACKET]
    assert serialize_compound([SR_PACKET, SDES_PACKET]) == compound


def test_parse_accepts_a_memoryview() -> None:
    assert parse_rtcp(memoryview(SR_VECTOR + SDES_VECTOR)) == [SR_PACKET, SDES_PACKET]


def test_packets_lost_saturates_at_the_24_bit_limits() -> None:
    report = ReceptionReport(1, 0, -(1 << 30), 0, 0, 0, 0)
    assert ReceiverReport(2, [report]).serialize()[13:16] == b"\x80\x00\x00"
    report.packets_lost = 1 << 30
    assert ReceiverReport(2, [report]).serialize()[13:16] == b"\x7f\xff\xff"


def test_sdes_item_list_is_always_ended_by_at_least_one_null_octet() -> None:
    # "ab@cde" makes the chunk 4 + 2 + 6 = 12 bytes, so END needs a whole extra word
    chunk = SdesChunk(1, [(1, b"ab@cde")])
    assert chunk.serialize() == bytes.fromhex("00000001" "0106616240636465" "00000000")


def test_sdes_with_several_chunks_and_items_round_trips() -> None:
    packet = SourceDescription([
        SdesChunk(1, [(1, b"a"), (2, b"name"), (8, b"\x03privdata")]),
        SdesChunk(2, [(1, b"{9c00eb92-1afb-9d49-a47d-91f64eee69f5}")]),
        SdesChunk(3, []),
    ])
    assert parse_rtcp(packet.serialize()) == [packet]


def test_bye_without_reason_has_only_ssrcs() -> None:
    packet = Goodbye([1, 2])
    assert packet.serialize() == bytes.fromhex("82cb0002" "00000001" "00000002")
    assert parse_rtcp(packet.serialize()) == [packet]


def test_remb_bitrate_is_rounded_down_to_an_18_bit_mantissa() -> None:
    packet = Remb(sender_ssrc=1, bitrate=1_000_001, ssrcs=[2, 3])
    (parsed,) = parse_rtcp(packet.serialize())
    assert isinstance(parsed, Remb)
    assert parsed.ssrcs == [2, 3]
    assert parsed.bitrate <= 1_000_001
    assert parsed.bitrate > 1_000_001 * (1 - 2**-17)


def test_psfb_fmt_15_without_remb_identifier_is_unknown_not_an_error() -> None:
    buf = bytes.fromhex("8fce0003" "00000001" "00000000" "41424344")
    assert parse_rtcp(buf) == [UnknownRtcp(206, 15, bytes.fromhex("000000010000000041424344"))]


def test_padding_on_the_last_packet_of_a_compound_is_removed() -> None:
    padded_rr = bytes.fromhex("a1c90008" "902f9e2e") + REPORT_BLOCK + bytes.fromhex("00000004")
    assert parse_rtcp(SR_VECTOR + padded_rr) == [SR_PACKET, RR_PACKET]


# --- NACK --------------------------------------------------------------------


def test_nack_blp_wraps_past_65535() -> None:
    buf = bytes.fromhex("81cd0003" "00000001" "00000002" "ffff" "0001")
    assert parse_rtcp(buf) == [Nack(1, 2, [65535, 0])]


@pytest.mark.parametrize(
    ("lost", "pairs"),
    [
        ([65534, 65535, 0, 1], ["fffe0007"]),
        ([100, 101, 116, 117, 120], ["00648001", "00750004"]),
        ([5], ["00050000"]),
        ([0, 16], ["00008000"]),
        ([0, 17], ["00000000", "00110000"]),
        ([65535, 15], ["ffff8000"]),
    ],
)
def test_nack_groups_lost_packets_into_minimal_pairs_and_round_trips(lost: list[int], pairs: list[str]) -> None:
    packet = Nack(sender_ssrc=1, media_ssrc=2, lost=lost)
    buf = packet.serialize()
    assert buf[12:] == bytes.fromhex("".join(pairs))
    assert parse_rtcp(buf) == [packet]


def test_nack_encoding_ignores_order_and_duplicates() -> None:
    packet = Nack(1, 2, [1, 65535, 0, 1, 65534])
    assert parse_rtcp(packet.serialize()) == [Nack(1, 2, [65534, 65535, 0, 1])]


@given(st.sets(st.integers(0, 65535), min_size=1, max_size=60))
def test_nack_round_trip_preserves_the_set_of_lost_packets(lost: set[int]) -> None:
    (parsed,) = parse_rtcp(Nack(1, 2, sorted(lost)).serialize())
    assert isinstance(parsed, Nack)
    assert set(parsed.lost) == lost
    assert len(parsed.lost) == len(lost)


# --- NTP helpers -------------------------------------------------------------


def test_ntp_now_counts_seconds_since_1900() -> None:
    ntp = ntp_now()
    assert abs((ntp >> 32) - 2208988800 - time.time()) < 2
    assert ntp < 1 << 64


def test_ntp_middle32_is_what_lsr_carries() -> None:
    assert ntp_middle32(0xDA8BD1FCDDDDA05A) == 0xD1FCDDDD


# --- malformed ---------------------------------------------------------------


MALFORMED = {
    "empty": b"",
    "short header": b"\x81\xc8\x00",
    "version 1": bytes((0x41,)) + RR_VECTOR[1:],
    "length past the end": RR_VECTOR[:-4],
    "length past the end in second packet": SR_VECTOR + SDES_VECTOR[:-1],
    "trailing bytes after a packet": RR_VECTOR + b"\x81",
    "truncated SR report block": bytes.fromhex("81c80009") + SR_VECTOR[4:40],
    "SR shorter than sender info": bytes.fromhex("80c80002" "902f9e2e" "00000000"),
    "truncated RR report block": bytes.fromhex("82c90007") + RR_VECTOR[4:],
    "padding size 0": bytes.fromhex("a1c90008" "902f9e2e") + REPORT_BLOCK + bytes(4),
    "padding larger than the body": bytes.fromhex("a0c90001" "00000005"),
    "padding bit on an empty body": bytes.fromhex("a0c90000"),
    "NACK with zero FCI": bytes.fromhex("81cd0002" "00000001" "00000002"),
    "feedback without media SSRC": bytes.fromhex("81cd0001" "00000001"),
    "FIR with partial entry": bytes.fromhex("84ce0005" "00000001" "00000000" "00000002" "2a000000" "00000003"),
    "FIR with no entry": bytes.fromhex("84ce0002" "00000001" "00000000"),
    "REMB with missing SSRCs": bytes.fromhex("8fce0004" "00000001" "00000000" "52454d42" "020fd090"),
    "SDES chunk without END": bytes.fromhex("81ca0002" "00000001" "01026162"),
    "SDES item past the end": bytes.fromhex("81ca0002" "00000001" "01056162"),
    "SDES missing chunk": bytes.fromhex("82ca0002" "00000001" "00000000"),
    "BYE missing source": bytes.fromhex("82cb0001" "00000001"),
    "BYE reason past the end": bytes.fromhex("81cb0002" "00000001" "09616263"),
}


@pytest.mark.parametrize("buf", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_rtcp_is_rejected(buf: bytes) -> None:
    with pytest.raises(MalformedPacket):
        parse_rtcp(buf)


rtcp_like = st.lists(
    st.tuples(st.integers(0, 0x3F), st.sampled_from([200, 201, 202, 203, 204, 205, 206]), st.binary(max_size=64)),
    min_size=1,
    max_size=3,
).map(lambda parts: b"".join(
    bytes((0x80 | first, pt)) + (len(body) // 4).to_bytes(2, "big") + body for first, pt, body in parts
))


@given(st.one_of(st.binary(max_size=120), rtcp_like))
def test_random_bytes_raise_nothing_but_malformed_packet(buf: bytes) -> None:
    try:
        packets = parse_rtcp(buf)
    except MalformedPacket:
        return
    # whatever parses must serialize and parse back to the same objects
    assert _canonical(parse_rtcp(serialize_compound(packets))) == _canonical(packets)


def _canonical(packets: list[RtcpPacket]) -> list[RtcpPacket]:
    """NACK lost lists come back in wire order, which the encoder may change."""
    return [
        Nack(p.sender_ssrc, p.media_ssrc, sorted(p.lost)) if isinstance(p, Nack) else p
        for p in packets
    ]


# --- cross-checks with aiortc --------------------------------------------------


def _aiortc_report() -> aiortc_rtp.RtcpReceiverInfo:
    return aiortc_rtp.RtcpReceiverInfo(
        ssrc=REPORT.ssrc, fraction_lost=REPORT.fraction_lost, packets_lost=REPORT.packets_lost,
        highest_sequence=REPORT.highest_sequence, jitter=REPORT.jitter, lsr=REPORT.lsr, dlsr=REPORT.dlsr,
    )


def test_sender_report_matches_aiortc_byte_for_byte() -> None:
    theirs = aiortc_rtp.RtcpSrPacket(
        ssrc=SR_PACKET.ssrc,
        sender_info=aiortc_rtp.RtcpSenderInfo(
            ntp_timestamp=SR_PACKET.ntp_timestamp, rtp_timestamp=SR_PACKET.rtp_timestamp,
            packet_count=SR_PACKET.packet_count, octet_count=SR_PACKET.octet_count,
        ),
        reports=[_aiortc_report()],
    )
    assert bytes(theirs) == SR_VECTOR
    assert aiortc_rtp.RtcpPacket.parse(SR_PACKET.serialize()) == [theirs]


def test_receiver_report_matches_aiortc_byte_for_byte() -> None:
    theirs = aiortc_rtp.RtcpRrPacket(ssrc=RR_PACKET.ssrc, reports=[_aiortc_report()])
    assert bytes(theirs) == RR_VECTOR
    assert aiortc_rtp.RtcpPacket.parse(RR_PACKET.serialize()) == [theirs]


def test_sdes_from_aiortc_parses_here_and_ours_parses_there() -> None:
    theirs = aiortc_rtp.RtcpSdesPacket(
        chunks=[aiortc_rtp.RtcpSourceInfo(ssrc=0x902F9E2E, items=[(1, b"user@host")])]
    )
    # aiortc ends the item list with two null octets; the chunk still parses
    assert parse_rtcp(bytes(theirs)) == [SDES_PACKET]
    assert aiortc_rtp.RtcpPacket.parse(SDES_VECTOR) == [theirs]


def test_bye_from_aiortc_parses_here() -> None:
    theirs = aiortc_rtp.RtcpByePacket(sources=[1, 2, 3])
    assert parse_rtcp(bytes(theirs)) == [Goodbye([1, 2, 3])]


def test_nack_agrees_with_aiortc_away_from_the_wrap() -> None:
    lost = [100, 101, 103, 116, 117, 150]
    theirs = aiortc_rtp.RtcpRtpfbPacket(fmt=1, ssrc=1, media_ssrc=2, lost=lost)
    assert parse_rtcp(bytes(theirs)) == [Nack(1, 2, lost)]
    assert aiortc_rtp.RtcpPacket.parse(Nack(1, 2, lost).serialize()) == [theirs]


def test_pli_and_fir_agree_with_aiortc() -> None:
    pli = aiortc_rtp.RtcpPsfbPacket(fmt=1, ssrc=0x902F9E2E, media_ssrc=0x902F9E2F)
    assert bytes(pli) == PLI_VECTOR
    fir = aiortc_rtp.RtcpPsfbPacket(fmt=4, ssrc=0x902F9E2E, media_ssrc=0, fci=FIR_VECTOR[12:])
    assert bytes(fir) == FIR_VECTOR


def test_remb_agrees_with_aiortc() -> None:
    fci = aiortc_rtp.pack_remb_fci(REMB_PACKET.bitrate, REMB_PACKET.ssrcs)
    theirs = aiortc_rtp.RtcpPsfbPacket(fmt=15, ssrc=REMB_PACKET.sender_ssrc, media_ssrc=0, fci=fci)
    assert bytes(theirs) == REMB_VECTOR
    buf = Remb(1, 123_456_789, [7]).serialize()
    (ours,) = parse_rtcp(buf)
    (parsed,) = aiortc_rtp.RtcpPacket.parse(buf)
    assert isinstance(ours, Remb)
    assert aiortc_rtp.unpack_remb_fci(parsed.fci) == (ours.bitrate, [7])
