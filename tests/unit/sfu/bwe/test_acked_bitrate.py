"""The acknowledged (received) bitrate, on the receiver's clock."""

from __future__ import annotations

import pytest

from mediapod.sfu.bwe.acked_bitrate import AckedBitrate


def test_rate_is_bytes_received_over_the_last_half_second() -> None:
    acked = AckedBitrate()
    for i in range(200):  # 1000 bytes every 10 ms = 800 kbps
        acked.on_packet(3000 + i * 0.01, 1000)
    assert acked.rate_bps == pytest.approx(800_000, rel=0.03)


def test_no_rate_until_a_whole_window_was_seen() -> None:
    acked = AckedBitrate()
    for i in range(20):
        acked.on_packet(i * 0.01, 1000)
    assert acked.rate_bps is None


def test_receiver_clock_restart_starts_a_new_window() -> None:
    acked = AckedBitrate()
    for i in range(100):
        acked.on_packet(500 + i * 0.01, 1000)
    for i in range(100):
        acked.on_packet(i * 0.01, 500)
    assert acked.rate_bps == pytest.approx(400_000, rel=0.03)
