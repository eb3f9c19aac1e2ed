"""Issue: Reliability — participants with one idle PeerConnection stay connected,
and no participant can stall a pod.

One test per item of the issue's "What it must show", against a real media
pod process, real aiortc peers and real DTLS-SRTP on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import secrets
import time
from pathlib import Path

import grpc
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from mediapod import client
from mediapod.auth import AccessToken, VideoGrant
from mediapod.config import DEV_API_KEY, DEV_API_SECRET, LimitsConfig
from mediapod.protocol import models_pb2, room_service_pb2, room_service_pb2_grpc, signal_pb2
from tests.support.bystander import Bystander
from tests.support.hostile_peers import IdleSubscriber, SsrcFlood, silence_consent, until_connected
from tests.support.mediapod_process import MediaPodProcess
from tests.support.peers import FrameLog
from tests.support.raw_signal import RawSignalStream, invalid_utf8


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


# --- items 3-7: signaling ------------------------------------------------------


def _offer(sdp: str) -> signal_pb2.SignalRequest:
    return signal_pb2.SignalRequest(offer=signal_pb2.SessionDescription(type="offer", sdp=sdp))


def _add_track(cid: str, kind: int = models_pb2.AUDIO) -> signal_pb2.SignalRequest:
    return signal_pb2.SignalRequest(add_track=signal_pb2.AddTrackRequest(cid=cid, name=cid, type=kind))


def _bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


async def _aiortc_offer(audio: int, video: int) -> str:
    """A real browser-like publisher offer (aiortc's) with that many send-only m-lines."""
    pc = RTCPeerConnection()
    for kind, count in (("audio", audio), ("video", video)):
        for _ in range(count):
            pc.addTransceiver(kind, direction="sendonly")
    offer = await pc.createOffer()
    await pc.close()
    return offer.sdp


async def _maximum_offer(limits: LimitsConfig) -> str:
    """A valid offer at both SDP limits: max_sdp_media m-lines, padded to just under max_sdp_size bytes."""
    sdp = await _aiortc_offer(audio=limits.max_sdp_media // 2, video=limits.max_sdp_media - limits.max_sdp_media // 2)
    head, _, media = sdp.partition("\r\nm=")
    pad_line = "a=x-padding:" + "p" * 60 + "\r\n"
    # The offer is the aiortc SDP plus the padding (the "\r\nm=" taken out is put back), so whole
    # padding lines up to the limit leave less than one line of room, whatever the SDP's length.
    room = limits.max_sdp_size - len(sdp.encode())
    padding = pad_line * (room // len(pad_line))
    offer = f"{head}\r\n{padding}m={media}"
    assert limits.max_sdp_size - len(pad_line) < len(offer.encode()) <= limits.max_sdp_size
    assert offer.count("\nm=") == limits.max_sdp_media
    return offer


async def test_item3_oversized_offers_are_refused_unparsed_and_max_offers_do_not_stall_media(media_pod: MediaPodProcess) -> None:
    pod, limits = media_pod, LimitsConfig()
    maximum = await _maximum_offer(limits)
    async with Bystander(pod) as bystander:
        room = f"offers-{secrets.token_hex(3)}"
        async with await client.connect(pod.grpc_target, pod.token(room, "offerer"), auto_subscribe=False) as offerer:
            # Text that is no SDP at all is refused for its size, not its syntax: it was never parsed.
            oversized = {
                "max_sdp_size": "x" * (limits.max_sdp_size + 1),
                "max_sdp_media": "\r\nm=audio 9 RTP/AVP 0" * (limits.max_sdp_media + 1),
            }
            for setting, text in oversized.items():
                with pytest.raises(client.RequestFailed) as refused:
                    await offerer.request(_offer(text), expect="answer")
                assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT, refused.value
                assert f"limits.{setting}" in refused.value.message and "invalid SDP" not in refused.value.message

            start = time.monotonic()
            for _ in range(8):
                answer = await offerer.request(_offer(maximum), expect="answer", timeout=20)
                assert answer.answer.sdp.count("\nm=") == limits.max_sdp_media
            await asyncio.sleep(max(0.0, start + 2 - time.monotonic()))
            end = time.monotonic()
        per_second = bystander.frames_per_second(start, end)
        assert min(per_second) >= 28, per_second
    assert "Traceback" not in pod.log_text()


def _rss_mb(pid: int) -> float:
    """Resident set size of a process (proc(5) status VmRSS), in MB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


async def _join_and_leave(pod: MediaPodProcess, room: str, times: int, metadata: str = "") -> None:
    """Participants that join and hang up: each sends everyone else two updates carrying its metadata."""
    token = AccessToken(DEV_API_KEY, DEV_API_SECRET).with_identity("passer-by").with_metadata(metadata)
    token = token.with_grant(VideoGrant(room_join=True, room=room)).to_jwt()
    for _ in range(times):
        stream = RawSignalStream(pod.grpc_target)
        try:
            await stream.join(token)
        finally:
            await stream.close()


async def test_item4_a_client_that_never_reads_is_disconnected_as_stalled_and_memory_returns(media_pod: MediaPodProcess) -> None:
    pod, room = media_pod, f"stall-{secrets.token_hex(3)}"
    assert pod.process is not None
    await _join_and_leave(pod, room, 3, metadata="m" * 60_000)  # warm the code paths up before the baseline
    baseline = _rss_mb(pod.process.pid)
    never_reads = RawSignalStream(pod.grpc_target)
    try:
        await never_reads.join(pod.token(room, "never-reads"))
        deadline = time.monotonic() + 60
        while not pod.metric("switchboard_participants_left_total", reason="signal_stalled"):
            assert time.monotonic() < deadline, "a client that never reads was never disconnected"
            await _join_and_leave(pod, room, 5, metadata="m" * 60_000)
        async with grpc.aio.insecure_channel(pod.grpc_target) as channel:
            listed = await room_service_pb2_grpc.RoomServiceStub(channel).ListParticipants(
                room_service_pb2.ListParticipantsRequest(room=room), metadata=_bearer(pod.admin_token(room))
            )
        assert "never-reads" not in {p.identity for p in listed.participants}
        # More traffic in its room no longer reaches it, or the pod's memory.
        await _join_and_leave(pod, room, 20, metadata="m" * 60_000)
        assert pod.metric("switchboard_participants_left_total", reason="signal_stalled") == 1
        assert _rss_mb(pod.process.pid) - baseline < 20, (baseline, _rss_mb(pod.process.pid))
    finally:
        await never_reads.close()


async def test_item5_a_removed_participant_is_refused_everything_and_the_others_hear_nothing_of_it(tmp_path: Path) -> None:
    # Room enough to queue what a non-reading client is sent, so removal, not a stall, ends it.
    pod = MediaPodProcess(env={"SWITCHBOARD_LIMITS__SIGNAL_QUEUE_SIZE": str(64 << 20), "SWITCHBOARD_LIMITS__SIGNAL_WRITE_TIMEOUT": "60"})
    pod.start(str(tmp_path))
    room = f"removed-{secrets.token_hex(3)}"
    pc = RTCPeerConnection()
    pc.addTrack(VideoStreamTrack())
    offer = await pc.createOffer()
    await pc.close()
    track_cid = re.search(r"a=msid:\S+ (\S+)", offer.sdp).group(1)  # type: ignore[union-attr]
    ghost = RawSignalStream(pod.grpc_target)
    try:
        async with await client.connect(pod.grpc_target, pod.token(room, "watcher")) as watcher:
            ghost_sid = (await ghost.join(pod.token(room, "ghost"))).participant.sid
            await watcher.wait_for(lambda s: ghost_sid in s.participants)
            # The ghost reads nothing: a few MB of others' updates back its stream up,
            # so the server's writes to it wait (the case where it kept being served).
            await _join_and_leave(pod, room, 60, metadata="m" * 60_000)
            async with grpc.aio.insecure_channel(pod.grpc_target) as channel:
                await room_service_pb2_grpc.RoomServiceStub(channel).RemoveParticipant(
                    room_service_pb2.RoomParticipantIdentity(room=room, identity="ghost"), metadata=_bearer(pod.admin_token(room))
                )
            await watcher.wait_for(lambda s: ghost_sid not in s.participants)
            # It keeps talking: announces a track and offers it, twice.
            for request in (_add_track(track_cid, models_pb2.VIDEO), _offer(offer.sdp), _add_track("more"), _offer(offer.sdp)):
                with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                    await asyncio.wait_for(ghost.write(request), 2)
            await asyncio.sleep(1)  # whatever those requests caused would have reached the watcher by now
            about_ghost = [
                p for m in watcher.messages if m.WhichOneof("message") == "update" for p in m.update.participants if p.sid == ghost_sid
            ]
            assert [p.state for p in about_ghost][-1:] == [models_pb2.ParticipantInfo.DISCONNECTED], about_ghost
            assert not any(p.tracks for p in about_ghost), about_ghost
            assert not [m for m in watcher.messages if m.WhichOneof("message") in ("offer", "track_published")]
            assert not watcher.remote_tracks
        assert pod.metric("switchboard_published_tracks") == 0
        assert pod.metric("switchboard_participants_left_total", reason="participant_removed") == 1
        assert pod.log_text().count("participant ghost left") == 1
    finally:
        await ghost.close()
        pod.stop()


def _limit_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


async def test_item6_claims_and_track_counts_over_their_limits_are_refused_with_documented_defaults(tmp_path: Path) -> None:
    limits = LimitsConfig()
    # Published and pending track caps lowered so a test publishes 3 tracks, not 32.
    pod = MediaPodProcess(env={"SWITCHBOARD_LIMITS__MAX_PUBLISHED_TRACKS": "3", "SWITCHBOARD_LIMITS__MAX_PENDING_TRACKS": "2"})
    pod.start(str(tmp_path))
    room = f"limits-{secrets.token_hex(3)}"

    def token(identity: str = "someone", name: str = "", metadata: str = "", attributes: dict[str, str] | None = None) -> str:
        base = AccessToken(DEV_API_KEY, DEV_API_SECRET).with_identity(identity).with_name(name).with_metadata(metadata)
        return base.with_attributes(attributes or {}).with_grant(VideoGrant(room_join=True, room=room)).to_jwt()

    try:
        over = {
            "identity": token(identity="i" * (limits.max_identity_length + 1)),
            "name": token(name="n" * (limits.max_name_length + 1)),
            "metadata": token(metadata="m" * (limits.max_metadata_size + 1)),
            "attributes": token(attributes={"k": "v" * limits.max_attributes_size}),
        }
        for claim, refused_token in over.items():
            with pytest.raises(client.JoinError) as refused:
                await client.connect(pod.grpc_target, refused_token)
            assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT, refused.value
            assert f"participant {claim} " in refused.value.details and f"limits.max_{claim}" in refused.value.details
        at_limits = token(
            identity="i" * limits.max_identity_length,
            name="n" * limits.max_name_length,
            metadata="m" * limits.max_metadata_size,
            attributes={"k": "v" * (limits.max_attributes_size - 1)},
        )
        async with await client.connect(pod.grpc_target, at_limits) as accepted:
            assert len(accepted.participant.metadata) == limits.max_metadata_size

        async with await client.connect(pod.grpc_target, pod.token(room, "announcer"), auto_subscribe=False) as announcer:
            for cid in ("a0", "a1"):
                await announcer.request(_add_track(cid), expect="track_published")
            with pytest.raises(client.RequestFailed) as pending:
                await announcer.request(_add_track("a2"), expect="track_published")
            assert pending.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "limits.max_pending_tracks" in pending.value.message
        async with await client.connect(pod.grpc_target, pod.token(room, "publisher"), auto_subscribe=False) as publisher:
            await publisher.publish(AudioStreamTrack())
            await publisher.publish(VideoStreamTrack())
            await publisher.request(_add_track("third"), expect="track_published")
            with pytest.raises(client.RequestFailed) as published:
                await publisher.request(_add_track("fourth"), expect="track_published")
            assert published.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "limits.max_published_tracks" in published.value.message
    finally:
        pod.stop()
    # Every limit and its default are in the README's Limits section.
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.partition("\n## Limits\n")[2].partition("\n## ")[0]
    for setting, default in dataclasses.asdict(limits).items():
        assert re.search(rf"\|\s*`limits\.{setting}`\s*\|\s*{re.escape(_limit_value(default))}\s*\|", section), setting


async def test_item7_undecodable_requests_unusable_fingerprints_and_roomless_admin_tokens_are_refused(
    media_pod: MediaPodProcess,
) -> None:
    pod, room = media_pod, f"garbage-{secrets.token_hex(3)}"
    # Bytes that are no protobuf, as the first message.
    garbage = RawSignalStream(pod.grpc_target)
    try:
        await garbage.write(b"\xff\xff\xff\xff")
        code, details = await asyncio.wait_for(garbage.status(), 5)
    finally:
        await garbage.close()
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "could not be decoded" in details, (code, details)
    # A participant sending a string field that is not UTF-8.
    broken = RawSignalStream(pod.grpc_target)
    try:
        await broken.join(pod.token(room, "broken"))
        remove = signal_pb2.SignalRequest(remove_track=signal_pb2.RemoveTrackRequest(sid="not-utf8"))
        await broken.write(invalid_utf8(remove, "not-utf8"))
        code, details = await asyncio.wait_for(broken.status(), 5)
    finally:
        await broken.close()
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "UTF-8" in details, (code, details)
    assert pod.metric("switchboard_participants_left_total", reason="protocol_violation") == 1

    # An offer whose only fingerprints use a hash the DTLS handshake cannot check.
    offer = await _aiortc_offer(audio=1, video=0)
    md5_only = re.sub(r"a=fingerprint:\S+ ", "a=fingerprint:md5 ", offer)
    async with await client.connect(pod.grpc_target, pod.token(room, "offerer")) as offerer:
        with pytest.raises(client.RequestFailed) as refused:
            await offerer.request(_offer(md5_only), expect="answer")
        assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT and "fingerprint" in refused.value.message
        await offerer.request(_offer(offer), expect="answer")  # the same offer with its own fingerprints is fine

    # Admin tokens: roomAdmin is for the room the token names.
    async with grpc.aio.insecure_channel(pod.grpc_target) as channel:
        rooms = room_service_pb2_grpc.RoomServiceStub(channel)
        request = room_service_pb2.ListParticipantsRequest(room=room)
        for admin_token, reason in ((pod.admin_token(), "names no room"), (pod.admin_token("elsewhere"), "not")):
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await rooms.ListParticipants(request, metadata=_bearer(admin_token))
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED and reason in (denied.value.details() or "")
        await rooms.ListParticipants(request, metadata=_bearer(pod.admin_token(room)))
    assert "Traceback" not in pod.log_text()


# --- item 9: every parser fuzzed -------------------------------------------


@pytest.mark.timeout(600)
def test_item9_fuzz_slice_finds_no_crash_or_slow_input(tmp_path: Path) -> None:
    """A bounded slice of bench/fuzz.py's full run, through the same targets and
    workers: each parser (STUN, RTP and its extensions, RTX, codec descriptors,
    RTCP, SDP up to 8 KB, signal protobufs, tokens) is fuzzed coverage-guided
    by atheris from real seeds for a few seconds. No input may raise anything
    but the parser's documented error, hang, or take more than 10 ms (re-timed
    without instrumentation).
    """
    from bench.fuzz import SLOW_INPUT_MS, fuzz_all
    from bench.fuzz_targets import TARGETS

    results = fuzz_all(list(TARGETS), runs=1_000_000, seconds=4, workdir=tmp_path, jobs=2)

    assert [r.target for r in results] == list(TARGETS)
    for result in results:
        assert result.failures == [], f"{result.target}: " + "\n".join(result.failures)
        # the worker really fuzzed: far more inputs than the few seeds it started from
        assert result.inputs >= 500, f"{result.target} ran only {result.inputs} inputs"
        assert result.slowest_ms <= SLOW_INPUT_MS
