"""Issue: Media path — real WebRTC peers exchange audio and video through a media pod.

One test per item of the issue's "What it must show", against a real media
pod process, real aiortc peers, real DTLS-SRTP on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
import pytest
from aiortc import rtp as aiortc_rtp
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from mediapod import client
from mediapod.auth import AccessToken, VideoGrant
from mediapod.config import DEV_API_KEY, DEV_API_SECRET
from mediapod.protocol import models_pb2, room_service_pb2, room_service_pb2_grpc
from mediapod.rtp.errors import MalformedPacket
from mediapod.rtp.packet import RtpHeader, get_header_extension
from mediapod.rtp.rtcp import (
    FullIntraRequest,
    Goodbye,
    Nack,
    PictureLossIndication,
    ReceiverReport,
    SenderReport,
    SourceDescription,
    parse_rtcp,
)
from mediapod.transport.ice import MalformedStun, parse_stun
from tests.support.mediapod_process import MediaPodProcess
from tests.support.peers import RtpProbe, count_frames
from tests.support.stun_requests import RFC5769_PASSWORD, RFC5769_REQUEST

ROOT = Path(__file__).resolve().parents[2]
FRAME_MINIMUM = {"video": 50, "audio": 100}


def readme_commands() -> list[str]:
    """The README's set-up commands: the lines of its first fenced shell block."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:sh|bash|shell)?\n(.*?)```", text, re.S)
    assert block, "README has no fenced command block"
    commands = [line.split(" #", 1)[0].strip() for line in block.group(1).splitlines()]
    return [c for c in commands if c and not c.startswith("#")]


async def publish_and_watch(pod: MediaPodProcess, video_codec: str | None) -> None:
    """Item 2/3 body: one publisher, two subscribers decoding, SSRCs rewritten, no gaps."""
    room = f"media-{secrets.token_hex(3)}"
    async with await client.connect(pod.grpc_target, pod.token(room, "alice")) as publisher:
        await publisher.publish(AudioStreamTrack(), name="mic", source=models_pb2.MICROPHONE)
        await publisher.publish(VideoStreamTrack(), name="cam", source=models_pb2.CAMERA, codec=video_codec)
        publisher_ssrcs = {t.sender._ssrc for t in publisher.publisher_pc.getTransceivers()}

        subscribers = [await client.connect(pod.grpc_target, pod.token(room, f"sub-{i}")) for i in range(2)]
        try:
            for subscriber in subscribers:
                tracks = await subscriber.wait_for_tracks(2, timeout=10)
                assert sorted(t.kind for t in tracks) == ["audio", "video"]
            probes = []
            for subscriber in subscribers:
                probe = RtpProbe()
                for remote in subscriber.remote_tracks.values():
                    probe.attach(remote.receiver)
                probes.append(probe)
            results = await asyncio.gather(
                *(count_frames(list(s.remote_tracks.values()), FRAME_MINIMUM, timeout=10) for s in subscribers)
            )
            for counts in results:
                assert counts.get("video", 0) >= 50, counts
                assert counts.get("audio", 0) >= 100, counts
            for probe in probes:
                seen = set(probe.sequence_numbers)
                assert len(seen) == 2, f"expected one SSRC per track, saw {seen}"
                assert not seen & publisher_ssrcs, "subscriber saw the publisher's own SSRCs"
                assert probe.gaps() == 0, "sequence numbers have gaps"
            if video_codec:
                info = next(iter(subscribers[0].participants.values()))
                mimes = {t.mime_type for t in info.tracks}
                assert video_codec in mimes, mimes
        finally:
            for subscriber in subscribers:
                await subscriber.leave()


