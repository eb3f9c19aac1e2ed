"""Issue: Reliability — participants with one idle PeerConnection stay connected,
and no participant can stall a pod.

One test per item of the issue's "What it must show", against a real media
pod process, real aiortc peers and real DTLS-SRTP on loopback.
"""

from __future__ import annotations


# --- item 8: RTP header extension id 0 with a length ------------------------

# RFC 8285 section 4.2's own figure, as a one-byte block: id 1 (L=0), id 2
# (L=1), two padding bytes, id 3 (L=3).
_RFC8285_FIGURE_BLOCK = bytes.fromhex("10aa21bb" "cc000033" "ddeeff11")
_RFC8285_FIGURE_ELEMENTS = {1: b"\xaa", 2: b"\xbb\xcc", 3: b"\xdd\xee\xff\x11"}


def _rtp_with_extension_block(profile: int, block: bytes, payload: bytes) -> bytes:
    fixed = bytes.fromhex("906f00090000009012345678")  # V=2, X=1, PT=111
    return fixed + profile.to_bytes(2, "big") + (len(block) // 4).to_bytes(2, "big") + block + payload


def test_item8_one_byte_extension_id0_with_length_stops_parsing_per_rfc8285() -> None:
    """RFC 8285 4.2: only a single 0x00 byte is padding; id 0 with a length, like
    id 15, ends the block. libwebrtc (RtpPacket::ParseBuffer) and pion stop
    there and keep the packet with the elements before it; so must every
    reader of header extensions here (full parse, hot-path look-up, audio
    level tap). aiortc 1.16 is the oracle for the well-formed vectors only: it
    reads id 0 with a length as an element (and raises when that runs past the
    block) and does not stop at id 15, so for those the RFC's rules are the oracle.
    """
    from aiortc.rtp import unpack_header_extensions

    from mediapod.rtc.speaker import AudioLevelTap
    from mediapod.rtp.packet import RtpHeader, RtpPacket, get_header_extension

    payload = b"opus-frame"

    # The well-formed figure: we and aiortc find the same elements.
    figure = _rtp_with_extension_block(0xBEDE, _RFC8285_FIGURE_BLOCK, payload)
    assert dict(unpack_header_extensions(0xBEDE, _RFC8285_FIGURE_BLOCK)) == _RFC8285_FIGURE_ELEMENTS
    assert RtpPacket.parse(figure).extensions == _RFC8285_FIGURE_ELEMENTS
    two_byte_block = bytes.fromhex("000101aa" "0f01bb00")  # padding, id 1, id 15 (ordinary here), padding
    assert dict(unpack_header_extensions(0x1000, two_byte_block)) == {1: b"\xaa", 15: b"\xbb"}
    assert RtpPacket.parse(_rtp_with_extension_block(0x1000, two_byte_block, payload)).extensions == {
        1: b"\xaa", 15: b"\xbb",
    }

    # id 1 = audio level (-20 dBov), then 0x05 (id 0, L=5), then what would be
    # id 2 = audio level -30 dBov and id 3: everything from 0x05 on is ignored.
    stopped_by_id0 = bytes.fromhex("1094" "05" "209e" "30cc" "00")
    # the same elements with id 15 (L=0) in place of 0x05
    stopped_by_id15 = bytes.fromhex("1094" "f0" "209e" "30cc" "00")
    for block in (stopped_by_id0, stopped_by_id15):
        buf = _rtp_with_extension_block(0xBEDE, block, payload)
        packet = RtpPacket.parse(buf)
        assert packet.extensions == {1: b"\x94"}, block.hex()
        assert packet.payload == payload
        header = RtpHeader.parse(buf)
        assert buf[header.header_size : header.payload_end] == payload
        assert [get_header_extension(buf, i) for i in (1, 2, 3)] == [b"\x94", None, None]

        before, after = AudioLevelTap(extension_id=1), AudioLevelTap(extension_id=2)
        before.observe(buf)
        after.observe(buf)
        assert (before.drain().loudest, after.drain().packets) == (20, 0)

    # id 0 whose length would run past the block, and id 15 likewise: a stop,
    # never a malformed packet.
    for block in (bytes.fromhex("10aa0f00"), bytes.fromhex("10aaff00")):
        buf = _rtp_with_extension_block(0xBEDE, block, payload)
        assert RtpPacket.parse(buf).extensions == {1: b"\xaa"}
        assert get_header_extension(buf, 1) == b"\xaa"
