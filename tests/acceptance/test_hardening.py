"""Issue: Reliability — participants with one idle PeerConnection stay connected,
and no participant can stall a pod.

One test per item of the issue's "What it must show", against a real media
pod process, real aiortc peers and real DTLS-SRTP on loopback.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time

from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from mediapod import client
from mediapod.protocol import signal_pb2
from tests.support.bystander import Bystander
from tests.support.hostile_peers import IdleSubscriber, SsrcFlood, silence_consent, until_connected
from tests.support.mediapod_process import MediaPodProcess
from tests.support.peers import FrameLog, eventually


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (proc(5) stat fields 14 and 15)."""
    fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _cpu_share(pid: int, seconds: float) -> float:
    """Share of one core a process used over the next ``seconds``."""
    before, start = _cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    return (_cpu_seconds(pid) - before) / (time.monotonic() - start)


# --- item 1: idle PeerConnections do not end their participant ---------------


async def test_item1_one_sided_participants_stay_and_only_a_used_transport_ends_one(media_pod: MediaPodProcess) -> None:
    """A broadcaster and a viewer stay for 90 s with media flowing; a PeerConnection
    that never connects does not end its participant; one whose peer stops
    consent checks ends it with TRANSPORT_FAILURE."""
    pod, room = media_pod, f"one-sided-{secrets.token_hex(3)}"
    broadcaster = await client.connect(pod.grpc_target, pod.token(room, "broadcaster"), auto_subscribe=False)
    viewer = await client.connect(pod.grpc_target, pod.token(room, "viewer"))
    idle = IdleSubscriber(pod.grpc_target, pod.token(room, "never-connects"))
    quitter = await client.connect(pod.grpc_target, pod.token(room, "quitter"), auto_subscribe=False)
    try:
        await broadcaster.publish(VideoStreamTrack(), name="cam")
        [remote] = await viewer.wait_for_tracks(1, kind="video")
        frames = FrameLog(remote).start()
        await idle.join()
        await asyncio.wait_for(idle.answered.wait(), 10)  # its subscriber PC is negotiated, and never connects
        await quitter.publish(AudioStreamTrack(), name="mic")
        await viewer.wait_for_tracks(2)
        await until_connected(quitter.publisher_pc)
        silence_consent(quitter.publisher_pc)
        start = time.monotonic()

        await asyncio.sleep(90)

        # The viewer decoded video in every 5 s of the 90: media flowed throughout.
        per_window = [len(frames.between(start + t, start + t + 5)) for t in range(0, 90, 5)]
        assert min(per_window) >= 50, per_window
        for session in (broadcaster, viewer):
            assert not session.closed.is_set(), session.close_reason
        assert not idle.ended.is_set() and idle.leave is None
        present = {p.identity for p in viewer.participants.values()}
        assert {"broadcaster", "never-connects"} <= present, present
        # The quitter's publisher PC lost consent (30 s): it left with TRANSPORT_FAILURE.
        assert "quitter" not in present
        assert quitter.leave_reason == signal_pb2.LeaveRequest.TRANSPORT_FAILURE
        assert pod.metric("switchboard_consent_expiries_total") == 1
        assert pod.metric("switchboard_participants_left_total", reason="transport_failed") == 1
        # The idle PC was given up after rtc.connect_timeout, and only the PC.
        assert pod.metric("switchboard_transport_connect_timeouts_total") == 1
        frames.stop()
    finally:
        await idle.close()
        for session in (quitter, viewer, broadcaster):
            await session.close()


# --- item 2: a flood of unannounced SSRCs ------------------------------------


async def test_item2_unannounced_ssrc_flood_disconnects_the_abuser_and_spares_other_rooms(
    media_pod: MediaPodProcess,
) -> None:
    """200k SSRCs of authentic SRTP: another room keeps >= 28 fps with no gaps,
    the abuser is disconnected with a counted reason, the pod's CPU comes back."""
    pod = media_pod
    pid = pod.process.pid
    async with Bystander(pod) as bystander:
        baseline = await _cpu_share(pid, 5)
        abuser = await client.connect(pod.grpc_target, pod.token(f"abuse-{secrets.token_hex(3)}", "abuser"))
        try:
            await abuser.publish(AudioStreamTrack(), name="mic")
            await until_connected(abuser.publisher_pc)
            flood = SsrcFlood(abuser.publisher_pc)
            start = time.monotonic()
            await flood.send(200_000, rate=8000)
            end = time.monotonic()
            await abuser.wait_for(lambda s: s.closed.is_set(), timeout=5)
            assert abuser.leave_reason == signal_pb2.LeaveRequest.PROTOCOL_VIOLATION
        finally:
            await abuser.close()
        after = await _cpu_share(pid, 5)
        fps = bystander.frames_per_second(start, end + 1)
        assert flood.sent == 200_000
        assert min(fps) >= 28, fps
        assert bystander.gaps() == 0
        assert pod.metric("switchboard_participants_left_total", reason="protocol_violation") == 1
        assert pod.metric("switchboard_packets_dropped_total", reason="rtp_unknown_ssrc") > 0
        assert after <= baseline * 1.25 + 0.03, (baseline, after)


