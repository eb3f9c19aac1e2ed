"""Calling the pod's Twirp RoomService directly over HTTP, as a client of LiveKit's JSON (or protobuf) API would."""

from __future__ import annotations

import aiohttp

from tests.support.mediapod_process import MediaPodProcess

ROOM_SERVICE_PATH = "/twirp/livekit.RoomService/"


async def post(pod: MediaPodProcess, method: str, body: bytes, content_type: str, token: str) -> tuple[int, dict[str, object]]:
    """One RoomService call: its HTTP status and the decoded JSON body (a reply in JSON, or a Twirp error)."""
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {token}"}
    url = pod.http_url.rstrip("/") + ROOM_SERVICE_PATH + method
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)
