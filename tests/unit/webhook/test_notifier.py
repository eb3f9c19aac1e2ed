"""The webhook notifier: in order per URL, retried with backoff, dropped after the retry window or on a full queue, never waiting.

The notifier is real; only its HTTP transport is a scripted Poster, so time
and failures are under the test's control without sockets.
"""

from __future__ import annotations

import asyncio
import json

from google.protobuf.json_format import Parse
from livekit.protocol.webhook import WebhookEvent

from mediapod.config import WebhookConfig
from mediapod.metrics import MediaCounters
from mediapod.webhook.notifier import WebhookNotifier
from mediapod.webhook.signature import body_digest

import jwt


class ScriptedReceiver:
    """Answers each post with the next status of a script (then 200); "hang" never answers, "down" refuses the connection."""

    def __init__(self, *script: int | str) -> None:
        self.script = list(script)
        self.taken: list[tuple[str, bytes, dict[str, str]]] = []
        self.attempts = 0

    async def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.attempts += 1
        step = self.script.pop(0) if self.script else 200
        if step == "hang":
            await asyncio.Event().wait()
        if step == "down":
            raise ConnectionRefusedError("connection refused")
        assert isinstance(step, int)
        if 200 <= step < 300:
            self.taken.append((url, body, headers))
        return step


def config(**overrides: object) -> WebhookConfig:
    values: dict[str, object] = {
        "urls": ["http://backend/hooks"], "request_timeout": 0.05, "retry_window": 1.0, "initial_backoff": 0.01, "max_backoff": 0.04,
    }
    values.update(overrides)
    return WebhookConfig(**values)  # type: ignore[arg-type]


def event(name: str, room: str = "r") -> WebhookEvent:
    event = WebhookEvent(event=name, id=f"EV_{name}")
    event.room.name = room
    return event


async def settle(condition, within: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within
    while not condition() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.005)


async def test_events_arrive_in_order_as_livekit_json_signed_for_their_body() -> None:
    receiver, counters = ScriptedReceiver(), MediaCounters()
    notifier = WebhookNotifier(config(), "key", "secret", counters, post=receiver)
    for name in ("room_started", "participant_joined", "room_finished"):
        notifier.post(event(name))
    await settle(lambda: len(receiver.taken) == 3)
    await notifier.close()

    assert [Parse(body, WebhookEvent()).event for _, body, _ in receiver.taken] == ["room_started", "participant_joined", "room_finished"]
    url, body, headers = receiver.taken[0]
    assert url == "http://backend/hooks"
    assert json.loads(body)["room"] == {"name": "r"}  # protobuf JSON, LiveKit's camelCase names
    claims = jwt.decode(headers["Authorization"], "secret", algorithms=["HS256"])
    assert claims["iss"] == "key" and claims["sha256"] == body_digest(body)
    assert counters.webhooks == {"sent": 3, "retried": 0, "dropped": 0}


async def test_a_failing_receiver_is_retried_and_later_events_wait_their_turn() -> None:
    receiver, counters = ScriptedReceiver("down", 503, "hang"), MediaCounters()
    notifier = WebhookNotifier(config(), "key", "secret", counters, post=receiver)
    notifier.post(event("room_started"))
    notifier.post(event("room_finished"))
    await settle(lambda: len(receiver.taken) == 2)
    await notifier.close()

    assert [Parse(body, WebhookEvent()).event for _, body, _ in receiver.taken] == ["room_started", "room_finished"]
    assert counters.webhooks == {"sent": 2, "retried": 3, "dropped": 0}


async def test_an_event_still_undelivered_after_the_retry_window_is_dropped_and_the_next_one_goes() -> None:
    receiver, counters = ScriptedReceiver(*["down"] * 1000), MediaCounters()
    notifier = WebhookNotifier(config(retry_window=0.2), "key", "secret", counters, post=receiver)
    notifier.post(event("room_started"))
    await settle(lambda: counters.webhooks["dropped"] == 1)
    receiver.script.clear()
    notifier.post(event("room_finished"))
    await settle(lambda: len(receiver.taken) == 1)
    await notifier.close()

    assert counters.webhooks["dropped"] == 1 and counters.webhooks["retried"] >= 3
    assert [Parse(body, WebhookEvent()).event for _, body, _ in receiver.taken] == ["room_finished"]


async def test_a_receiver_that_never_answers_costs_the_caller_nothing_and_overflow_is_dropped() -> None:
    receiver, counters = ScriptedReceiver(*["hang"] * 1000), MediaCounters()
    notifier = WebhookNotifier(config(queue_size=3, retry_window=30), "key", "secret", counters, post=receiver)
    loop = asyncio.get_running_loop()
    began = loop.time()
    for n in range(50):
        notifier.post(event(f"e{n}"))
    assert loop.time() - began < 0.5, "post waited for the receiver"
    await settle(lambda: receiver.attempts >= 2)  # the first post timed out and was tried again
    await notifier.close()

    # Three queued (the sender had not taken the first yet), the rest dropped at once.
    assert counters.webhooks["dropped"] == 47
    assert counters.webhooks["sent"] == 0 and receiver.attempts >= 2


async def test_each_url_has_its_own_queue_so_a_stuck_one_does_not_delay_another() -> None:
    stuck_url, good_url = "http://stuck/hooks", "http://good/hooks"
    taken: list[str] = []

    async def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        if url == stuck_url:
            await asyncio.Event().wait()
        taken.append(Parse(body, WebhookEvent()).event)
        return 204

    notifier = WebhookNotifier(config(urls=[stuck_url, good_url], retry_window=30), "key", "secret", MediaCounters(), post=post)
    notifier.post(event("room_started"))
    notifier.post(event("room_finished"))
    await settle(lambda: len(taken) == 2, within=0.5)
    await notifier.close()
    assert taken == ["room_started", "room_finished"]
