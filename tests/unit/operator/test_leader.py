"""Lease election rules: who may write itself into the Lease."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from sfu_operator.leader import LeaseElector, may_take, micro_time, parse_time


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


class FakeLeases:
    """CoordinationV1Api's three lease calls over one in-memory Lease, with resourceVersion checks."""

    def __init__(self, failures: int = 0) -> None:
        self.lease: Any = None
        self.version = 0
        self.failures = failures

    def read_namespaced_lease(self, name: str, namespace: str, **_: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise urllib3.exceptions.MaxRetryError(None, "/lease", "connection refused")  # type: ignore[arg-type]
        if self.lease is None:
            raise ApiException(status=404)
        spec = self.lease["spec"]
        return SimpleNamespace(
            metadata=SimpleNamespace(resource_version=str(self.version)),
            spec=SimpleNamespace(
                holder_identity=spec.get("holderIdentity"), renew_time=spec.get("renewTime"),
                acquire_time=spec.get("acquireTime"), lease_transitions=spec.get("leaseTransitions"),
                lease_duration_seconds=spec.get("leaseDurationSeconds"),
            ),
        )

    def create_namespaced_lease(self, namespace: str, body: dict[str, Any], **_: Any) -> None:
        if self.lease is not None:
            raise ApiException(status=409)
        self.lease, self.version = body, 1

    def replace_namespaced_lease(self, name: str, namespace: str, body: dict[str, Any], **_: Any) -> None:
        if body["metadata"]["resourceVersion"] != str(self.version):
            raise ApiException(status=409)
        self.lease, self.version = body, self.version + 1


async def test_first_replica_creates_the_lease_and_a_second_waits() -> None:
    leases = FakeLeases()
    await LeaseElector(leases, "ns", "op", "one", duration=15).acquire()  # type: ignore[arg-type]
    assert leases.lease["spec"]["holderIdentity"] == "one"
    second = LeaseElector(leases, "ns", "op", "two", duration=15)  # type: ignore[arg-type]
    assert not await second._try()
    assert leases.lease["spec"]["holderIdentity"] == "one"


async def test_an_unreachable_api_server_is_retried_not_fatal() -> None:
    leases = FakeLeases(failures=2)
    await asyncio.wait_for(LeaseElector(leases, "ns", "op", "one", duration=2).acquire(), 5)  # type: ignore[arg-type]
    assert leases.lease["spec"]["holderIdentity"] == "one"


async def test_released_lease_is_taken_at_once_by_a_standby() -> None:
    leases = FakeLeases()
    leader = LeaseElector(leases, "ns", "op", "one", duration=15)  # type: ignore[arg-type]
    await leader.acquire()
    await leader.release()
    assert await LeaseElector(leases, "ns", "op", "two", duration=15)._try()  # type: ignore[arg-type]
    assert leases.lease["spec"]["leaseTransitions"] == 1
