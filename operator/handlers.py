"""kopf wiring only: which events reach which Reconciler method, and how its Outcome is written.

Every decision is in scheduler.py, every side effect in sync.py. Handlers are
idempotent and level-based: a timer per object (every second) re-reads the
world, so a missed event, a restart or a failed call heals at the next tick,
and nothing here raises for a bad Room (it gets a condition and an Event).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from sfu_operator import resources
from sfu_operator.media_rooms import MediaPodError
from sfu_operator.sync import REDIS_ERRORS, Outcome, Reconciler

G, V = resources.GROUP, resources.VERSION
TICK = 1.0  # seconds between level-based passes over each object


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # kopf's bookkeeping in annotations under our group, so the status stays
    # exactly what the CRD schema describes.
    prefix = resources.ANNOTATION_PREFIX
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=prefix)
    settings.persistence.finalizer = f"{prefix}/finalizer"
    settings.peering.standalone = True  # one leader by Lease (leader.py), not kopf peering
    # One known namespace and CRDs installed before the operator: no need to
    # watch namespaces or CRDs, so RBAC grants neither (discovery suffices).
    settings.scanning.disabled = True
    reconciler = Reconciler(memo.config, metrics=memo.metrics)
    reconciler.create_room_object = memo.create_room_object
    reconciler.delete_room_object = memo.delete_room_object
    reconciler.delete_sfunode_object = memo.delete_sfunode_object
    reconciler.start()
    memo.reconciler = reconciler


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    await memo.reconciler.stop()


def _write(body: kopf.Body, patch: kopf.Patch, outcome: Outcome) -> None:
    for key, value in outcome.status.items():
        patch.status[key] = value
    if outcome.event is not None:
        kind, reason, message = outcome.event
        kopf.event(body, type=kind, reason=reason, message=message)


# -- Room ------------------------------------------------------------------------


@kopf.on.event(G, V, resources.ROOMS)
def room_seen(name: str, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    memo.reconciler.note_room(name, deleted=type == "DELETED")


@kopf.on.create(G, V, resources.ROOMS, id="room-created")
@kopf.on.resume(G, V, resources.ROOMS, id="room-resumed")
@kopf.on.update(G, V, resources.ROOMS, field="spec", id="room-spec-changed")
@kopf.timer(G, V, resources.ROOMS, interval=TICK, id="room-tick")
async def room_reconcile(
    name: str,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    labels: Mapping[str, str],
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    auto_created = labels.get(resources.AUTO_CREATED_LABEL) == "true"
    _write(body, patch, await memo.reconciler.reconcile_room(name, spec, status, auto_created=auto_created))


@kopf.on.delete(G, V, resources.ROOMS)
async def room_delete(name: str, status: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
    try:
        await memo.reconciler.finalize_room(name, status)
    except (MediaPodError, *REDIS_ERRORS) as exc:
        raise kopf.TemporaryError(f"cannot close room {name} yet: {exc}", delay=1) from None


# -- SFUNode ---------------------------------------------------------------------


@kopf.on.event(G, V, resources.SFUNODES)
def sfunode_seen(name: str, type: str | None, spec: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
    memo.reconciler.note_sfunode(name, spec, deleted=type == "DELETED")


@kopf.timer(G, V, resources.SFUNODES, interval=TICK)
async def sfunode_reconcile(name: str, status: Mapping[str, Any], body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    _write(body, patch, await memo.reconciler.reconcile_sfunode(name, status))
