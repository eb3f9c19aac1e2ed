"""The pod's own SFUNode custom resource: created at start, refreshed, and obeyed when it says draining.

Only with ``kubernetes.kubeconfig`` set (cluster.py starts it). The pod owns
the SFUNode's spec (address, region, capacity, pod); ``spec.draining`` belongs to
an administrator and the status to the operator, so the pod never writes
either. When ``spec.draining`` turns true the pod stops taking new rooms
(DRAINING in Redis) and keeps its rooms; when it turns false again it serves
again, unless a SIGTERM asked it to drain meanwhile.

The Kubernetes client is synchronous: each refresh runs in a thread, with a
timeout, off the media path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mediapod.config import MediaConfig

if TYPE_CHECKING:
    from kubernetes.client import CustomObjectsApi

    from mediapod.routing.redis_router import RedisRouter

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "switchboard.io", "v1alpha1", "sfunodes"
REQUEST_TIMEOUT = 5.0


def _api(kubeconfig: str) -> CustomObjectsApi:
    import kubernetes  # only pods that register pay for the import
    import urllib3

    # A kubeconfig that skips TLS verification did so on purpose; no warning per request.
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    if kubeconfig == "in-cluster":
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_incluster_config(client_configuration=configuration)
        return kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(configuration))
    return kubernetes.client.CustomObjectsApi(kubernetes.config.new_client_from_config(config_file=kubeconfig))


class SFUNodeRegistration:
    """Keeps this pod's SFUNode in step with the pod, and the pod in step with spec.draining."""

    def __init__(self, config: MediaConfig, router: RedisRouter, shutting_down: Callable[[], bool]) -> None:
        self._config = config
        self._router = router
        self._shutting_down = shutting_down  # a SIGTERM drain, which spec.draining must not undo
        self._drained_by_spec = False
        self._api: CustomObjectsApi | None = None
        self._task: asyncio.Task[None] | None = None
        self._warned = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="sfunode-registration")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def desired_spec(self) -> dict[str, Any]:
        """The spec fields the pod owns; None means "absent" (a merge patch removes it)."""
        routing = self._config.routing
        return {
            "address": self._router.describe().ip,
            "region": self._config.region or None,
            "capacity": {"maxRooms": routing.max_rooms, "maxTracks": routing.max_tracks},
            # A worker process registers its own SFUNode (named after its Redis node id); this names its pod.
            "pod": self._config.worker.pod or None,
        }

    async def _loop(self) -> None:
        while True:
            try:
                draining = await asyncio.wait_for(asyncio.to_thread(self._refresh), REQUEST_TIMEOUT * 2)
                self._warned = False
                await self._follow(draining)
            except Exception as exc:  # the API server being away must never stop the pod
                if not self._warned:
                    log.warning("cannot refresh SFUNode %s: %s; retrying", self._config.node_id, exc)
                    self._warned = True
            await asyncio.sleep(self._config.routing.heartbeat_interval)

    def _refresh(self) -> bool:
        """Create or update the SFUNode's spec; returns its spec.draining."""
        from kubernetes.client.exceptions import ApiException

        if self._api is None:
            self._api = _api(self._config.kubernetes.kubeconfig)
        name, spec = self._config.node_id, self.desired_spec()
        try:
            current = self._api.get_cluster_custom_object(GROUP, VERSION, PLURAL, name, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 404:
                raise
            created = {k: v for k, v in spec.items() if v is not None}
            body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SFUNode", "metadata": {"name": name}, "spec": created}
            self._api.create_cluster_custom_object(GROUP, VERSION, PLURAL, body, _request_timeout=REQUEST_TIMEOUT)
            log.info("created SFUNode %s", name)
            return False
        have = current.get("spec") or {}
        stale = {k: v for k, v in spec.items() if have.get(k) != v}
        if stale:
            self._api.patch_cluster_custom_object(GROUP, VERSION, PLURAL, name, {"spec": stale}, _request_timeout=REQUEST_TIMEOUT)
        return bool(have.get("draining"))

    async def _follow(self, draining: bool) -> None:
        if draining and not self._router.draining:
            log.info("SFUNode %s has spec.draining: no new rooms", self._config.node_id)
            self._drained_by_spec = True
            await self._router.drain()
        elif not draining and self._drained_by_spec and not self._shutting_down():
            log.info("SFUNode %s no longer draining: taking new rooms again", self._config.node_id)
            self._drained_by_spec = False
            await self._router.set_serving(self._router.grpc_port)
