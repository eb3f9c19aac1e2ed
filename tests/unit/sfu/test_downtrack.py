"""DownTrack: what a subscriber receives: our header, our extensions, one continuous stream, NACK answers, blank frames."""

from __future__ import annotations

import time
from itertools import pairwise

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap
from aiortc.rtp import RtpPacket as AiortcRtpPacket

from mediapod.metrics import MediaCounters
from mediapod.rtp.packet import RtpHeader, RtpPacket, extend_sequence_number
from mediapod.sfu.blank import blank_frames_for
from mediapod.sfu.buffer import PacketBuffer
from mediapod.sfu.downtrack import TWCC_SEQUENCE_OFFSET, DownTrack
from mediapod.sfu.extpacket import describe_vp8
from mediapod.sfu.forwarder import Forwarder
from mediapod.sfu.receiver import TrackReceiver
from mediapod.sfu.sequencer import AUDIO_SIZE, DEFAULT_SIZE

# VP8 payload descriptor (S=1, PID=0) + a key frame's first byte (P bit 0) / a delta frame's (P bit 1).
VP8_KEY = bytes([0x10, 0x00]) + b"keyframe-bytes"
VP8_DELTA = bytes([0x10, 0x01]) + b"delta-bytes"
TWCC_ID = 5


def source_packet(
    seq: int,
    ts: int,
    payload: bytes,
    marker: bool = True,
    extensions: dict[int, bytes] | None = None,
    csrcs: list[int] | None = None,
) -> bytes:
    return RtpPacket(
        payload_type=100,
        sequence_number=seq,
        timestamp=ts,
        ssrc=0xAAAA,
        marker=marker,
        csrcs=csrcs or [],
        extension_profile=0xBEDE if extensions else None,
        extensions=extensions or {},
        payload=payload,
    ).serialize()


