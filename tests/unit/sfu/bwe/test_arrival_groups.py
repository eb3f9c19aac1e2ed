"""Packet groups by send time and the delay variation between them (draft 5.2)."""

from __future__ import annotations

import pytest

from mediapod.sfu.bwe.arrival_groups import GroupDelta, InterGroupDelay


def feed(groups: InterGroupDelay, packets: list[tuple[float, float]]) -> list[GroupDelta]:
    return [d for send, arrival in packets if (d := groups.add(send, arrival)) is not None]


def test_packets_sent_within_five_ms_form_one_group() -> None:
    # Three groups 20 ms apart, each of three packets 2 ms apart; the third group closes the second.
    packets = [(g * 0.02 + p * 0.002, 100 + g * 0.02 + p * 0.002) for g in range(3) for p in range(3)]
    packets.append((0.06, 100.06))
    deltas = feed(InterGroupDelay(), packets)
    assert len(deltas) == 2
    assert deltas[0].send_delta == pytest.approx(0.02)
    assert deltas[0].arrival_delta == pytest.approx(0.02)


def test_growing_queue_shows_as_arrival_spacing_wider_than_send_spacing() -> None:
    packets = [(i * 0.01, 50 + i * 0.012) for i in range(5)]
    deltas = feed(InterGroupDelay(), packets)
    assert [round(d.arrival_delta - d.send_delta, 6) for d in deltas] == [0.002] * 3


def test_a_burst_delivered_at_once_joins_the_group_it_queued_behind() -> None:
    # Sent 10 ms apart, but released by the network together: no delay sample from them.
    packets = [(0.0, 1.0), (0.01, 1.001), (0.02, 1.002), (0.1, 1.1), (0.2, 1.2)]
    deltas = feed(InterGroupDelay(), packets)
    assert len(deltas) == 1
    assert deltas[0].send_delta == pytest.approx(0.1 - 0.02)


def test_packet_sent_before_the_current_group_is_ignored() -> None:
    groups = InterGroupDelay()
    feed(groups, [(0.0, 1.0), (0.02, 1.02)])
    assert groups.add(0.01, 1.03) is None
    assert feed(groups, [(0.04, 1.04)])[0].send_delta == pytest.approx(0.02)


def test_receiver_clock_jump_restarts_the_comparison_instead_of_reporting_it() -> None:
    packets = [(0.0, 1.0), (0.02, 1.02), (0.04, 900.0), (0.06, 900.02), (0.08, 900.04)]
    deltas = feed(InterGroupDelay(), packets)
    assert all(abs(d.arrival_delta - d.send_delta) < 0.001 for d in deltas)
