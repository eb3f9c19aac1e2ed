"""Leader election on a coordination.k8s.io/v1 Lease: one operator replica acts, the others wait.

Why a Lease rather than kopf's peering: peering needs kopf's own CRDs in the
cluster and, between replicas of the same priority, pauses all of them; a
Lease is the Kubernetes convention (kube-controller-manager uses one), needs
only a Role on ``leases``, and its takeover time is one lease duration.
Writes use the Lease's resourceVersion, so two replicas racing for an expired
lease cannot both win.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes.client import CoordinationV1Api
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

# An API server that refused (ApiException) or could not be reached (urllib3).
API_ERRORS = (ApiException, urllib3.exceptions.HTTPError)


def parse_time(value: Any) -> float | None:
    """A Lease time (datetime from the client, or an RFC 3339 string) as unix seconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC).timestamp()
    text = str(value).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def micro_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def may_take(holder: str | None, renewed: float | None, duration: float, me: str, now: float) -> bool:
    """Whether ``me`` may write itself into the lease: it holds it, nobody does, or the holder stopped renewing."""
    if not holder or holder == me:
        return True
    return renewed is None or now - renewed > duration


class LeaseElector:
    """Acquires, renews and releases one Lease for this replica."""

    def __init__(self, api: CoordinationV1Api, namespace: str, name: str, identity: str, duration: float) -> None:
        self._api = api
        self._namespace = namespace
        self._name = name
        self.identity = identity
        self._duration = duration

    async def acquire(self) -> None:
        """Return once this replica holds the lease."""
        waiting_logged = False
        while True:
            try:
                if await self._try():
                    break
                if not waiting_logged:
                    log.info("another replica leads; %s waits for lease %s/%s", self.identity, self._namespace, self._name)
                    waiting_logged = True
            except API_ERRORS as exc:
                log.warning("cannot read the lease: %s; retrying", exc)
            await asyncio.sleep(self._duration / 4)
        log.info("%s leads (lease %s/%s)", self.identity, self._namespace, self._name)

    async def hold(self) -> None:
        """Renew the lease; return when it is lost (another holder, or no renewal for a lease duration)."""
        last_renewed = time.monotonic()
        while True:
            await asyncio.sleep(self._duration / 3)
            try:
                if not await self._try():
                    log.error("%s lost the lease to another replica", self.identity)
                    return
                last_renewed = time.monotonic()
            except API_ERRORS as exc:
                log.warning("cannot renew the lease: %s", exc)
            if time.monotonic() - last_renewed > self._duration:
                log.error("%s could not renew the lease for %.0f s; stepping down", self.identity, self._duration)
                return

    async def release(self) -> None:
        """Give the lease up at a clean shutdown, so a standby takes over at once."""
        try:
            lease = await asyncio.to_thread(self._api.read_namespaced_lease, self._name, self._namespace, _request_timeout=5)
            if lease.spec.holder_identity == self.identity:
                body = {
                    "metadata": {"name": self._name, "resourceVersion": lease.metadata.resource_version},
                    "spec": {"leaseDurationSeconds": lease.spec.lease_duration_seconds},
                }
                await asyncio.to_thread(self._api.replace_namespaced_lease, self._name, self._namespace, body, _request_timeout=5)
        except API_ERRORS as exc:
            log.warning("could not release the lease: %s", exc)

    async def _try(self) -> bool:
        return await asyncio.to_thread(self._try_sync)

    def _try_sync(self) -> bool:
        now = time.time()
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": math.ceil(self._duration),
            "renewTime": micro_time(now),
        }
        try:
            lease = self._api.read_namespaced_lease(self._name, self._namespace, _request_timeout=5)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = {"metadata": {"name": self._name}, "spec": {**spec, "acquireTime": micro_time(now), "leaseTransitions": 0}}
            try:
                self._api.create_namespaced_lease(self._namespace, body, _request_timeout=5)
            except ApiException as exc2:
                if exc2.status == 409:
                    return False
                raise
            return True
        current = lease.spec
        if not may_take(current.holder_identity, parse_time(current.renew_time), self._duration, self.identity, now):
            return False
        if current.holder_identity != self.identity:
            spec["acquireTime"] = micro_time(now)
            spec["leaseTransitions"] = (current.lease_transitions or 0) + 1
        else:
            spec["acquireTime"] = micro_time(parse_time(current.acquire_time) or now)
            spec["leaseTransitions"] = current.lease_transitions or 0
        body = {"metadata": {"name": self._name, "resourceVersion": lease.metadata.resource_version}, "spec": spec}
        try:
            self._api.replace_namespaced_lease(self._name, self._namespace, body, _request_timeout=5)
        except ApiException as exc:
            if exc.status == 409:
                return False  # someone else wrote it first
            raise
        return True