class Wire:
    """Where the DownTrack sends: the bytes, and the packets parsed by aiortc (knowing our TWCC extension id)."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self._extensions = HeaderExtensionsMap()
        self._extensions.configure(
            RTCRtpParameters(
                headerExtensions=[
                    RTCRtpHeaderExtensionParameters(
                        id=TWCC_ID, uri="http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
                    )
                ]
            )
        )

    def send(self, data: bytes) -> None:
        self.raw.append(data)

    @property
    def packets(self) -> list[AiortcRtpPacket]:
        return [AiortcRtpPacket.parse(data, self._extensions) for data in self.raw]


class Source:
    """The publisher side of a DownTrack: one buffer per layer, and ExtPackets as the receiver makes them."""

    def __init__(self, layers: int = 1) -> None:
        self.buffers = tuple(PacketBuffer(64) for _ in range(layers))
        self._highest: list[int | None] = [None] * layers

    def send(self, downtrack: DownTrack, packet: bytes, layer: int = 0) -> None:
        header = RtpHeader.parse(packet)
        self.buffers[layer].put(header.sequence_number, packet)
        highest = self._highest[layer]
        extended = header.sequence_number if highest is None else extend_sequence_number(highest, header.sequence_number)
        self._highest[layer] = extended if highest is None else max(highest, extended)
        downtrack.write(describe_vp8(packet, header, time.monotonic(), layer, extended))


def video_downtrack(
    source: Source,
    wire: Wire,
    keyframe_requests: list[int] | None = None,
    counters: MediaCounters | None = None,
    twcc: bool = False,
) -> DownTrack:
    asks = keyframe_requests if keyframe_requests is not None else []
    downtrack = DownTrack(
        kind="video",
        payload_type=96,
        clock_rate=90_000,
        send=wire.send,
        buffers=source.buffers,
        counters=counters or MediaCounters(),
        forwarder=Forwarder(len(source.buffers), lambda layer: asks.append(layer) is None),
        cname="test",
        rtx_payload_type=97,
        blank=blank_frames_for("video/VP8"),
        vp8=True,
        twcc_extension_id=TWCC_ID if twcc else None,
    )
    downtrack.bind()
    return downtrack


def steps(numbers: list[int], modulo: int = 0x10000) -> list[int]:
    return [(b - a) % modulo for a, b in pairwise(numbers)]


def test_video_waits_for_a_keyframe_and_asks_for_one() -> None:
    source, wire, asks = Source(), Wire(), []
    downtrack = video_downtrack(source, wire, asks)
    assert asks == [0], "binding a video DownTrack requests a keyframe"
    source.send(downtrack, source_packet(1, 3000, VP8_DELTA))
    assert wire.raw == []
    source.send(downtrack, source_packet(2, 6000, VP8_KEY))
    source.send(downtrack, source_packet(3, 9000, VP8_DELTA))
    assert len(wire.raw) == 2


def test_nothing_is_sent_before_bind_or_after_close() -> None:
    source, wire = Source(), Wire()
    downtrack = DownTrack(
        kind="video", payload_type=96, clock_rate=90_000, send=wire.send, buffers=source.buffers,
        counters=MediaCounters(), forwarder=Forwarder(1, lambda layer: True), cname="test",
    )
    source.send(downtrack, source_packet(1, 0, VP8_KEY))
    downtrack.bind()
    downtrack.close()
    source.send(downtrack, source_packet(2, 0, VP8_KEY))
    assert wire.raw == []


def test_header_is_rewritten_and_publisher_extensions_stripped() -> None:
    source, wire = Source(), Wire()
    downtrack = video_downtrack(source, wire)
    source.send(downtrack, source_packet(500, 1_000_000, VP8_KEY, extensions={1: b"0", 3: b"\x01\x02\x03"}))
    [out] = wire.packets
    assert out.ssrc == downtrack.ssrc != 0xAAAA
    assert out.payload_type == 96
    assert not wire.raw[0][0] & 0x10, "no extension block: none was negotiated with this subscriber"
    assert out.payload == VP8_KEY
    assert out.marker


def test_our_twcc_extension_replaces_the_publishers_and_sits_at_the_documented_offset() -> None:
    source, wire = Source(), Wire()
    downtrack = video_downtrack(source, wire, twcc=True)
    source.send(downtrack, source_packet(500, 0, VP8_KEY, extensions={1: b"0", TWCC_ID: b"\x12\x34"}))
    source.send(downtrack, source_packet(501, 3000, VP8_DELTA, csrcs=[0x1111, 0x2222]))
    first, second = wire.packets
    assert first.extensions.transport_sequence_number == 0, "the value is left for the sender to fill"
    assert first.payload == VP8_KEY and second.payload == VP8_DELTA
    assert second.csrc == [0x1111, 0x2222], "the publisher's CSRCs are kept"
    assert second.extensions.transport_sequence_number == 0
    for raw, csrc_count in zip(wire.raw, (0, 2)):
        at = TWCC_SEQUENCE_OFFSET + 4 * csrc_count
        assert raw[at - 5 : at - 1] == b"\xbe\xde\x00\x01" and raw[at - 1] == (TWCC_ID << 4) | 1
        stamped = bytearray(raw)
        stamped[at : at + 2] = b"\xab\xcd"  # what the pacer does when the packet leaves
        assert AiortcRtpPacket.parse(bytes(stamped), wire._extensions).extensions.transport_sequence_number == 0xABCD


def test_retransmissions_and_blank_frames_carry_the_twcc_extension_too() -> None:
    source, wire = Source(), Wire()
    downtrack = video_downtrack(source, wire, twcc=True)
    source.send(downtrack, source_packet(10, 0, VP8_KEY))
    downtrack.retransmit([wire.packets[0].sequence_number], now=100.0)
    downtrack.mute()
    rtx, *blanks = wire.packets[1:]
    assert rtx.ssrc == downtrack.rtx_ssrc and rtx.payload[2:] == VP8_KEY
    assert len(blanks) == 3
    for packet in (rtx, *blanks):
        assert packet.extensions.transport_sequence_number == 0
    for raw in wire.raw:
        assert raw[TWCC_SEQUENCE_OFFSET - 1] == (TWCC_ID << 4) | 1


def test_sequence_numbers_and_timestamps_stay_continuous_across_mute_and_unmute() -> None:
    source, wire = Source(), Wire()
    downtrack = video_downtrack(source, wire)
    for i in range(5):
        source.send(downtrack, source_packet(1000 + i, 50_000 + 3000 * i, VP8_KEY if i == 0 else VP8_DELTA))
    downtrack.mute()  # three blank frames end the stream
    time.sleep(0.02)
    downtrack.unmute()
    # The source comes back with its numbers moved on.
    source.send(downtrack, source_packet(40_000, 7_000_000, VP8_DELTA))  # not a keyframe: held back
    for i in range(3):
        source.send(downtrack, source_packet(40_001 + i, 7_003_000 + 3000 * i, VP8_KEY if i == 0 else VP8_DELTA))
    packets = wire.packets
    assert tuple(p.payload for p in packets[5:8]) == blank_frames_for("video/VP8").payloads  # type: ignore[union-attr]
    assert steps([p.sequence_number for p in packets]) == [1] * 10
    stamps = steps([p.timestamp for p in packets], 1 << 32)
    assert all(0 < step < 1 << 31 for step in stamps), "timestamps are monotonic"
    assert stamps[7] >= 0.02 * 90_000, "the clock advanced by the time the stream was paused"


def test_pause_and_resume_keep_numbers_contiguous_and_the_clock_monotonic() -> None:
    source, wire = Source(), Wire()
    downtrack = video_downtrack(source, wire)
    for i in range(3):
        source.send(downtrack, source_packet(100 + i, 3000 * i, VP8_KEY if i == 0 else VP8_DELTA))
    downtrack.forwarder.pause()
    for i in range(3, 6):  # the publisher goes on; nothing reaches this subscriber
        source.send(downtrack, source_packet(100 + i, 3000 * i, VP8_KEY if i == 3 else VP8_DELTA))
    assert len(wire.raw) == 3
    time.sleep(0.01)
    downtrack.forwarder.allocate(0)
    source.send(downtrack, source_packet(106, 18_000, VP8_DELTA))  # resumes only on a keyframe
    source.send(downtrack, source_packet(107, 21_000, VP8_KEY))
    source.send(downtrack, source_packet(108, 24_000, VP8_DELTA))
    packets = wire.packets
    assert [p.payload for p in packets[3:]] == [VP8_KEY, VP8_DELTA]
    assert steps([p.sequence_number for p in packets]) == [1] * 4, "no hole for what was not sent while paused"
    assert all(0 < step < 1 << 31 for step in steps([p.timestamp for p in packets], 1 << 32))


def test_nack_is_answered_over_rtx_with_the_original_sequence_number() -> None:
    source, wire = Source(), Wire()
    downtrack = video_downtrack(source, wire)
    for i in range(4):
        source.send(downtrack, source_packet(10 + i, 3000 * i, VP8_KEY if i == 0 else VP8_DELTA))
    lost = wire.packets[2]
    downtrack.retransmit([lost.sequence_number], now=100.0)
    rtx = wire.packets[-1]
    assert rtx.ssrc == downtrack.rtx_ssrc and rtx.payload_type == 97
    assert int.from_bytes(rtx.payload[:2], "big") == lost.sequence_number
    assert rtx.payload[2:] == lost.payload
    assert rtx.timestamp == lost.timestamp


def test_duplicate_nack_within_the_window_is_answered_once() -> None:
    source, wire = Source(), Wire()
    downtrack = video_downtrack(source, wire)
    source.send(downtrack, source_packet(10, 0, VP8_KEY))
    seq = wire.packets[0].sequence_number
    downtrack.retransmit([seq, seq], now=100.0)
    downtrack.retransmit([seq], now=100.05)
    assert len(wire.raw) == 2


def vp8_with_tid(tid: int, key: bool = False) -> bytes:
    """VP8 descriptor with X and T bits: TID in the TID/Y/KEYIDX byte."""
    return bytes([0x90, 0x20, tid << 6, 0x00 if key else 0x01]) + b"frame"


def simulcast_vp8(picture_id: int, key: bool = False) -> bytes:
    """X, S; I with a 15-bit picture id, then the VP8 payload header (P bit 0 on a key frame)."""
    return bytes([0x90, 0x80, 0x80 | picture_id >> 8, picture_id & 0xFF, 0x00 if key else 0x01]) + b"frame"


def test_simulcast_switches_layer_only_on_a_keyframe_of_the_target() -> None:
    source, wire, asks = Source(layers=2), Wire(), []
    downtrack = video_downtrack(source, wire, asks)
    downtrack.forwarder.set_wish(0)
    source.send(downtrack, source_packet(100, 1000, VP8_KEY), layer=0)
    source.send(downtrack, source_packet(9000, 555_000, VP8_KEY), layer=1)  # not the target: ignored
    source.send(downtrack, source_packet(101, 4000, VP8_DELTA), layer=0)
    assert len(wire.raw) == 2 and downtrack.forwarder.current_spatial == 0

    downtrack.forwarder.set_wish(1)
    assert asks[-1] == 1, "a keyframe of the new target layer is requested"
    source.send(downtrack, source_packet(9001, 558_000, VP8_DELTA), layer=1)  # delta: no switch yet
    source.send(downtrack, source_packet(102, 7000, VP8_DELTA), layer=0)  # still forwarding low
    assert downtrack.forwarder.current_spatial == 0 and len(wire.raw) == 3
    source.send(downtrack, source_packet(9002, 561_000, VP8_KEY), layer=1)
    source.send(downtrack, source_packet(103, 10_000, VP8_DELTA), layer=0)  # old layer now dropped
    source.send(downtrack, source_packet(9003, 564_000, VP8_DELTA), layer=1)
    assert downtrack.forwarder.current_spatial == 1
    packets = wire.packets
    assert [p.payload for p in packets[3:]] == [VP8_KEY, VP8_DELTA]
    assert steps([p.sequence_number for p in packets]) == [1] * 4
    assert all(0 < step < 1 << 31 for step in steps([p.timestamp for p in packets], 1 << 32))


def test_switching_down_and_up_keeps_numbers_and_picture_ids_contiguous() -> None:
    source, wire = Source(layers=2), Wire()
    downtrack = video_downtrack(source, wire)
    forwarder = downtrack.forwarder
    plan = [(1, 9000, 700), (0, 100, 40), (1, 9100, 800)]  # (layer, first seq, first picture id) per stretch
    for stretch, (layer, seq, pid) in enumerate(plan):
        if stretch:
            forwarder.allocate(layer)
        for i in range(3):
            source.send(downtrack, source_packet(seq + i, 3000 * (seq + i), simulcast_vp8(pid + i, key=i == 0)), layer)
    packets = wire.packets
    assert len(packets) == 9
    assert steps([p.sequence_number for p in packets]) == [1] * 8
    pids = [((p.payload[2] & 0x7F) << 8) | p.payload[3] for p in packets]
    assert steps(pids, 0x8000) == [1] * 8, "the decoder sees one picture sequence"


def test_nack_after_a_switch_is_answered_from_the_right_layer() -> None:
    source, wire = Source(layers=2), Wire()
    downtrack = video_downtrack(source, wire)
    downtrack.forwarder.set_wish(0)
    source.send(downtrack, source_packet(100, 1000, VP8_KEY), layer=0)
    downtrack.forwarder.set_wish(1)
    source.send(downtrack, source_packet(9002, 561_000, VP8_KEY), layer=1)
    low_seq, high_seq = wire.packets[0].sequence_number, wire.packets[1].sequence_number
    downtrack.retransmit([low_seq, high_seq], now=50.0)
    originals = {int.from_bytes(p.payload[:2], "big"): p.payload[2:] for p in wire.packets[2:]}
    assert originals == {low_seq: VP8_KEY, high_seq: VP8_KEY}


def test_temporal_layers_above_the_limit_are_dropped_without_gaps() -> None:
    source, wire = Source(), Wire()
    downtrack = video_downtrack(source, wire)
    downtrack.forwarder.set_wish(0, max_temporal=0)
    for i, tid in enumerate([0, 2, 1, 2, 0, 2]):
        source.send(downtrack, source_packet(200 + i, 3000 * i, vp8_with_tid(tid, key=i == 0)))
    packets = wire.packets
    assert len(packets) == 2
    assert steps([p.sequence_number for p in packets]) == [1]


def test_sender_report_maps_now_to_the_rtp_clock_of_the_last_packet_sent() -> None:
    source, wire = Source(), Wire()
    downtrack = video_downtrack(source, wire)
    assert downtrack.sender_report() is None, "nothing sent, nothing to report"
    source.send(downtrack, source_packet(10, 0, VP8_KEY))
    time.sleep(0.05)
    report = downtrack.sender_report()
    assert report is not None
    sent = wire.packets[0]
    assert report.ssrc == downtrack.ssrc
    assert (report.packet_count, report.octet_count) == (1, len(VP8_KEY))
    advanced = (report.rtp_timestamp - sent.timestamp) & 0xFFFFFFFF
    assert 0.05 * 90_000 <= advanced < 1.0 * 90_000


def test_nack_for_a_packet_no_longer_buffered_is_counted_as_a_miss() -> None:
    source, wire, counters = Source(), Wire(), MediaCounters()
    source.buffers = (PacketBuffer(4),)
    downtrack = video_downtrack(source, wire, counters=counters)
    for i in range(8):
        source.send(downtrack, source_packet(10 + i, 3000 * i, VP8_KEY if i == 0 else VP8_DELTA))
    downtrack.retransmit([wire.packets[0].sequence_number], now=100.0)
    assert counters.nack_misses == 1 and counters.retransmitted_packets == 0
    assert len(wire.raw) == 8



def test_an_audio_downtrack_remembers_fewer_packets_for_nacks_than_a_video_one() -> None:
    """Audio's 50 packets a second need a shorter ring for the same time: less memory per subscribed audio track."""
    source, wire = Source(), Wire()
    audio = DownTrack(
        kind="audio", payload_type=111, clock_rate=48_000, send=wire.send, buffers=source.buffers,
        counters=MediaCounters(), forwarder=Forwarder(1, None), cname="test",
    )
    assert audio.sequencer.size == AUDIO_SIZE < video_downtrack(source, wire).sequencer.size == DEFAULT_SIZE


