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

log = logging.getLogger("sfu_operator")


def api_client() -> ApiClient:
    """In-cluster credentials in a pod, KUBECONFIG elsewhere (tests, a laptop)."""
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        kubernetes.config.load_incluster_config()
    else:
        kubernetes.config.load_kube_config()
    return ApiClient()


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


async def run(config: OperatorConfig) -> int:
    client = api_client()
    elector = LeaseElector(CoordinationV1Api(client), config.namespace, config.lease_name, config.identity, config.lease_duration)
    await elector.acquire()
    stop = asyncio.Event()
    memo = kopf.Memo(config=config, create_room_object=RoomObjects(client).create)
    operator = asyncio.create_task(
        kopf.operator(namespaces=[config.namespace], standalone=True, memo=memo, stop_flag=stop), name="kopf"
    )
    holding = asyncio.create_task(elector.hold(), name="lease")
    done, _ = await asyncio.wait({operator, holding}, return_when=asyncio.FIRST_COMPLETED)
    if holding in done:
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
