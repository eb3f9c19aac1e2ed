"""`switchboard-operator`: wait for the Lease, then run the kopf operator until stopped or the lease is lost."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import kopf
import kubernetes
import urllib3
from kubernetes.client import ApiClient, CoordinationV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from sfu_operator import (
    handlers,  # noqa: F401  (registers the kopf handlers)
    resources,
)
from sfu_operator.config import ConfigError, OperatorConfig, load_config
from sfu_operator.leader import LeaseElector
from sfu_operator.metrics import MetricsServer, OperatorMetrics

log = logging.getLogger("sfu_operator")


def api_client(kubeconfig: str = "") -> ApiClient:
    """--kubeconfig if given; else in-cluster credentials in a pod, KUBECONFIG elsewhere (tests, a laptop)."""
    if kubeconfig:
        # kopf logs in on its own (kubernetes' in-cluster config first, then
        # $KUBECONFIG): point it at the same file, and take in-cluster away.
        os.environ["KUBECONFIG"] = kubeconfig
        os.environ.pop("KUBERNETES_SERVICE_HOST", None)
        kubernetes.config.load_kube_config(config_file=kubeconfig)
    elif os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        kubernetes.config.load_incluster_config()
    else:
        kubernetes.config.load_kube_config()
    return ApiClient()


def _api_failure(what: str, exc: Exception) -> bool:
    if isinstance(exc, ApiException):
        log.warning("cannot %s: %s %s", what, exc.status, exc.reason)
    else:
        log.warning("cannot %s: %s", what, exc)
    return False


class RoomObjects:
    """Creates Room objects for rooms a join created (the only object the operator ever creates)."""

    def __init__(self, client: ApiClient) -> None:
        self._api = CustomObjectsApi(client)

    async def create(self, namespace: str, body: dict[str, Any]) -> bool:
        """True once the Room exists (409: a person or a replica made it first)."""
        name = body["metadata"]["name"]
        try:
            await asyncio.to_thread(
                self._api.create_namespaced_custom_object,
                resources.GROUP, resources.VERSION, namespace, resources.ROOMS, body, _request_timeout=5,
            )
        except ApiException as exc:
            if exc.status == 409:
                return True
            log.warning("cannot create Room %s: %s %s", name, exc.status, exc.reason)
            return False
        except urllib3.exceptions.HTTPError as exc:  # API server unreachable
            log.warning("cannot create Room %s: %s", name, exc)
            return False
        log.info("room %s was created by a join; made its Room", name)
        return True

    async def delete(self, namespace: str, name: str) -> bool:
        """True once the Room is gone or going (404: someone deleted it first)."""
        try:
            await asyncio.to_thread(
                self._api.delete_namespaced_custom_object,
                resources.GROUP, resources.VERSION, namespace, resources.ROOMS, name, _request_timeout=5,
            )
        except ApiException as exc:
            return exc.status == 404 or _api_failure(f"delete Room {name}", exc)
        except urllib3.exceptions.HTTPError as exc:
            return _api_failure(f"delete Room {name}", exc)
        return True


class SFUNodeObjects:
    """Deletes the SFUNode of a media pod gone for longer than the grace period."""

    def __init__(self, client: ApiClient) -> None:
        self._api = CustomObjectsApi(client)

    async def delete(self, name: str) -> bool:
        """True once the SFUNode is gone or going."""
        try:
            await asyncio.to_thread(
                self._api.delete_cluster_custom_object, resources.GROUP, resources.VERSION, resources.SFUNODES, name, _request_timeout=5,
            )
        except ApiException as exc:
            return exc.status == 404 or _api_failure(f"delete SFUNode {name}", exc)
        except urllib3.exceptions.HTTPError as exc:
            return _api_failure(f"delete SFUNode {name}", exc)
        return True


async def run(config: OperatorConfig) -> int:
    client = api_client(config.kubeconfig)
    metrics = OperatorMetrics()
    # Up before the Lease: a standby answers its probes and reports leader 0.
    server = MetricsServer(metrics, config.metrics_host, config.metrics_port)
    port = await server.start()
    log.info("metrics: http://%s:%d/metrics", config.metrics_host, port)
    try:
        return await _lead(config, client, metrics)
    finally:
        metrics.leader.set(0)
        await server.stop()


async def _lead(config: OperatorConfig, client: ApiClient, metrics: OperatorMetrics) -> int:
    elector = LeaseElector(CoordinationV1Api(client), config.namespace, config.lease_name, config.identity, config.lease_duration)
    await elector.acquire()
    metrics.leader.set(1)
    stop = asyncio.Event()
    rooms = RoomObjects(client)
    memo = kopf.Memo(
        config=config, metrics=metrics, create_room_object=rooms.create, delete_room_object=rooms.delete,
        delete_sfunode_object=SFUNodeObjects(client).delete,
    )
    operator = asyncio.create_task(
        kopf.operator(namespaces=[config.namespace], standalone=True, memo=memo, stop_flag=stop), name="kopf"
    )
    holding = asyncio.create_task(elector.hold(), name="lease")
    done, _ = await asyncio.wait({operator, holding}, return_when=asyncio.FIRST_COMPLETED)
    if holding in done:
        metrics.leader.set(0)
        stop.set()  # lost the lease: stop acting at once, exit non-zero so the pod restarts as a standby
        await operator
        return 1
    holding.cancel()
    await elector.release()
    operator.result()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"switchboard-operator: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=getattr(logging, config.log_level), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # kopf logs every handler run at INFO (a timer ticks every second per object); keep its warnings.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # A kubeconfig that skips TLS verification did so on purpose; no warning per request.
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    try:
        return asyncio.run(run(config))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
