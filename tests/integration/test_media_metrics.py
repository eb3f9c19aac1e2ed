"""The media pod's counters move when their events happen, with real aiortc peers."""

from __future__ import annotations

import asyncio
import re
import secrets
import struct

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from aiortc.rtp import RtcpPsfbPacket

from mediapod import client
from mediapod.protocol import models_pb2, signal_pb2
from tests.support.mediapod_process import MediaPodProcess
from tests.support.peers import RtpProbe, count_frames
from tests.support.simulcast import SimulcastPublisher


async def wait_for_metric(pod: MediaPodProcess, name: str, minimum: float, timeout: float = 5.0) -> float:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = pod.metric(name)
        if value >= minimum or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.1)


async def test_forwarding_and_feedback_counters_move(media_pod: MediaPodProcess) -> None:
    room = f"metrics-{secrets.token_hex(3)}"
    async with await client.connect(media_pod.grpc_target, media_pod.token(room, "pub")) as publisher:
        await publisher.publish(VideoStreamTrack())
        async with await client.connect(media_pod.grpc_target, media_pod.token(room, "sub")) as subscriber:
            [remote] = await subscriber.wait_for_tracks(1)
            probe = RtpProbe()
            probe.attach(remote.receiver)
            await count_frames([remote], {"video": 10}, timeout=10)
            [downtrack_ssrc] = probe.sequence_numbers

            for name in (
                "switchboard_rtp_packets_received_total",
                "switchboard_rtp_bytes_received_total",
                "switchboard_rtp_packets_forwarded_total",
                "switchboard_rtp_bytes_forwarded_total",
                "switchboard_rtcp_packets_received_total",
                "switchboard_plis_sent_total",
            ):
                assert await wait_for_metric(media_pod, name, 1) >= 1, name
            assert await wait_for_metric(media_pod, "switchboard_rtcp_packets_sent_total", 2) >= 2
            assert media_pod.metric("switchboard_dtls_handshakes_total") >= 2
            assert media_pod.metric("switchboard_participants") == 2
            assert media_pod.metric("switchboard_published_tracks") == 1
            assert media_pod.metric("switchboard_subscribed_tracks") == 1
            assert media_pod.metric("switchboard_max_receive_jitter_seconds") > 0

            plis_sent = media_pod.metric("switchboard_plis_sent_total")
            await asyncio.sleep(0.6)  # past the per-track keyframe request throttle
            await remote.receiver._send_rtcp_pli(downtrack_ssrc)
            assert await wait_for_metric(media_pod, "switchboard_plis_received_total", 1) >= 1
            assert await wait_for_metric(media_pod, "switchboard_plis_sent_total", plis_sent + 1) == plis_sent + 1

            await remote.receiver._send_rtcp_nack(downtrack_ssrc, [1, 2, 3])
            assert await wait_for_metric(media_pod, "switchboard_nacks_received_total", 1) >= 1

            fir = RtcpPsfbPacket(fmt=4, ssrc=1, media_ssrc=0, fci=struct.pack("!LB3x", downtrack_ssrc, 1))
            await remote.receiver._send_rtcp(fir)
            assert await wait_for_metric(media_pod, "switchboard_firs_received_total", 1) >= 1


async def test_peer_whose_certificate_differs_from_its_sdp_fingerprint_is_refused(media_pod: MediaPodProcess) -> None:
    room = f"fingerprint-{secrets.token_hex(3)}"
    session = await client.connect(media_pod.grpc_target, media_pod.token(room, "impostor"))
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        track = AudioStreamTrack()
        await session.request(
            signal_pb2.SignalRequest(add_track=signal_pb2.AddTrackRequest(cid=track.id, type=models_pb2.AUDIO)),
            expect="track_published",
        )
        pc.addTransceiver(track, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        # Keep only a sha-256 fingerprint, and make it someone else's.
        sdp = re.sub(r"a=fingerprint:sha-(384|512) [0-9A-F:]+\r\n", "", pc.localDescription.sdp)
        sdp = re.sub(r"(a=fingerprint:sha-256 )([0-9A-F]{2})", lambda m: m.group(1) + ("00" if m.group(2) != "00" else "11"), sdp)
        await session.send_offer_sdp(sdp)
        await session.wait_for(lambda s: any(m.WhichOneof("message") == "answer" for m in s.messages))
        answer = next(m.answer for m in session.messages if m.WhichOneof("message") == "answer")
        await pc.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))

        assert await wait_for_metric(media_pod, "switchboard_dtls_failures_total", 1, timeout=10) >= 1
        await asyncio.wait_for(session.closed.wait(), 5)
        assert media_pod.metric("switchboard_participants") == 0
        assert media_pod.metric("switchboard_dtls_handshakes_total") == 0
    finally:
        await pc.close()
        await session.close()


async def test_unrecoverable_uplink_loss_counts_lost_packets_and_asks_for_a_keyframe(media_pod: MediaPodProcess) -> None:
    room = f"lost-{secrets.token_hex(3)}"
    async with await client.connect(media_pod.grpc_target, media_pod.token(room, "pub")) as session:
        publisher = SimulcastPublisher(session, lose_every=50, keyframe_interval=60.0)
        await publisher.start()
        try:
            assert await wait_for_metric(media_pod, "switchboard_nacks_sent_total", 1) >= 1
            assert await wait_for_metric(media_pod, "switchboard_packets_lost_total", 1, timeout=10) >= 1
            # No subscriber asked: these PLIs come from the loss itself.
            assert await wait_for_metric(media_pod, "switchboard_plis_sent_total", 1) >= 1
        finally:
            await publisher.stop()
