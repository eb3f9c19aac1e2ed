"""The TWCC feedback FCI, pinned down with byte vectors computed by hand from
draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1 (cited per vector),
round trips, and malformed input that must raise MalformedPacket and nothing else.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediapod.rtp.errors import MalformedPacket
from mediapod.rtp.twcc import TwccFeedback


def fci(base: int, count: int, reference: int, feedback_count: int, rest: str) -> bytes:
    """The 8-byte FCI header of §3.1 followed by chunks and deltas given as hex."""
    word = ((reference & 0xFFFFFF) << 8) | feedback_count
    return base.to_bytes(2, "big") + count.to_bytes(2, "big") + word.to_bytes(4, "big") + bytes.fromhex(rest)


# §3.1.3 run length chunk, example 1: |0|0 0|0 0 0 0 0 1 1 0 1 1 1 0 1| = 0x00dd,
# a run of 221 "packet not received".
RUN_NOT_RECEIVED = fci(1000, 221, 0, 0, "00dd")
RUN_NOT_RECEIVED_FEEDBACK = TwccFeedback(1000, 0, 0, [None] * 221)

# §3.1.4 status vector chunk, example 1: |1|0|0 1 1 1 1 1 0 0 0 1 1 1 0 0| = 0x9f1c:
# 1 not received, 5 received, 3 not received, 3 received, 2 not received
# (bit 1 = received, as the example and libwebrtc read it). 8 small deltas
# follow (§3.1.5, unsigned, 250 µs each): 1, 2, 3, 4, 5, 6, 7, 8 ticks, so the
# arrivals are the running sums 1, 3, 6, 10, 15, 21, 28, 36 ticks times 250 µs.
ONE_BIT_VECTOR = fci(7, 14, 2, 9, "9f1c" "0102030405060708")
ONE_BIT_VECTOR_FEEDBACK = TwccFeedback(
    7, 2, 9,
    [None, 250, 750, 1500, 2500, 3750, None, None, None, 5250, 7000, 9000, None, None],
)

# §3.1.4 two-bit vector, symbols 01 00 10 10 00 00 01 (§3.1.1: small, not
# received, large, large, not, not, small) = 1 1 01001010000001 = 0xd281.
# Deltas: 0 (1 byte), +300 ticks = 0x012c (2 bytes), -304 ticks = 0xfed0
# (2 bytes, signed, so the arrival goes back to -4 ticks), +12 ticks = 0x0c.
# Reference time -3 is 0xfffffd in 24 bits; feedback count 7.
TWO_BIT_VECTOR = fci(5, 7, -3, 7, "d281" "00" "012c" "fed0" "0c")
TWO_BIT_VECTOR_FEEDBACK = TwccFeedback(5, -3, 7, [0, None, 75_000, -1000, None, None, 2000])

# §3.1.3 run of symbol 01 ("received, small delta") of length 20 = 0x2014,
# every packet 1 ms (4 ticks) after the one before, the first at the
# reference time; base sequence 65530, so the run wraps through 0.
RUN_RECEIVED = fci(65530, 20, 0x123456, 255, "2014" "00" + "04" * 19)
RUN_RECEIVED_FEEDBACK = TwccFeedback(65530, 0x123456, 255, [1000 * i for i in range(20)])

VECTORS = {
    "run not received (draft 3.1.3 example 1)": (RUN_NOT_RECEIVED, RUN_NOT_RECEIVED_FEEDBACK),
    "one-bit vector (draft 3.1.4 example 1)": (ONE_BIT_VECTOR, ONE_BIT_VECTOR_FEEDBACK),
    "two-bit vector, large and negative deltas": (TWO_BIT_VECTOR, TWO_BIT_VECTOR_FEEDBACK),
    "run received across the wrap": (RUN_RECEIVED, RUN_RECEIVED_FEEDBACK),
}


@pytest.mark.parametrize("name", VECTORS)
def test_vector_parses_to_the_hand_computed_feedback(name: str) -> None:
    raw, feedback = VECTORS[name]
    assert TwccFeedback.parse(raw) == feedback
    assert TwccFeedback.parse(memoryview(raw)) == feedback


@pytest.mark.parametrize("name", VECTORS)
def test_feedback_serializes_to_the_hand_computed_bytes(name: str) -> None:
    raw, feedback = VECTORS[name]
    assert feedback.serialize() == raw


def test_run_and_vectors_in_one_feedback() -> None:
    # 16 received small (run 0x2010), then not/small/large/small/not/not/not as a
    # two-bit vector 00 01 10 01 00 00 00 = 1 1 00011001000000 = 0xc640.
    arrivals = [250 * i for i in range(16)] + [None, 4000, 2000, 2250, None, None, None]
    raw = fci(0, 23, 0, 0, "2010" "c640" "00" + "01" * 15 + "01" "fff8" "01")
    assert TwccFeedback(0, 0, 0, arrivals).serialize() == raw
    assert TwccFeedback.parse(raw).arrivals == arrivals


@pytest.mark.parametrize("padding", ["00", "0000", "000003"])
def test_padding_after_the_deltas_is_accepted(padding: str) -> None:
    assert TwccFeedback.parse(TWO_BIT_VECTOR + bytes.fromhex(padding)) == TWO_BIT_VECTOR_FEEDBACK


def test_unused_symbols_of_the_last_vector_are_ignored() -> None:
    # Status count 3 reads only the first three symbols of 0xd281 (libwebrtc too).
    raw = fci(5, 3, 0, 0, "d281" "00" "012c")
    assert TwccFeedback.parse(raw).arrivals == [0, None, 75_000]


def test_a_long_run_of_losses_is_cheap_to_read() -> None:
    # 65535 statuses: eight 8191-runs of "not received", then a run of 7 received.
    raw = fci(0, 65535, 0, 0, "1fff" * 8 + "2007" + "01" * 7)
    start = time.perf_counter()
    feedback = TwccFeedback.parse(raw)
    assert time.perf_counter() - start < 0.05
    assert feedback.arrivals[:65528] == [None] * 65528
    assert feedback.arrivals[65528:] == [250 * i for i in range(1, 8)]


MALFORMED = {
    # §3.1.3 run length example 2 uses symbol 11, "received w/o recv delta"
    # in draft -00 but "[Reserved]" in -01 §3.1.1; libwebrtc rejects it.
    "reserved symbol in a run (draft 3.1.3 example 2)": fci(0, 24, 0, 0, "6018"),
    # §3.1.4 example 2 (1|1|00 11 01 01 01 00 00 = 0xcd50) has the same symbol 11.
    "reserved symbol in a two-bit vector (draft 3.1.4 example 2)": fci(0, 7, 0, 0, "cd50" "010101"),
    "empty feedback": fci(0, 0, 0, 0, "0000"),
    "header only": fci(0, 1, 0, 0, ""),
    "run overruns the status count": fci(0, 3, 0, 0, "0004"),
    "chunks end before the status count": fci(0, 20, 0, 0, "000a"),
    "absurd status count": fci(0, 65535, 0, 0, "9f1c" "0102030405060708"),
    "delta bytes missing": fci(0, 2, 0, 0, "2002" "01"),
    "large delta cut in half": fci(0, 1, 0, 0, "4001" "ff"),
    "received run larger than the packet": fci(0, 8191, 0, 0, "3fff" "00"),
    "more than padding after the deltas": TWO_BIT_VECTOR + bytes(4),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_feedback_is_rejected(name: str) -> None:
    with pytest.raises(MalformedPacket):
        TwccFeedback.parse(MALFORMED[name])


@pytest.mark.parametrize("name", VECTORS)
def test_every_truncation_of_a_valid_feedback_is_malformed(name: str) -> None:
    raw, _ = VECTORS[name]
    for length in range(len(raw)):
        with pytest.raises(MalformedPacket):
            TwccFeedback.parse(raw[:length])


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_malformed_packet(raw: bytes) -> None:
    try:
        TwccFeedback.parse(raw)
    except MalformedPacket:
        pass


@given(st.binary(min_size=2, max_size=120), st.integers(1, 0xFFFF))
def test_random_chunks_after_a_valid_header_raise_only_malformed_packet(body: bytes, count: int) -> None:
    try:
        feedback = TwccFeedback.parse(fci(0, count, 0, 0, body.hex()))
    except MalformedPacket:
        return
    assert len(feedback.arrivals) == count
    assert TwccFeedback.parse(feedback.serialize()) == feedback


# Received packets as deltas in 250 µs ticks from the previous one, losses as
# None; runs of either repeated so run-length chunks are exercised too.
_statuses = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(-0x8000, 0x7FFF), st.integers(0, 0xFF)), st.integers(1, 40)),
    min_size=1,
    max_size=40,
)


def _arrivals(segments: list[tuple[int | None, int]]) -> list[int | None]:
    arrivals: list[int | None] = []
    ticks = 0
    for delta, repeat in segments:
        for _ in range(repeat):
            if delta is None:
                arrivals.append(None)
            else:
                ticks += delta
                arrivals.append(ticks * 250)
    return arrivals


@given(
    _statuses,
    st.integers(0, 0xFFFF),
    st.integers(-(1 << 23), (1 << 23) - 1),
    st.integers(0, 0xFF),
)
def test_round_trip(segments: list[tuple[int | None, int]], base: int, reference: int, count: int) -> None:
    feedback = TwccFeedback(base, reference, count, _arrivals(segments))
    raw = feedback.serialize()
    assert TwccFeedback.parse(raw) == feedback
    # No wider than the plainest correct encoding: two-bit vectors and two-byte deltas.
    received = sum(a is not None for a in feedback.arrivals)
    assert len(raw) <= 8 + 2 * -(-len(feedback.arrivals) // 7) + 2 * received


def test_all_small_deltas_take_one_run_chunk() -> None:
    raw = TwccFeedback(0, 0, 0, [250 * i for i in range(1000)]).serialize()
    assert len(raw) == 8 + 2 + 1000


def test_arrivals_are_rounded_to_250_microseconds_without_drift() -> None:
    # 100 µs apart: rounding each arrival (not each delta) keeps the sum on time.
    feedback = TwccFeedback(0, 0, 0, [100 * i for i in range(11)])
    assert TwccFeedback.parse(feedback.serialize()).arrivals == [
        250 * ((100 * i + 125) // 250) for i in range(11)
    ]


def test_delta_too_large_for_16_bits_is_refused() -> None:
    with pytest.raises(ValueError, match="new feedback"):
        TwccFeedback(0, 0, 0, [0, 8_192_000]).serialize()
    with pytest.raises(ValueError, match="new feedback"):
        TwccFeedback(0, 0, 0, [0, -8_192_250]).serialize()
    assert TwccFeedback(0, 0, 0, [0, 8_191_750, 0]).serialize()


@pytest.mark.parametrize(
    "feedback",
    [
        TwccFeedback(0, 0, 0, []),
        TwccFeedback(0, 0, 0, [None] * 65536),
        TwccFeedback(65536, 0, 0, [0]),
        TwccFeedback(0, 1 << 23, 0, [0]),
        TwccFeedback(0, 0, 256, [0]),
    ],
    ids=["empty", "too many", "base", "reference", "count"],
)
def test_fields_out_of_range_are_refused(feedback: TwccFeedback) -> None:
    with pytest.raises(ValueError):
        feedback.serialize()
