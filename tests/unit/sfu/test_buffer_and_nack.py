"""PacketBuffer (retransmission cache) and NackGenerator (uplink loss recovery)."""

from mediapod.sfu.buffer import PacketBuffer
from mediapod.sfu.nack import MAX_ATTEMPTS, MAX_GAP, REORDER_GRACE, RETRY_INTERVAL, NackGenerator


def test_buffer_returns_a_stored_packet_by_sequence_number() -> None:
    buffer = PacketBuffer(4)
    buffer.put(10, b"ten")
    assert buffer.get(10) == b"ten"
    assert 10 in buffer
    assert buffer.get(11) is None


def test_buffer_forgets_packets_overwritten_by_newer_ones() -> None:
    buffer = PacketBuffer(4)
    for seq in range(10, 16):
        buffer.put(seq, bytes([seq]))
    assert buffer.get(10) is None and buffer.get(11) is None
    assert buffer.get(15) == bytes([15])


def test_buffer_keeps_its_full_capacity_across_the_wrap() -> None:
    buffer = PacketBuffer(8)
    for i in range(8):
        buffer.put((65532 + i) & 0xFFFF, bytes([i]))
    assert [buffer.get((65532 + i) & 0xFFFF) for i in range(8)] == [bytes([i]) for i in range(8)]


def test_gap_is_nacked_after_the_reorder_grace() -> None:
    nacks = NackGenerator()
    nacks.on_packet(100, now=0.0)
    assert nacks.on_packet(103, now=0.0) is True
    assert nacks.due(now=0.0) == []
    assert nacks.due(now=REORDER_GRACE) == [101, 102]


def test_reordered_packet_arriving_within_the_grace_is_not_nacked() -> None:
    nacks = NackGenerator()
    nacks.on_packet(100, now=0.0)
    nacks.on_packet(102, now=0.0)
    nacks.on_packet(101, now=0.001)
    assert nacks.due(now=1.0) == []
    assert nacks.next_due() is None


def test_missing_packet_is_renacked_every_rtt_then_counted_lost() -> None:
    nacks = NackGenerator()
    nacks.on_packet(1, now=0.0)
    nacks.on_packet(3, now=0.0)
    now = REORDER_GRACE
    attempts = 0
    while nacks.next_due() is not None:
        if nacks.due(now) == [2]:
            attempts += 1
        now += RETRY_INTERVAL
    assert attempts == MAX_ATTEMPTS
    assert nacks.lost == 1


def test_gap_across_the_wrap_is_tracked() -> None:
    nacks = NackGenerator()
    nacks.on_packet(65534, now=0.0)
    nacks.on_packet(1, now=0.0)
    assert set(nacks.due(now=1.0)) == {65535, 0}


def test_huge_jump_is_a_restart_not_a_loss_burst() -> None:
    nacks = NackGenerator()
    nacks.on_packet(10, now=0.0)
    assert nacks.on_packet(10 + MAX_GAP + 5, now=0.0) is False
    assert nacks.next_due() is None
