"""TrackReceiver and the NackScheduler: buffering, duplicate drops, loss handling and fan-out."""

from __future__ import annotations

import asyncio

import pytest

from mediapod.rtp.packet import RtpHeader, RtpPacket
from mediapod.rtp.rtcp import SenderReport
from mediapod.sfu import nack
from mediapod.sfu.nack import MAX_ATTEMPTS, REORDER_GRACE, RETRY_INTERVAL, NackScheduler
from mediapod.sfu.receiver import ReceptionStats, TrackReceiver

VP8_DELTA = bytes([0x10, 0x01]) + b"delta"


class Recorder:
    """A DownTrack stand-in that records what the receiver hands it."""

    def __init__(self) -> None:
        self.sequence_numbers: list[int] = []
        self.muted = 0

    def write(self, packet: bytes, header: RtpHeader, layer: int) -> None:
        self.sequence_numbers.append(header.sequence_number)

    def mute(self) -> None:
        self.muted += 1

    def resume_on_keyframe(self) -> None:
        pass

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


def receive(receiver: TrackReceiver, seq: int, arrival: float = 0.0) -> None:
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq * 3000, ssrc=0x1234, payload=VP8_DELTA).serialize()
    receiver.on_rtp(packet, RtpHeader.parse(packet), arrival)


def test_packets_are_buffered_and_fanned_out_once() -> None:
    receiver = video_receiver([])
    downtrack = Recorder()
    receiver.add_downtrack(downtrack)  # type: ignore[arg-type]
    for seq in (1, 2, 2, 3):  # 2 arrives twice (a retransmission racing the original)
        receive(receiver, seq)
    assert downtrack.sequence_numbers == [1, 2, 3]
    assert receiver.buffer.get(2) is not None


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