def test_padding_only_packets_are_not_forwarded_and_leave_no_gap() -> None:
    """libwebrtc pads its probes on the audio SSRC too; an empty Opus payload ends aiortc's decoder, so none is sent.

    Through a real TrackReceiver, as in the pod: media, padding, media,
    padding, media arrive; the subscriber gets the three media packets with
    consecutive numbers, each with its payload, as aiortc parses them.
    """
    receiver = TrackReceiver("TR_audio", "audio", "audio/opus", 48_000, 0xAAAA, lambda ssrc: None)
    wire = Wire()
    audio = DownTrack(
        kind="audio", payload_type=111, clock_rate=48_000, send=wire.send, buffers=(receiver.buffer,),
        counters=MediaCounters(), forwarder=Forwarder(1, None), cname="test",
    )
    audio.bind()
    receiver.add_downtrack(audio)
    for seq in range(5):
        payload = b"" if seq % 2 else b"opus-frame-%d" % seq
        packet = RtpPacket(
            payload_type=111, sequence_number=seq, timestamp=960 * seq, ssrc=0xAAAA, payload=payload,
            padding_size=0 if payload else 40,
        ).serialize()
        receiver.on_rtp(packet, RtpHeader.parse(packet), time.monotonic())
    packets = wire.packets
    assert [p.payload for p in packets] == [b"opus-frame-0", b"opus-frame-2", b"opus-frame-4"]
    assert steps([p.sequence_number for p in packets]) == [1, 1]