def test_1_readme_commands_start_dev_pod_and_run_suite(tmp_path: Path) -> None:
    commands = readme_commands()
    assert len(commands) >= 2
    dev, tests = commands[0], commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests.split()[0] in ci, f".ci/run must call the README's test command {tests!r}"

    log = open(tmp_path / "dev.log", "w")
    process = subprocess.Popen(
        [*dev.split(), "--http-port", "0", "--grpc-port", "0", "--udp-port", "0", "--metrics-port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    try:
        target = None
        deadline = time.monotonic() + 120
        assert process.stdout is not None
        while target is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            match = re.search(r"signaling \(gRPC\):\s+(\S+:\d+)", line)
            if match:
                target = match.group(1)
        assert target, f"dev pod printed no signaling address; log:\n{(tmp_path / 'dev.log').read_text()[-2000:]}"

        async def join_with_dev_key() -> None:
            token = (
                AccessToken(DEV_API_KEY, DEV_API_SECRET)
                .with_identity("readme")
                .with_grant(VideoGrant(room_join=True, room="readme"))
                .to_jwt()
            )
            session = await client.connect(target, token)
            assert session.join.room.name == "readme"
            await session.leave()

        asyncio.run(join_with_dev_key())
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)


async def test_2_opus_and_vp8_reach_two_subscribers_decoded(media_pod: MediaPodProcess) -> None:
    await publish_and_watch(media_pod, video_codec=None)


async def test_3_opus_and_h264_reach_two_subscribers_decoded(media_pod: MediaPodProcess) -> None:
    await publish_and_watch(media_pod, video_codec="video/H264")


async def test_4_leaving_participant_is_removed_and_room_closes_after_empty_timeout(media_pod: MediaPodProcess) -> None:
    room = "leave-room"
    metadata = (("authorization", f"Bearer {media_pod.admin_token(room)}"),)
    async with grpc.aio.insecure_channel(media_pod.grpc_target) as channel:
        rooms = room_service_pb2_grpc.RoomServiceStub(channel)
        await rooms.CreateRoom(room_service_pb2.CreateRoomRequest(name=room, empty_timeout=1), metadata=metadata)

        publisher = await client.connect(media_pod.grpc_target, media_pod.token(room, "leaver"))
        await publisher.publish(AudioStreamTrack())
        await publisher.publish(VideoStreamTrack())
        watcher = await client.connect(media_pod.grpc_target, media_pod.token(room, "watcher"))
        await watcher.wait_for_tracks(2)
        assert publisher.participant_sid in watcher.participants

        await publisher.leave()
        await watcher.wait_for(lambda s: publisher.participant_sid not in s.participants and not s.remote_tracks)
        listed = await rooms.ListParticipants(room_service_pb2.ListParticipantsRequest(room=room), metadata=metadata)
        assert [p.identity for p in listed.participants] == ["watcher"]
        assert not any(p.tracks for p in listed.participants)
        assert media_pod.metric("switchboard_published_tracks") == 0
        assert media_pod.metric("switchboard_subscribed_tracks") == 0

        await watcher.leave()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            listing = await rooms.ListRooms(room_service_pb2.ListRoomsRequest(), metadata=metadata)
            if room not in [r.name for r in listing.rooms]:
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail("room still open 5 s after the last participant left with a 1 s empty timeout")
        assert media_pod.metric("switchboard_rooms") == 0


async def test_5_bad_tokens_and_missing_grants_are_refused_with_reasons(media_pod: MediaPodProcess) -> None:
    room = "auth-room"
    forged = (
        AccessToken(DEV_API_KEY, "not-the-secret-" + "x" * 20)
        .with_identity("mallory").with_grant(VideoGrant(room_join=True, room=room)).to_jwt()
    )
    with pytest.raises(client.JoinError) as bad_signature:
        await client.connect(media_pod.grpc_target, forged)
    assert bad_signature.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert "signature" in bad_signature.value.details

    expired = (
        AccessToken(DEV_API_KEY, DEV_API_SECRET)
        .with_identity("late").with_grant(VideoGrant(room_join=True, room=room)).with_ttl(timedelta(minutes=1))
        .to_jwt(now=datetime.now(timezone.utc) - timedelta(hours=1))
    )
    with pytest.raises(client.JoinError) as expired_error:
        await client.connect(media_pod.grpc_target, expired)
    assert expired_error.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in expired_error.value.details

    with pytest.raises(client.JoinError) as other_room:
        await client.connect(media_pod.grpc_target, media_pod.token("another-room", "eve"), room=room)
    assert other_room.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert "another-room" in other_room.value.details

    async with await client.connect(media_pod.grpc_target, media_pod.token(room, "viewer", can_publish=False)) as viewer:
        with pytest.raises(client.RequestFailed) as denied:
            await viewer.publish(VideoStreamTrack())
        assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert "canPublish" in denied.value.message


async def test_6_malformed_sdp_and_udp_garbage_are_dropped_while_media_flows(media_pod: MediaPodProcess) -> None:
    room = "garbage-room"
    async with await client.connect(media_pod.grpc_target, media_pod.token(room, "pub")) as publisher:
        await publisher.publish(AudioStreamTrack())
        await publisher.publish(VideoStreamTrack())
        async with await client.connect(media_pod.grpc_target, media_pod.token(room, "sub")) as subscriber:
            tracks = await subscriber.wait_for_tracks(2)
            assert (await count_frames(tracks, {"video": 10}, timeout=10)).get("video", 0) >= 10

            for bad_sdp in ("v=0\r\nthis is not sdp", "", "v=0\r\nm=audio x y\r\n"):
                request_id = await publisher.send_offer_sdp(bad_sdp)
                await publisher.wait_for(lambda s: any(e.request_id == request_id for e in s.errors))
                error = next(e for e in publisher.errors if e.request_id == request_id)
                assert error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
                assert "SDP" in error.message
            assert len(publisher.published_tracks) == 2
            assert publisher.participant_sid in subscriber.participants
            assert len(next(iter(subscriber.participants.values())).tracks) == 2

            before = media_pod.metric("switchboard_packets_dropped_total")
            garbage = [
                secrets.token_bytes(200),                       # random bytes
                bytes([0x00, 0x01, 0x00, 0x08]) + b"\x21\x12",  # truncated STUN
                bytes([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42]) + secrets.token_bytes(12),  # STUN, no USERNAME
                bytes([22, 0xFE, 0xFD, 0, 0]),                  # truncated DTLS record
                bytes([0x80, 96, 0, 1]),                        # truncated RTP
                bytes([0x80, 200, 0, 6, 1, 2]),                 # truncated RTCP SR
                bytes([0x70]) + secrets.token_bytes(40),        # no protocol per RFC 7983
            ]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
                for _ in range(20):
                    for datagram in garbage:
                        attacker.sendto(datagram, ("127.0.0.1", media_pod.udp_port))
            await asyncio.sleep(0.5)
            dropped = media_pod.metric("switchboard_packets_dropped_total") - before
            assert dropped >= 20 * len(garbage)
            assert media_pod.metric("switchboard_packets_dropped_total", reason="stun_malformed") > 0
            assert media_pod.metric("switchboard_packets_dropped_total", reason="dtls_unknown_peer") > 0
            assert media_pod.metric("switchboard_packets_dropped_total", reason="srtp_unknown_peer") > 0
            assert media_pod.metric("switchboard_packets_dropped_total", reason="unknown_first_byte") > 0

            forwarded = media_pod.metric("switchboard_rtp_packets_forwarded_total")
            assert (await count_frames(tracks, {"video": 30, "audio": 50}, timeout=10)) == {"video": 30, "audio": 50}
            assert media_pod.metric("switchboard_rtp_packets_forwarded_total") > forwarded


# RTP, V=2 P=1 X=1 CC=2, PT 111, seq 9: two CSRCs, RFC 8285 4.2's own one-byte
# figure (ids 1, 2, 3 around two padding bytes), payload "opus", 3 padding bytes.
RTP_ONE_BYTE = bytes.fromhex(
    "b26f0009" "00000090" "12345678" "00000001" "00000002"
    "bede0003" "10aa21bb" "cc000033" "ddeeff11" "6f707573" "000003"
)
# RTP, V=2 X=1, two-byte profile 0x1000: id 1 empty, id 20 "abc", one padding byte.
RTP_TWO_BYTE = bytes.fromhex("906f000a" "00000090" "12345678" "10000002" "01001403" "61626300" "6f707573")


def test_7_stun_rtp_and_rtcp_are_read_from_byte_vectors_and_malformed_ones_are_refused() -> None:
    """The wire formats the issue names, from byte vectors written by their RFCs
    or by aiortc (a third party): STUN (RFC 5769), RTP with CSRCs, padding and
    RFC 8285 one- and two-byte extensions, and RTCP SR, RR, SDES, BYE, NACK, PLI
    and FIR; truncated or wrong ones raise the format's error, nothing else.
    tests/unit/transport and tests/unit/rtp cover each in depth."""
    request = parse_stun(RFC5769_REQUEST)
    assert request.attributes["USERNAME"] == "evtj:h6vY"
    assert request.check_message_integrity(RFC5769_PASSWORD.encode())
    for malformed in (RFC5769_REQUEST[:-3], RFC5769_REQUEST[:4] + b"\x00" * 16):
        with pytest.raises(MalformedStun):
            parse_stun(malformed)

    for vector, elements in ((RTP_ONE_BYTE, {1: b"\xaa", 2: b"\xbb\xcc", 3: b"\xdd\xee\xff\x11"}),
                             (RTP_TWO_BYTE, {1: b"", 20: b"abc"})):
        header, theirs = RtpHeader.parse(vector), aiortc_rtp.RtpPacket.parse(vector)
        assert (header.payload_type, header.sequence_number, header.ssrc) == (111, theirs.sequence_number, 0x12345678)
        assert vector[header.header_size : header.payload_end] == theirs.payload == b"opus"
        assert {i: get_header_extension(vector, i) for i in elements} == elements
    assert aiortc_rtp.RtpPacket.parse(RTP_ONE_BYTE).csrc == [1, 2]
    for malformed in (RTP_ONE_BYTE[:11], RTP_ONE_BYTE[:20], RTP_ONE_BYTE[:-1] + b"\x40", b"\x40" + RTP_ONE_BYTE[1:]):
        with pytest.raises(MalformedPacket):
            RtpHeader.parse(malformed)

    report = aiortc_rtp.RtcpReceiverInfo(ssrc=7, fraction_lost=16, packets_lost=3, highest_sequence=123456, jitter=627,
                                        lsr=0x12345678, dlsr=0xABCD)
    compound = b"".join(bytes(p) for p in (
        aiortc_rtp.RtcpSrPacket(ssrc=1, sender_info=aiortc_rtp.RtcpSenderInfo(
            ntp_timestamp=0xDA8BD1FCDDDDA05A, rtp_timestamp=90_000, packet_count=10, octet_count=1000), reports=[report]),
        aiortc_rtp.RtcpRrPacket(ssrc=2, reports=[report]),
        aiortc_rtp.RtcpSdesPacket(chunks=[aiortc_rtp.RtcpSourceInfo(ssrc=1, items=[(1, b"user@host")])]),
        aiortc_rtp.RtcpRtpfbPacket(fmt=1, ssrc=2, media_ssrc=1, lost=[100, 101, 116]),
        aiortc_rtp.RtcpPsfbPacket(fmt=1, ssrc=2, media_ssrc=1),
        aiortc_rtp.RtcpPsfbPacket(fmt=4, ssrc=2, media_ssrc=0, fci=bytes.fromhex("00000001" "05000000")),
        aiortc_rtp.RtcpByePacket(sources=[1]),
    ))
    sr, rr, sdes, nack, pli, fir, bye = parse_rtcp(compound)
    assert isinstance(sr, SenderReport) and (sr.ssrc, sr.rtp_timestamp, sr.packet_count) == (1, 90_000, 10)
    assert isinstance(rr, ReceiverReport) and [(r.ssrc, r.highest_sequence, r.jitter) for r in rr.reports] == [(7, 123456, 627)]
    assert isinstance(sdes, SourceDescription) and [(c.ssrc, c.items) for c in sdes.chunks] == [(1, [(1, b"user@host")])]
    assert isinstance(nack, Nack) and sorted(nack.lost) == [100, 101, 116]
    assert isinstance(pli, PictureLossIndication) and (pli.sender_ssrc, pli.media_ssrc) == (2, 1)
    assert isinstance(fir, FullIntraRequest) and fir.entries == [(1, 5)]
    assert isinstance(bye, Goodbye) and bye.ssrcs == [1]
    for malformed in (compound[:3], compound[:-2], b"\x41" + compound[1:]):
        with pytest.raises(MalformedPacket):
            parse_rtcp(malformed)


def test_8_forwarding_benchmark_prints_its_table(tmp_path: Path) -> None:
    out = tmp_path / "forwarding.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "forwarding.py"), "--subscribers", "1", "2", "--duration", "3", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "packets/s" in result.stdout and "CPU s / 1000 pkts" in result.stdout, result.stdout
    rows = json.loads(out.read_text())["results"]
    assert [row["subscribers"] for row in rows] == [1, 2]
    assert all(row["forwarded_packets_per_s"] > 0 and row["cpu_seconds_per_1000_packets"] > 0 for row in rows)