# --- item 8: RTP header extension id 0 with a length ------------------------

# RFC 8285 section 4.2's own figure, as a one-byte block: id 1 (L=0), id 2
# (L=1), two padding bytes, id 3 (L=3).
_RFC8285_FIGURE_BLOCK = bytes.fromhex("10aa21bb" "cc000033" "ddeeff11")
_RFC8285_FIGURE_ELEMENTS = {1: b"\xaa", 2: b"\xbb\xcc", 3: b"\xdd\xee\xff\x11"}


def _rtp_with_extension_block(profile: int, block: bytes, payload: bytes) -> bytes:
    fixed = bytes.fromhex("906f00090000009012345678")  # V=2, X=1, PT=111
    return fixed + profile.to_bytes(2, "big") + (len(block) // 4).to_bytes(2, "big") + block + payload


def test_item8_one_byte_extension_id0_with_length_stops_parsing_per_rfc8285() -> None:
    """RFC 8285 4.2: only a single 0x00 byte is padding; id 0 with a length, like
    id 15, ends the block. libwebrtc (RtpPacket::ParseBuffer) and pion stop
    there and keep the packet with the elements before it; so must every
    reader of header extensions here (full parse, hot-path look-up, audio
    level tap). aiortc 1.16 is the oracle for the well-formed vectors only: it
    reads id 0 with a length as an element (and raises when that runs past the
    block) and does not stop at id 15, so for those the RFC's rules are the oracle.
    """
    from aiortc.rtp import unpack_header_extensions

    from mediapod.rtc.speaker import AudioLevelTap
    from mediapod.rtp.packet import RtpHeader, RtpPacket, get_header_extension

    payload = b"opus-frame"

    # The well-formed figure: we and aiortc find the same elements.
    figure = _rtp_with_extension_block(0xBEDE, _RFC8285_FIGURE_BLOCK, payload)
    assert dict(unpack_header_extensions(0xBEDE, _RFC8285_FIGURE_BLOCK)) == _RFC8285_FIGURE_ELEMENTS
    assert RtpPacket.parse(figure).extensions == _RFC8285_FIGURE_ELEMENTS
    two_byte_block = bytes.fromhex("000101aa" "0f01bb00")  # padding, id 1, id 15 (ordinary here), padding
    assert dict(unpack_header_extensions(0x1000, two_byte_block)) == {1: b"\xaa", 15: b"\xbb"}
    assert RtpPacket.parse(_rtp_with_extension_block(0x1000, two_byte_block, payload)).extensions == {
        1: b"\xaa", 15: b"\xbb",
    }

    # id 1 = audio level (-20 dBov), then 0x05 (id 0, L=5), then what would be
    # id 2 = audio level -30 dBov and id 3: everything from 0x05 on is ignored.
    stopped_by_id0 = bytes.fromhex("1094" "05" "209e" "30cc" "00")
    # the same elements with id 15 (L=0) in place of 0x05
    stopped_by_id15 = bytes.fromhex("1094" "f0" "209e" "30cc" "00")
    for block in (stopped_by_id0, stopped_by_id15):
        buf = _rtp_with_extension_block(0xBEDE, block, payload)
        packet = RtpPacket.parse(buf)
        assert packet.extensions == {1: b"\x94"}, block.hex()
        assert packet.payload == payload
        header = RtpHeader.parse(buf)
        assert buf[header.header_size : header.payload_end] == payload
        assert [get_header_extension(buf, i) for i in (1, 2, 3)] == [b"\x94", None, None]

        before, after = AudioLevelTap(extension_id=1), AudioLevelTap(extension_id=2)
        before.observe(buf)
        after.observe(buf)
        assert (before.drain().loudest, after.drain().packets) == (20, 0)

    # id 0 whose length would run past the block, and id 15 likewise: a stop,
    # never a malformed packet.
    for block in (bytes.fromhex("10aa0f00"), bytes.fromhex("10aaff00")):
        buf = _rtp_with_extension_block(0xBEDE, block, payload)
        assert RtpPacket.parse(buf).extensions == {1: b"\xaa"}
        assert get_header_extension(buf, 1) == b"\xaa"
