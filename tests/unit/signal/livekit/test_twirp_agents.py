"""AgentDispatchService over Twirp: livekit-api's agent_dispatch client against the real handler on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from livekit import api
from livekit.protocol import models as lk

from mediapod import auth
from mediapod.rtc.room_state import RoomState
from mediapod.signal.livekit.agent_dispatch import AgentDispatcher
from mediapod.signal.livekit.agent_worker import AgentWorker
from mediapod.signal.livekit.twirp_agents import TwirpAgentDispatch

KEY, SECRET = "agentkey", "an-agent-secret-long-enough-for-hs256"


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, AgentDispatcher]]:
    dispatcher = AgentDispatcher({KEY: SECRET})
    app = web.Application()
    app.add_routes(TwirpAgentDispatch(dispatcher, auth.TokenVerifier({KEY: SECRET})).routes())
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("")), dispatcher
    await server.close()
    await dispatcher.close()


def open_room(dispatcher: AgentDispatcher, name: str) -> None:
    dispatcher.room_started(RoomState(sid="RM_x", name=name, node_id="n", metadata="", empty_timeout=1, departure_timeout=1,
                                      max_participants=0, created_at=0.0, num_participants=0, num_publishers=0))


async def test_a_named_agent_is_dispatched_listed_and_deleted_through_livekit_api(served) -> None:  # type: ignore[no-untyped-def]
    url, dispatcher = served
    worker = AgentWorker("AW_1", "receptionist", KEY, lk.ParticipantPermission(can_publish=True))
    dispatcher.register(worker)
    open_room(dispatcher, "call")
    async with api.LiveKitAPI(url, KEY, SECRET) as lkapi:
        created = await lkapi.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="receptionist", room="call"))
        request = await asyncio.wait_for(worker.outbox.get(), 1)
        assert request.availability.job.agent_name == "receptionist" and request.availability.job.dispatch_id == created.id
        assert [d.id for d in await lkapi.agent_dispatch.list_dispatch("call")] == [created.id]
        await lkapi.agent_dispatch.delete_dispatch(created.id, "call")
        assert await lkapi.agent_dispatch.list_dispatch("call") == []


async def test_a_room_not_open_here_is_not_found_and_other_rooms_tokens_are_refused(served) -> None:  # type: ignore[no-untyped-def]
    url, dispatcher = served
    open_room(dispatcher, "call")
    async with api.LiveKitAPI(url, KEY, SECRET) as lkapi:
        with pytest.raises(api.TwirpError) as missing:
            await lkapi.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="x", room="nowhere"))
        assert missing.value.code == "not_found"
    other_room = auth.AccessToken(KEY, SECRET).with_grant(auth.VideoGrant(room_admin=True, room="other")).to_jwt()
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{url}/twirp/livekit.AgentDispatchService/CreateDispatch",
            json={"agent_name": "x", "room": "call"}, headers={"Authorization": f"Bearer {other_room}"},
        ) as response:
            assert response.status == 403 and (await response.json())["code"] == "permission_denied"
        async with session.post(
            f"{url}/twirp/livekit.AgentDispatchService/CreateDispatch", data=b"\xff", headers={"Content-Type": "application/protobuf"},
        ) as response:
            assert response.status == 401 and (await response.json())["code"] == "unauthenticated"
