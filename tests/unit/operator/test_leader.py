"""Lease election rules: who may write itself into the Lease."""

from __future__ import annotations

from datetime import UTC, datetime

from sfu_operator.leader import may_take, micro_time, parse_time


def test_free_or_own_lease_may_be_taken() -> None:
    assert may_take(None, None, 15, "me", 100.0)
    assert may_take("", 99.0, 15, "me", 100.0)
    assert may_take("me", 99.0, 15, "me", 100.0)


def test_lease_renewed_by_another_within_its_duration_is_not_taken() -> None:
    assert not may_take("other", 90.0, 15, "me", 100.0)


def test_lease_another_stopped_renewing_is_taken_after_its_duration() -> None:
    assert may_take("other", 84.0, 15, "me", 100.0)
    assert may_take("other", None, 15, "me", 100.0)


def test_lease_times_round_trip_through_the_api_format() -> None:
    ts = 1_700_000_000.25
    assert micro_time(ts) == "2023-11-14T22:13:20.250000Z"
    assert parse_time(micro_time(ts)) == ts
    assert parse_time(datetime.fromtimestamp(ts, UTC)) == ts
    assert parse_time(None) is None and parse_time("yesterday") is None
