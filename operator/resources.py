"""Names of the custom resources and the labels the operator puts on them: their one home."""

from __future__ import annotations

from typing import Any

from sfu_operator.scheduler import LiveRoom

GROUP = "switchboard.io"
VERSION = "v1alpha1"
ROOMS = "rooms"
SFUNODES = "sfunodes"
# Rooms that a join created, not a person: the operator made their Room.
AUTO_CREATED_LABEL = f"{GROUP}/auto-created"
# Where kopf keeps its own bookkeeping on our objects.
ANNOTATION_PREFIX = f"operator.{GROUP}"


def auto_room(name: str, live: LiveRoom) -> dict[str, Any]:
    """A Room for a room that a join created, with the settings it runs with."""
    spec: dict[str, Any] = {}
    for key, value in (
        ("maxParticipants", live.spec.max_participants),
        ("emptyTimeout", live.spec.empty_timeout),
        ("departureTimeout", live.spec.departure_timeout),
        ("metadata", live.spec.metadata),
    ):
        if value:
            spec[key] = value
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Room",
        "metadata": {"name": name, "labels": {AUTO_CREATED_LABEL: "true"}},
        "spec": spec,
    }
