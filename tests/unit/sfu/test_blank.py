"""The blank frames sent on mute decode as what they claim to be."""

import array

import av

from mediapod.rtp.codecs import h264_is_keyframe, vp8_is_keyframe
from mediapod.sfu.blank import H264_IDR_16X16, H264_PPS, H264_SPS, VP8_KEYFRAME_16X16, blank_frames_for


def decode(codec: str, data: bytes) -> list[av.VideoFrame]:
    context = av.CodecContext.create(codec, "r")
    return [frame for packet in context.parse(data) + context.parse(b"") for frame in context.decode(packet)] + list(
        context.decode(None)
    )


def test_vp8_blank_is_a_decodable_16x16_key_frame() -> None:
    [frame] = decode("vp8", VP8_KEYFRAME_16X16)
    assert (frame.width, frame.height) == (16, 16)
    assert vp8_is_keyframe(blank_frames_for("video/VP8").payloads[0])


def test_h264_blank_is_a_decodable_16x16_idr() -> None:
    start = b"\x00\x00\x00\x01"
    frames = decode("h264", start + H264_SPS + start + H264_PPS + start + H264_IDR_16X16)
    assert [(f.width, f.height) for f in frames] == [(16, 16)]
    assert h264_is_keyframe(blank_frames_for("video/H264").payloads[0])


def test_opus_blank_is_silence_that_decodes() -> None:
    context = av.CodecContext.create("opus", "r")
    context.sample_rate = 48000
    context.layout = "mono"
    blank = blank_frames_for("audio/opus")
    assert blank is not None and blank.frame_ticks == 960
    [frame] = context.decode(av.Packet(blank.payloads[0]))
    assert frame.samples == 960
    samples = array.array("f", bytes(frame.planes[0])[: 4 * frame.samples])
    assert max(abs(s) for s in samples) < 1e-3


def test_unknown_codec_has_no_blank_frames() -> None:
    assert blank_frames_for("video/AV1") is None
