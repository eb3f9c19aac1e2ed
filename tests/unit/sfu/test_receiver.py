"""TrackReceiver and the NackScheduler: buffering, duplicate drops, loss handling and fan-out."""

from __future__ import annotations

import asyncio

import pytest

from mediapod.rtp.packet import RtpHeader, RtpPacket
from mediapod.rtp.rtcp import SenderReport
from mediapod.sfu import nack
from mediapod.sfu.extpacket import ExtPacket
from mediapod.sfu.nack import MAX_ATTEMPTS, REORDER_GRACE, RETRY_INTERVAL, NackScheduler
from mediapod.sfu.receiver import ReceptionStats, TrackReceiver

VP8_DELTA = bytes([0x10, 0x01]) + b"delta"


class Recorder:
    """A DownTrack stand-in that records what the receiver hands it."""

    def __init__(self) -> None:
        self.packets: list[ExtPacket] = []
        self.padding: list[ExtPacket] = []
        self.muted = 0
        self.unmuted = 0

    @property
    def sequence_numbers(self) -> list[int]:
        return [ext.header.sequence_number for ext in self.packets]

    def write(self, ext: ExtPacket) -> None:
        self.packets.append(ext)

    def skip_padding(self, ext: ExtPacket) -> None:
        self.padding.append(ext)

    def mute(self) -> None:
        self.muted += 1

    def unmute(self) -> None:
        self.unmuted += 1

    def close(self) -> None:
        pass


def video_receiver(keyframe_requests: list[int], with_nack: bool = True) -> TrackReceiver:
    return TrackReceiver(
        track_sid="TR_test",
        kind="video",
        mime_type="video/VP8",
        clock_rate=90_000,
        ssrc=0x1234,
        send_pli=keyframe_requests.append,
        on_gap=(lambda receiver: None) if with_nack else None,
    )


def receive(receiver: TrackReceiver, seq: int, arrival: float = 0.0, payload: bytes = VP8_DELTA) -> None:
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq * 3000, ssrc=0x1234, payload=payload).serialize()
    receiver.on_rtp(packet, RtpHeader.parse(packet), arrival)


def test_packets_are_buffered_and_fanned_out_once() -> None:
    receiver = video_receiver([])
    downtrack = Recorder()
    receiver.add_downtrack(downtrack)  # type: ignore[arg-type]
    for seq in (1, 2, 2, 3):  # 2 arrives twice (a retransmission racing the original)
        receive(receiver, seq)
    assert downtrack.sequence_numbers == [1, 2, 3]
    assert receiver.buffer.get(2) is not None


def test_each_packet_is_described_once_and_every_downtrack_gets_the_same_facts() -> None:
    receiver = TrackReceiver("TR_test", "video", "video/VP8", 90_000, 0x1234, lambda ssrc: None, layer=2)
    first, second = Recorder(), Recorder()
    receiver.add_downtrack(first)  # type: ignore[arg-type]
    receiver.add_downtrack(second)  # type: ignore[arg-type]
    receive(receiver, 7, arrival=12.5)
    [ext] = first.packets
    assert second.packets == [ext], "one ExtPacket per packet, shared"
    assert (ext.layer, ext.arrival, ext.extended_sequence_number) == (2, 12.5, 7)
    assert ext.packet[ext.header.header_size :] == VP8_DELTA


# RFC 7741 4.2 descriptors, written out byte by byte:
# X|R|N|S|R|PID, then I|L|T|K|RSV, then the fields I, L and T/K announce, then the VP8 payload header
# whose lowest bit P is 0 on a key frame.
SIMULCAST_KEY = bytes([0x90, 0xE0, 0x81, 0x23, 0x07, 0x00, 0x9C]) + b"key"  # 15-bit id 0x0123, TL0 7, TID 0
DELTA_TID2 = bytes([0x90, 0xE0, 0x05, 0x08, 0x80, 0x01]) + b"delta"  # 7-bit id 5, TL0 8, TID 2
DELTA_TID1_NO_PID = bytes([0x90, 0x60, 0x09, 0x40, 0x01]) + b"delta"  # no picture id, TL0 9, TID 1


def described(payload: bytes, mime_type: str = "video/VP8", seq: int = 1) -> ExtPacket:
    receiver = TrackReceiver("TR_test", "video", mime_type, 90_000, 0x1234, lambda ssrc: None)
    recorder = Recorder()
    receiver.add_downtrack(recorder)  # type: ignore[arg-type]
    receive(receiver, seq, payload=payload)
    [ext] = recorder.packets
    return ext


