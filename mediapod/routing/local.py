"""The Router of a single media pod: every room is hosted here."""

from __future__ import annotations


class LocalRouter:
    """In-process routing for dev mode and tests: one node, no Redis."""

    def __init__(self, node_id: str) -> None:
        self._node_id = node_id

    @property
    def node_id(self) -> str:
        return self._node_id

    async def node_for_room(self, room_name: str) -> str:
        return self._node_id

    async def release_room(self, room_name: str) -> None:
        return None
