"""VP8 and H.264 payload descriptors and keyframe detection, with byte vectors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediapod.rtp.codecs import (
    KEYFRAME_DETECTORS,
    Vp8Descriptor,
    h264_is_keyframe,
    h264_nal_types,
    parse_vp8,
    vp8_is_keyframe,
)
from mediapod.rtp.errors import MalformedPacket

# --- VP8 (RFC 7741) ------------------------------------------------------------

# X=1 S=1 PID=0; I L T set; 15-bit picture id 0x0123; TL0PICIDX 5; TID 1 with Y;
# then a VP8 key frame header (P bit clear) and its start code 9d012a
VP8_KEYFRAME_FULL = bytes.fromhex("90" "e0" "8123" "05" "60" "500200" "9d012a")
# the same descriptor in front of an inter frame (P bit set)
VP8_INTERFRAME_FULL = bytes.fromhex("90" "e0" "8123" "05" "60" "510200")
# no extensions at all: S=1 PID=0, key frame
VP8_KEYFRAME_MINIMAL = bytes.fromhex("10" "500200")
# continuation packet: S=0, 7-bit picture id 0x23
VP8_CONTINUATION = bytes.fromhex("80" "80" "23" "aabbcc")
# S=1 but partition 1: not the start of the frame
VP8_SECOND_PARTITION = bytes.fromhex("11" "500200")
# T and K: TID 3, Y, KEYIDX 5
VP8_TID_AND_KEYIDX = bytes.fromhex("90" "30" "e5" "510200")
# K only: KEYIDX 31, no TID
VP8_KEYIDX_ONLY = bytes.fromhex("90" "10" "1f" "510200")


def test_vp8_descriptor_with_every_field_is_decoded() -> None:
    assert parse_vp8(VP8_KEYFRAME_FULL) == Vp8Descriptor(
        header_size=6,
        start_of_partition=True,
        partition_id=0,
        picture_id=0x0123,
        picture_id_len=2,
        tl0_pic_idx=5,
        tid=1,
        layer_sync=True,
        key_idx=None,
        is_keyframe=True,
    )


def test_vp8_inter_frame_is_not_a_keyframe() -> None:
    descriptor = parse_vp8(VP8_INTERFRAME_FULL)
    assert descriptor.is_keyframe is False
    assert descriptor.picture_id == 0x0123


def test_vp8_minimal_descriptor_is_one_byte() -> None:
    descriptor = parse_vp8(VP8_KEYFRAME_MINIMAL)
    assert descriptor.header_size == 1
    assert descriptor.picture_id is None
    assert descriptor.picture_id_len == 0
    assert descriptor.tl0_pic_idx is None
    assert descriptor.tid is None
    assert descriptor.key_idx is None
    assert descriptor.is_keyframe is True


def test_vp8_continuation_packet_has_a_7_bit_picture_id_and_is_not_a_keyframe() -> None:
    descriptor = parse_vp8(VP8_CONTINUATION)
    assert descriptor.start_of_partition is False
    assert descriptor.picture_id == 0x23
    assert descriptor.picture_id_len == 1
    assert descriptor.header_size == 3
    assert descriptor.is_keyframe is False


def test_vp8_start_of_a_later_partition_is_not_a_keyframe() -> None:
    descriptor = parse_vp8(VP8_SECOND_PARTITION)
    assert descriptor.partition_id == 1
    assert descriptor.is_keyframe is False


def test_vp8_tid_and_keyidx_share_one_byte() -> None:
    descriptor = parse_vp8(VP8_TID_AND_KEYIDX)
    assert (descriptor.tid, descriptor.layer_sync, descriptor.key_idx) == (3, True, 5)
    assert descriptor.header_size == 3


def test_vp8_keyidx_without_t_leaves_tid_unset() -> None:
    descriptor = parse_vp8(VP8_KEYIDX_ONLY)
    assert (descriptor.tid, descriptor.layer_sync, descriptor.key_idx) == (None, False, 31)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (VP8_KEYFRAME_FULL, True),
        (VP8_KEYFRAME_MINIMAL, True),
        (VP8_INTERFRAME_FULL, False),
        (VP8_CONTINUATION, False),
        (VP8_SECOND_PARTITION, False),
        (VP8_TID_AND_KEYIDX, False),
        (b"", False),
        (b"\x10", False),
    ],
)
def test_vp8_fast_keyframe_check_matches_the_descriptor(payload: bytes, expected: bool) -> None:
    assert vp8_is_keyframe(payload) is expected


VP8_MALFORMED = {
    "empty": b"",
    "X without extension byte": bytes.fromhex("90"),
    "I without picture id": bytes.fromhex("9080"),
    "15-bit picture id cut short": bytes.fromhex("908081"),
    "L without TL0PICIDX": bytes.fromhex("9040"),
    "T without TID byte": bytes.fromhex("9020"),
    "descriptor without VP8 data": bytes.fromhex("908023"),
    "one byte descriptor without VP8 data": bytes.fromhex("10"),
}


@pytest.mark.parametrize("payload", VP8_MALFORMED.values(), ids=VP8_MALFORMED.keys())
def test_vp8_truncated_descriptor_is_malformed_and_not_a_keyframe(payload: bytes) -> None:
    with pytest.raises(MalformedPacket):
        parse_vp8(payload)
    assert vp8_is_keyframe(payload) is False


@given(st.binary(max_size=12))
def test_vp8_fast_check_never_raises_and_agrees_with_the_parser(payload: bytes) -> None:
    try:
        expected = parse_vp8(payload).is_keyframe
    except MalformedPacket:
        expected = False
    assert vp8_is_keyframe(payload) is expected


# --- H.264 (RFC 6184) ------------------------------------------------------------

H264_IDR = bytes.fromhex("65888400")
H264_SPS = bytes.fromhex("6742c01f")
H264_PPS = bytes.fromhex("68ce3c80")
H264_SLICE = bytes.fromhex("419a2000")
# STAP-A: SPS (4 bytes) and PPS (2 bytes)
H264_STAP_A_SPS_PPS = bytes.fromhex("78" "0004" "6742c01f" "0002" "68ce")
# STAP-A: PPS and a non-IDR slice
H264_STAP_A_NO_KEY = bytes.fromhex("78" "0002" "68ce" "0002" "419a")
# FU-A: indicator type 28, header S=1 type 5 / middle / end / start of a non-IDR slice
H264_FU_A_IDR_START = bytes.fromhex("7c" "85" "8884")
H264_FU_A_IDR_MIDDLE = bytes.fromhex("7c" "05" "8884")
H264_FU_A_IDR_END = bytes.fromhex("7c" "45" "8884")
H264_FU_A_SLICE_START = bytes.fromhex("5c" "81" "9a20")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (H264_IDR, True),
        (H264_SPS, True),
        (H264_PPS, False),
        (H264_SLICE, False),
        (H264_STAP_A_SPS_PPS, True),
        (H264_STAP_A_NO_KEY, False),
        (H264_FU_A_IDR_START, True),
        (H264_FU_A_IDR_MIDDLE, False),
        (H264_FU_A_IDR_END, False),
        (H264_FU_A_SLICE_START, False),
    ],
    ids=["IDR", "SPS", "PPS", "slice", "STAP-A SPS+PPS", "STAP-A no key", "FU-A IDR start",
         "FU-A IDR middle", "FU-A IDR end", "FU-A slice start"],
)
def test_h264_keyframe_is_an_idr_or_sps_however_packetized(payload: bytes, expected: bool) -> None:
    assert h264_is_keyframe(payload) is expected


@pytest.mark.parametrize(
    ("payload", "types"),
    [
        (H264_IDR, [5]),
        (H264_PPS, [8]),
        (H264_STAP_A_SPS_PPS, [7, 8]),
        (H264_STAP_A_NO_KEY, [8, 1]),
        (H264_FU_A_IDR_MIDDLE, [5]),
        (H264_FU_A_SLICE_START, [1]),
    ],
)
def test_h264_nal_types_lists_the_units_a_packet_carries(payload: bytes, types: list[int]) -> None:
    assert h264_nal_types(payload) == types


H264_MALFORMED = {
    "empty": b"",
    "STAP-A without units": bytes.fromhex("78"),
    "STAP-A size cut short": bytes.fromhex("78" "0004" "6742c01f" "00"),
    "STAP-A unit past the end": bytes.fromhex("78" "0005" "6742c01f"),
    "STAP-A unit of size 0": bytes.fromhex("78" "0000" "0004" "6742c01f"),
    "FU-A without header": bytes.fromhex("7c"),
}


@pytest.mark.parametrize("payload", H264_MALFORMED.values(), ids=H264_MALFORMED.keys())
def test_h264_malformed_payload_is_not_a_keyframe(payload: bytes) -> None:
    assert h264_is_keyframe(payload) is False
    with pytest.raises(MalformedPacket):
        h264_nal_types(payload)


def test_h264_stap_a_with_sps_then_garbage_is_not_trusted() -> None:
    assert h264_is_keyframe(H264_STAP_A_SPS_PPS + b"\x00") is False


@given(st.binary(max_size=24))
def test_h264_keyframe_check_never_raises_and_only_fires_on_idr_or_sps(payload: bytes) -> None:
    if h264_is_keyframe(payload):
        assert {5, 7} & set(h264_nal_types(payload))


@given(st.binary(max_size=24))
def test_h264_nal_types_raises_nothing_but_malformed_packet(payload: bytes) -> None:
    try:
        h264_nal_types(payload)
    except MalformedPacket:
        pass


# --- registry ----------------------------------------------------------------------


def test_keyframe_detectors_are_keyed_by_lowercase_mime_type() -> None:
    assert KEYFRAME_DETECTORS["video/vp8"] is vp8_is_keyframe
    assert KEYFRAME_DETECTORS["video/h264"] is h264_is_keyframe
    assert all(key == key.lower() for key in KEYFRAME_DETECTORS)
