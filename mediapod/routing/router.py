"""Where a room lives: the contract between signaling and the routing backend."""

from __future__ import annotations

from typing import Protocol


class Router(Protocol):
    """Maps rooms to the media node that hosts them.

    LocalRouter answers "this node" for every room (dev mode, one process);
    RedisRouter shares the map between nodes through Redis.
    """

    @property
    def node_id(self) -> str: ...

    async def node_for_room(self, room_name: str) -> str:
        """The id of the node hosting room_name, choosing one if it has none yet.

        Raises:
            RequestError: UNAVAILABLE / RESOURCE_EXHAUSTED when no node can take it.
        """
        ...

    async def release_room(self, room_name: str) -> None:
        """Forget the mapping of a closed room."""
        ...