def test_vp8_keyframe_temporal_layer_and_field_offsets_are_found() -> None:
    key = described(SIMULCAST_KEY)
    assert (key.keyframe, key.temporal) == (True, 0)
    assert (key.picture_id_at, key.picture_id_len, key.tl0picidx_at) == (2, 2, 4)
    delta = described(DELTA_TID2)
    assert (delta.keyframe, delta.temporal) == (False, 2)
    assert (delta.picture_id_at, delta.picture_id_len, delta.tl0picidx_at) == (2, 1, 3)
    bare = described(DELTA_TID1_NO_PID)
    assert (bare.temporal, bare.picture_id_at, bare.picture_id_len, bare.tl0picidx_at) == (1, -1, 0, 2)
    plain = described(VP8_DELTA)
    assert (plain.keyframe, plain.temporal, plain.picture_id_at, plain.tl0picidx_at) == (False, 0, -1, -1)


def test_malformed_vp8_gets_safe_facts_and_is_still_handed_on() -> None:
    for payload in (b"\x90", b"\x90\xe0\x81", SIMULCAST_KEY[:6]):  # X byte missing, cut picture id, no VP8 data
        ext = described(payload)
        assert (ext.keyframe, ext.temporal, ext.picture_id_at, ext.tl0picidx_at) == (False, 0, -1, -1), payload


def test_a_packet_without_payload_is_padding_every_downtrack_skips() -> None:
    receiver = video_receiver([])
    first, second = Recorder(), Recorder()
    receiver.add_downtrack(first)  # type: ignore[arg-type]
    receiver.add_downtrack(second)  # type: ignore[arg-type]
    for seq, payload in enumerate((VP8_DELTA, b"", VP8_DELTA)):
        receive(receiver, seq, payload=payload)
    for recorder in (first, second):
        assert recorder.sequence_numbers == [0, 2]
        assert [ext.header.sequence_number for ext in recorder.padding] == [1]
    assert receiver.buffer.get(1) is not None, "still buffered and counted like any packet"


def test_h264_keyframes_are_found_by_its_detector_and_audio_has_no_facts() -> None:
    idr = bytes([0x65]) + b"idr-slice"  # NAL type 5 (RFC 6184 5.2, H.264 table 7-1)
    assert described(idr, "video/H264").keyframe
    assert not described(bytes([0x41]) + b"p-slice", "video/H264").keyframe
    opus = described(b"\xf8\xff\xfe", "audio/opus")
    assert (opus.keyframe, opus.temporal, opus.picture_id_at) == (False, 0, -1)


def test_extended_sequence_numbers_count_wraps_and_place_late_packets() -> None:
    receiver = video_receiver([])
    recorder = Recorder()
    receiver.add_downtrack(recorder)  # type: ignore[arg-type]
    for seq in (65534, 0, 65535, 1):  # 65535 arrives late, after the wrap
        receive(receiver, seq)
    assert [ext.extended_sequence_number for ext in recorder.packets] == [65534, 65536, 65535, 65537]


def test_unrecoverable_video_loss_requests_a_keyframe() -> None:
    requests: list[int] = []
    receiver = video_receiver(requests)
    receive(receiver, 10)
    receive(receiver, 12)
    now, nacked, given_up = REORDER_GRACE, [], 0
    for _ in range(MAX_ATTEMPTS + 1):
        due, lost = receiver.due_nacks(now)
        nacked += due
        given_up += lost
        now += RETRY_INTERVAL
    assert nacked == [11] * MAX_ATTEMPTS
    assert given_up == 1
    assert requests == [0x1234], "one PLI for the publisher's SSRC"


def test_without_nack_negotiated_no_nacks_are_due() -> None:
    receiver = video_receiver([], with_nack=False)
    receive(receiver, 1)
    receive(receiver, 5)
    assert receiver.due_nacks(10.0) == ([], 0)


def test_muted_receiver_blanks_its_downtracks_and_forwards_nothing() -> None:
    receiver = video_receiver([])
    downtrack = Recorder()
    receiver.add_downtrack(downtrack)  # type: ignore[arg-type]
    receiver.set_muted(True)
    receive(receiver, 1)
    assert downtrack.muted == 1 and downtrack.sequence_numbers == []
    receiver.set_muted(False)
    assert downtrack.unmuted == 1


def test_reception_report_counts_loss_and_fraction_lost_per_interval() -> None:
    stats = ReceptionStats(clock_rate=90_000)
    for seq in [*range(100, 110), *range(111, 120)]:  # 110 never arrives
        stats.update(seq, seq * 3000, arrival=seq * 3000 / 90_000)
    report = stats.report(ssrc=7, now=1.0)
    assert report.ssrc == 7
    assert report.packets_lost == 1
    assert report.highest_sequence == 119
    assert report.fraction_lost == (1 << 8) // 20
    assert report.jitter == 0, "packets arrived exactly on their timestamps"
    for seq in range(120, 130):
        stats.update(seq, seq * 3000, arrival=seq * 3000 / 90_000)
    assert stats.report(ssrc=7, now=2.0).fraction_lost == 0, "no loss in the second interval"


