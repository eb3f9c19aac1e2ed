"""ICE binding requests as a controlling WebRTC peer sends them, for tests of our ICE-lite side."""

from __future__ import annotations

from aioice import stun

from mediapod.transport.peer import PeerTransport

REMOTE_UFRAG = "peer"

# RFC 5769 2.1: a sample ICE binding request and the password that signs it:
# PRIORITY 0x6e0001ff, ICE-CONTROLLED, USERNAME "evtj:h6vY" padded with
# spaces, MESSAGE-INTEGRITY keyed with the password, FINGERPRINT.
RFC5769_PASSWORD = "VOkJxbRl1RmTxUk/WvJxBt"
RFC5769_REQUEST = bytes.fromhex(
    "00010058" "2112a442" "b7e7a701bc34d686fa87dfae"
    "80220010" "5354554e207465737420636c69656e74"
    "00240004" "6e0001ff"
    "80290008" "932ff9b151263b36"
    "00060009" "6576746a3a68367659202020"
    "00080014" "9aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2"
    "80280004" "e57a3bcf"
)


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
