"""ICE binding requests as a controlling WebRTC peer sends them, for tests of our ICE-lite side."""

from __future__ import annotations

from aioice import stun

from mediapod.transport.peer import PeerTransport

REMOTE_UFRAG = "peer"


def binding_request(
    peer: PeerTransport, *, password: str | None = None, ufrag: str | None = None, use_candidate: bool = False
) -> bytes:
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    request.attributes["USERNAME"] = f"{ufrag or peer.ice.local_ufrag}:{REMOTE_UFRAG}"
    request.attributes["PRIORITY"] = 1853824767
    request.attributes["ICE-CONTROLLING"] = 0x1122334455667788
    if use_candidate:
        request.attributes["USE-CANDIDATE"] = None
    request.add_message_integrity((password or peer.ice.local_pwd).encode())
    return bytes(request)
