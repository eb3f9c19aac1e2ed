"""/agent: who may register, what a worker is told, and what bad input does to its connection.

A real aiohttp server on loopback (aiohttp's test utilities) serves the route;
the client speaks livekit.protocol.agent messages as livekit-agents does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from livekit.protocol import agent as lka
from livekit.protocol import models as lk

from mediapod import auth
from mediapod.metrics import MediaCounters
from mediapod.signal.livekit.agent_dispatch import AgentDispatcher
from mediapod.signal.livekit.agent_routes import AgentWorkerService

KEY, SECRET = "agentkey", "an-agent-secret-long-enough-for-hs256"


def bearer(**grant: object) -> dict[str, str]:
    token = auth.AccessToken(KEY, SECRET).with_grant(auth.VideoGrant(**grant)).to_jwt()  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {token}"}


def register(agent_name: str = "") -> bytes:
    return lka.WorkerMessage(register=lka.RegisterWorkerRequest(type=lka.JT_ROOM, agent_name=agent_name)).SerializeToString()


async def unregistered(dispatcher: AgentDispatcher) -> bool:
    """Whether every worker is gone within a second (the route unregisters once the close handshake ends)."""
    for _ in range(50):
        if not dispatcher.workers:
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.fixture
async def setup() -> AsyncIterator[tuple[TestClient, AgentDispatcher, MediaCounters]]:
    dispatcher, counters = AgentDispatcher({KEY: SECRET}), MediaCounters()
    service = AgentWorkerService(dispatcher, auth.TokenVerifier({KEY: SECRET}), counters, lk.ServerInfo(node_id="n1"))
    app = web.Application()
    app.add_routes(service.routes())
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client, dispatcher, counters
    await client.close()
    await dispatcher.close()


async def test_a_worker_registers_and_is_answered_with_its_id_and_the_server(setup) -> None:  # type: ignore[no-untyped-def]
    client, dispatcher, _ = setup
    ws = await client.ws_connect("/agent", headers=bearer(agent=True))
    await ws.send_bytes(register("receptionist"))
    answer = lka.ServerMessage.FromString(await ws.receive_bytes(timeout=2))
    assert answer.register.worker_id.startswith("AW_") and answer.register.server_info.node_id == "n1"
    assert [w.agent_name for w in dispatcher.workers.values()] == ["receptionist"]

    await ws.send_bytes(lka.WorkerMessage(ping=lka.WorkerPing(timestamp=1234)).SerializeToString())
    pong = lka.ServerMessage.FromString(await ws.receive_bytes(timeout=2))
    assert pong.pong.last_timestamp == 1234
    await ws.close()
    assert await unregistered(dispatcher)


@pytest.mark.parametrize(
    "headers",
    [pytest.param({}, id="no-token"), pytest.param({"Authorization": "Bearer not-a-jwt"}, id="garbage"),
     pytest.param(bearer(room_admin=True, room="r"), id="no-agent-grant")],
)
async def test_a_connection_without_an_agent_token_is_refused_before_the_upgrade(setup, headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    client, dispatcher, counters = setup
    response = await client.get("/agent", headers=headers)
    assert response.status == 401
    assert counters.signal_errors[("livekit", "unauthorized")] == 1 and not dispatcher.workers


@pytest.mark.parametrize(
    "first",
    [pytest.param(b"\xff\xff\xff", id="not-protobuf"),
     pytest.param(lka.WorkerMessage(ping=lka.WorkerPing(timestamp=1)).SerializeToString(), id="not-register"),
     pytest.param("hello", id="text-frame")],
)
async def test_a_session_that_does_not_start_with_a_registration_is_closed(setup, first: bytes | str) -> None:  # type: ignore[no-untyped-def]
    client, dispatcher, _ = setup
    ws = await client.ws_connect("/agent", headers=bearer(agent=True))
    await (ws.send_bytes(first) if isinstance(first, bytes) else ws.send_str(first))
    message = await ws.receive(timeout=2)
    assert message.type == WSMsgType.CLOSE and message.data == WSCloseCode.POLICY_VIOLATION
    assert not dispatcher.workers


async def test_a_malformed_frame_after_registration_ends_the_worker(setup) -> None:  # type: ignore[no-untyped-def]
    client, dispatcher, counters = setup
    ws = await client.ws_connect("/agent", headers=bearer(agent=True))
    await ws.send_bytes(register())
    await ws.receive_bytes(timeout=2)
    await ws.send_bytes(b"\x0a\xff")  # a length-delimited field running past the end
    message = await ws.receive(timeout=2)
    assert message.type == WSMsgType.CLOSE and message.data == WSCloseCode.POLICY_VIOLATION
    assert counters.signal_errors[("livekit", "malformed_message")] == 1
    await ws.close()
    assert await unregistered(dispatcher)
