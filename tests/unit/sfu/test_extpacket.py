"""ExtPacket facts for VP8 agree with the full descriptor parser on any bytes, and never raise."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mediapod.rtp.codecs import parse_vp8
from mediapod.rtp.errors import MalformedPacket
from mediapod.rtp.packet import RtpHeader
from mediapod.sfu.extpacket import describe_vp8

HEADER_SIZE = 12


@given(st.binary(max_size=12))
def test_vp8_facts_match_parse_vp8_or_default_safely(payload: bytes) -> None:
    packet = bytes(HEADER_SIZE) + payload
    header = RtpHeader(96, False, 1, 0, 1, HEADER_SIZE, len(packet))
    ext = describe_vp8(packet, header, 0.0, 0, 1)
    facts = (ext.keyframe, ext.temporal, ext.picture_id_at, ext.picture_id_len, ext.tl0picidx_at)
    try:
        vp8 = parse_vp8(payload)
    except MalformedPacket:
        assert facts == (False, 0, -1, 0, -1)
        return
    expected_pid_at = 2 if vp8.picture_id_len else -1
    expected_tl0_at = 2 + vp8.picture_id_len if vp8.tl0_pic_idx is not None else -1
    assert facts == (vp8.is_keyframe, vp8.tid or 0, expected_pid_at, vp8.picture_id_len, expected_tl0_at)
    if ext.picture_id_at >= 0 and vp8.picture_id_len == 2:
        at = ext.picture_id_at
        assert ((payload[at] & 0x7F) << 8 | payload[at + 1]) == vp8.picture_id
    if ext.tl0picidx_at >= 0:
        assert payload[ext.tl0picidx_at] == vp8.tl0_pic_idx