def test_reception_report_extends_the_highest_sequence_number_across_the_wrap() -> None:
    stats = ReceptionStats(clock_rate=48_000)
    for seq in (65534, 65535, 0, 1):
        stats.update(seq, 0, arrival=0.0)
    report = stats.report(ssrc=1, now=0.0)
    assert report.highest_sequence == 0x10001
    assert report.packets_lost == 0


def test_reception_report_echoes_the_last_sender_report_and_its_delay() -> None:
    stats = ReceptionStats(clock_rate=90_000)
    stats.update(1, 0, arrival=0.0)
    stats.on_sender_report(
        SenderReport(ssrc=1, ntp_timestamp=0x1234_5678_9ABC_DEF0, rtp_timestamp=0, packet_count=1, octet_count=1, reports=[]),
        now=10.0,
    )
    report = stats.report(ssrc=1, now=10.5)
    assert report.lsr == 0x5678_9ABC
    assert report.dlsr == 0x8000  # half a second in 1/65536 s units


def test_jitter_grows_when_arrivals_stray_from_their_timestamps() -> None:
    stats = ReceptionStats(clock_rate=90_000)
    for i in range(50):
        stats.update(i, i * 3000, arrival=i * 3000 / 90_000 + (0.01 if i % 2 else 0.0))
    assert stats.report(ssrc=1, now=0.0).jitter > 500  # ~10 ms swings at 90 kHz


# --- NackScheduler: one timer per publisher connection ----------------------


async def test_scheduler_nacks_a_gap_retries_and_gives_up_with_one_keyframe_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(nack, "RETRY_INTERVAL", 0.02)
    sent: list[tuple[int, list[int]]] = []
    lost: list[int] = []
    plis: list[int] = []
    scheduler = NackScheduler(lambda ssrc, numbers: sent.append((ssrc, numbers)), lost.append)
    receiver = TrackReceiver(
        track_sid="TR_test", kind="video", mime_type="video/VP8", clock_rate=90_000, ssrc=0x1234,
        send_pli=plis.append, on_gap=scheduler.wake,
    )
    receive(receiver, 10)
    receive(receiver, 13)  # 11 and 12 are missing, and stay missing

    deadline = asyncio.get_running_loop().time() + 5
    while not lost and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)

    assert sent == [(0x1234, [11, 12])] * MAX_ATTEMPTS
    assert lost == [2]
    assert plis == [0x1234]
    assert receiver.next_nack_due() is None
    scheduler.close()


async def test_a_late_packet_is_not_nacked_again() -> None:
    sent: list[tuple[int, list[int]]] = []
    scheduler = NackScheduler(lambda ssrc, numbers: sent.append((ssrc, numbers)), lambda n: None)
    receiver = TrackReceiver(
        track_sid="TR_test", kind="video", mime_type="video/VP8", clock_rate=90_000, ssrc=0x1234,
        send_pli=lambda ssrc: None, on_gap=scheduler.wake,
    )
    receive(receiver, 10)
    receive(receiver, 12)
    receive(receiver, 11)  # reordered, within the grace
    await asyncio.sleep(REORDER_GRACE * 5)
    assert sent == []
    scheduler.close()


def test_bitrate_is_measured_over_windows_and_is_zero_once_the_stream_stops() -> None:
    from mediapod.rtp.packet import RtpHeader as Header
    from mediapod.sfu.receiver import STOPPED_AFTER, TrackReceiver as Receiver

    receiver = Receiver("TR_rate", "video", "video/VP8", 90000, 1, lambda ssrc: None)
    assert receiver.bitrate_bps(100.0) == 0.0

    def receive(first: int, end: int) -> None:  # packets of 1000 bytes, 100 a second: 800 kbit/s
        for n in range(first, end):
            packet = bytes([0x80, 96]) + n.to_bytes(2, "big") + bytes(8) + bytes(988)
            receiver.on_rtp(packet, Header.parse(packet), 100.0 + n / 100)

    receive(0, 26)
    assert receiver.bitrate_bps(100.25) == pytest.approx(800_000 * 26 / 25, rel=0.01)  # provisional, in the first window
    receive(26, 100)
    assert receiver.bitrate_bps(101.0) == pytest.approx(800_000, rel=0.01)
    assert receiver.bitrate_bps(100.99 + STOPPED_AFTER + 0.01) == 0.0
