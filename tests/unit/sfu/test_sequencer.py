"""Sequencer: mapping a subscriber's NACKed sequence numbers back to source packets."""

from mediapod.sfu.sequencer import MAX_RETRANSMITS, RETRANSMIT_WINDOW, Sequencer


def test_nacked_sequence_number_maps_to_source_packet_and_timestamp() -> None:
    sequencer = Sequencer(size=8)
    sequencer.push(out_seq=100, src_seq=5000, timestamp=90_000, layer=2)
    assert sequencer.lookup_for_retransmit(100, now=10.0) == (5000, 90_000, 2)


def test_sequencer_wraps_around_65535_without_losing_history() -> None:
    sequencer = Sequencer(size=16)
    for i in range(12):
        out = (65530 + i) & 0xFFFF  # 65530 .. 65535, 0 .. 5
        sequencer.push(out_seq=out, src_seq=1000 + i, timestamp=i * 3000, layer=0)
    # Packets on both sides of the wrap are still answerable.
    assert sequencer.lookup_for_retransmit(65533, now=1.0) == (1003, 9000, 0)
    assert sequencer.lookup_for_retransmit(65535, now=1.0) == (1005, 15000, 0)
    assert sequencer.lookup_for_retransmit(0, now=1.0) == (1006, 18000, 0)
    assert sequencer.lookup_for_retransmit(5, now=1.0) == (1011, 33000, 0)


def test_entries_older_than_the_ring_are_forgotten() -> None:
    sequencer = Sequencer(size=4)
    for out in range(10):
        sequencer.push(out_seq=out, src_seq=out, timestamp=0, layer=0)
    assert sequencer.lookup_for_retransmit(3, now=1.0) is None
    assert sequencer.lookup_for_retransmit(9, now=1.0) == (9, 0, 0)


def test_never_sent_sequence_number_is_not_answered() -> None:
    sequencer = Sequencer(size=8)
    sequencer.push(out_seq=10, src_seq=1, timestamp=0, layer=0)
    assert sequencer.lookup_for_retransmit(11, now=1.0) is None


def test_duplicate_nacks_within_one_rtt_window_are_suppressed() -> None:
    sequencer = Sequencer(size=8)
    sequencer.push(out_seq=7, src_seq=70, timestamp=0, layer=0)
    assert sequencer.lookup_for_retransmit(7, now=5.0) is not None
    assert sequencer.lookup_for_retransmit(7, now=5.0 + RETRANSMIT_WINDOW / 2) is None
    assert sequencer.lookup_for_retransmit(7, now=5.0 + RETRANSMIT_WINDOW + 0.001) is not None


def test_a_packet_is_retransmitted_at_most_three_times() -> None:
    sequencer = Sequencer(size=8)
    sequencer.push(out_seq=7, src_seq=70, timestamp=0, layer=0)
    answered = [sequencer.lookup_for_retransmit(7, now=10.0 + i) is not None for i in range(6)]
    assert answered == [True] * MAX_RETRANSMITS + [False] * (6 - MAX_RETRANSMITS)


def test_reusing_a_slot_resets_its_retransmit_budget() -> None:
    sequencer = Sequencer(size=4)
    sequencer.push(out_seq=1, src_seq=1, timestamp=0, layer=0)
    for i in range(MAX_RETRANSMITS):
        sequencer.lookup_for_retransmit(1, now=10.0 + i)
    sequencer.push(out_seq=5, src_seq=5, timestamp=0, layer=0)  # same slot, newer packet
    assert sequencer.lookup_for_retransmit(5, now=20.0) == (5, 0, 0)


def test_values_at_the_edges_of_their_fields_are_kept_exactly() -> None:
    # The ring stores each column in the smallest C type that holds it: 16-bit
    # source numbers, 32-bit timestamps, extended (signed) munged numbers.
    sequencer = Sequencer(size=8)
    sequencer.push(out_seq=65535, src_seq=65535, timestamp=0xFFFFFFFF, layer=2)
    sequencer.push(out_seq=3, src_seq=0, timestamp=0, layer=0)  # after the wrap: extended 65539
    assert sequencer.lookup_for_retransmit(65535, now=1.0) == (65535, 0xFFFFFFFF, 2)
    assert sequencer.lookup_for_retransmit(3, now=1.0) == (0, 0, 0)


def test_retransmit_bookkeeping_forgets_packets_the_ring_no_longer_holds() -> None:
    sequencer = Sequencer(size=4)
    for out in range(100):
        sequencer.push(out_seq=out, src_seq=out, timestamp=0, layer=0)
        assert sequencer.lookup_for_retransmit(out, now=1.0) is not None
    assert len(sequencer._retransmits) <= 2 * sequencer.size
    # What it still holds keeps its budget.
    assert sequencer.lookup_for_retransmit(99, now=1.0 + RETRANSMIT_WINDOW / 2) is None
