"""The publisher PeerConnection: our answer, and how published RTP finds its track.

A participant publishes Chrome's recorded offer (a microphone, a simulcast
camera that signals no SSRCs, a screen share with RTX) over a real DTLS-SRTP
association with an in-memory client; packets are built byte by byte.
"""

from __future__ import annotations

import asyncio
import secrets
import struct

import sdp_transform

from mediapod.rtc.publisher import TWCC_FEEDBACK_INTERVAL
from mediapod.rtc.room import Room
from mediapod.rtc.track import PublishedTrack
from tests.support.fake_client import (
    MIC_SSRC,
    MID_ID,
    REPAIRED_RID_ID,
    RID_ID,
    SCREEN_RTX_SSRC,
    SCREEN_SSRC,
    VP8_KEYFRAME,
    Member,
    Pod,
    join,
    payload_of,
    publish_chrome_offer,
    rtp,
    rtp_fields,
)

TWCC_ID = 3  # CHROME_OFFER's a=extmap for transport-wide sequence numbers


def track(member: Member, cid: str) -> PublishedTrack:
    return next(t for t in member.participant.tracks.values() if t.announcement.cid == cid)


async def publisher(pod: Pod, room: Room) -> Member:
    member = join(pod, room, "alice")
    await publish_chrome_offer(member)
    return member


def camera_packet(ssrc: int, seq: int, rid: bytes, *, repaired: bool = False, payload: bytes = VP8_KEYFRAME) -> bytes:
    extension = REPAIRED_RID_ID if repaired else RID_ID
    return rtp(ssrc, seq, payload_type=97 if repaired else 96, payload=payload, extensions={MID_ID: b"1", extension: rid})


async def test_answer_receives_announced_m_lines_and_data_channels_and_rejects_the_rest(pod: Pod, room: Room) -> None:
    alice = join(pod, room, "alice")
    answer = sdp_transform.parse(await publish_chrome_offer(alice))

    accepted = {str(m["mid"]): m.get("direction", m["payloads"]) for m in answer["media"] if m["port"] != 0}
    rejected = {str(m["mid"]) for m in answer["media"] if m["port"] == 0}
    assert accepted == {"0": "recvonly", "1": "recvonly", "2": "recvonly", "3": "webrtc-datachannel"}
    assert rejected == {"4"}, "the unannounced G.711 m-line must be rejected"
    assert {t.mid: t.announcement.cid for t in alice.participant.tracks.values()} == {
        "0": "microphone",
        "1": "camera",
        "2": "screen",
    }


async def test_answer_binds_each_track_to_its_signaled_ssrcs_and_simulcast_layers(pod: Pod, room: Room) -> None:
    alice = await publisher(pod, room)

    assert track(alice, "microphone").receiver.ssrc == MIC_SSRC
    assert track(alice, "screen").receiver.ssrc == SCREEN_SSRC
    camera = track(alice, "camera")
    assert camera.rids == ("m", "h"), "layers are ordered by announced width, lowest first"
    assert [layer.ssrc for layer in camera.layers] == [0, 0], "unsignaled layers wait for their first packet"


async def test_rtp_on_an_announced_ssrc_reaches_its_track(pod: Pod, room: Room) -> None:
    alice = await publisher(pod, room)
    packet = rtp(MIC_SSRC, 100, payload=b"opus frame")

    alice.publisher.send_rtp(packet)

    assert track(alice, "microphone").receiver.buffer.get(100) == packet
    assert pod.counters.rtp_packets_in == 1


async def test_unannounced_ssrc_is_dropped_before_decryption(pod: Pod, room: Room) -> None:
    alice = await publisher(pod, room)
    # Not SRTP at all: had it been decrypted, it would count as an authentication failure.
    alice.publisher.send_datagram(rtp(0xBAD55C, 1) + secrets.token_bytes(16))
    alice.publisher.send_rtp(rtp(0xBAD55D, 1))

    assert pod.counters.drops["rtp_unknown_ssrc"] == 2
    assert pod.counters.drops["srtp_auth_failed"] == 0
    assert pod.counters.rtp_packets_in == 0


async def test_unsignaled_simulcast_layer_is_bound_by_mid_and_rid_once_it_authenticates(pod: Pod, room: Room) -> None:
    alice = await publisher(pod, room)
    camera = track(alice, "camera")
    # A forged packet naming the high layer: the right mid and rid in clear text, no valid tag.
    alice.publisher.send_datagram(camera_packet(0xF0F0, 1, b"h") + secrets.token_bytes(16))
    assert [layer.ssrc for layer in camera.layers] == [0, 0]
    assert pod.counters.drops["srtp_auth_failed"] == 1

    genuine = camera_packet(0x4444, 2, b"h")
    alice.publisher.send_rtp(genuine)

    assert [layer.ssrc for layer in camera.layers] == [0, 0x4444]
    assert camera.layers[1].buffer.get(2) == genuine
    # Once bound, the layer takes its packets by SSRC, with or without extensions.
    alice.publisher.send_rtp(rtp(0x4444, 3, payload_type=96))
    assert 3 in camera.layers[1].buffer


async def test_a_layer_already_bound_is_not_taken_by_a_second_ssrc(pod: Pod, room: Room) -> None:
    alice = await publisher(pod, room)
    camera = track(alice, "camera")
    alice.publisher.send_rtp(camera_packet(0x4444, 1, b"m"))

    alice.publisher.send_rtp(camera_packet(0x5555, 1, b"m"))

    assert camera.layers[0].ssrc == 0x4444
    assert pod.counters.drops["rtp_unknown_ssrc"] == 1


async def test_one_rtx_ssrc_is_learned_per_layer_from_its_repaired_rid(pod: Pod, room: Room) -> None:
    alice = await publisher(pod, room)
    low = track(alice, "camera").layers[0]
    alice.publisher.send_rtp(camera_packet(0x4444, 10, b"m"))
    original = payload_of(camera_packet(0x4444, 11, b"m", payload=b"lost frame"))

    # RTX (RFC 4588): the original sequence number, then the original payload.
    alice.publisher.send_rtp(camera_packet(0x7777, 500, b"m", repaired=True, payload=struct.pack("!H", 11) + original))
    alice.publisher.send_rtp(camera_packet(0x8888, 501, b"m", repaired=True, payload=struct.pack("!H", 12) + original))

    repaired = low.buffer.get(11)
    assert repaired is not None and rtp_fields(repaired)[1::2] == (11, 0x4444)
    assert 12 not in low.buffer, "a second RTX SSRC for the same layer was accepted"
    assert pod.counters.drops["rtp_unknown_ssrc"] == 1


async def test_rtx_is_unwrapped_into_the_primary_stream(pod: Pod, room: Room) -> None:
    alice = await publisher(pod, room)
    screen = track(alice, "screen").receiver
    alice.publisher.send_rtp(rtp(SCREEN_SSRC, 40, payload_type=106, timestamp=9000))

    alice.publisher.send_rtp(
        rtp(SCREEN_RTX_SSRC, 7, payload_type=107, timestamp=9000, payload=struct.pack("!H", 39) + b"h264 nal unit")
    )

    repaired = screen.buffer.get(39)
    assert repaired is not None
    assert rtp_fields(repaired) == (106, 39, 9000, SCREEN_SSRC)
    assert payload_of(repaired) == b"h264 nal unit"


async def test_a_sequence_gap_is_nacked_to_the_publisher_after_the_reorder_grace(pod: Pod, room: Room) -> None:
    alice = await publisher(pod, room)
    alice.publisher.receive()
    for seq in (10, 11, 14):
        alice.publisher.send_rtp(rtp(SCREEN_SSRC, seq, payload_type=106))

    await asyncio.sleep(0.05)

    _, rtcp = alice.publisher.receive()
    nacks = [packet for packet in rtcp if packet[1] == 205 and packet[0] & 0x1F == 1]  # RTPFB, FMT 1 (RFC 4585 6.2.1)
    assert len(nacks) == 1
    media_ssrc, pid, blp = struct.unpack_from("!IHH", nacks[0], 8)
    assert (media_ssrc, pid, blp) == (SCREEN_SSRC, 12, 0b1), "12 and 13 are missing"
    assert pod.counters.nacks_sent == 1


async def test_audio_without_nack_feedback_is_never_nacked(pod: Pod, room: Room) -> None:
    alice = await publisher(pod, room)
    alice.publisher.receive()
    for seq in (10, 20):
        alice.publisher.send_rtp(rtp(MIC_SSRC, seq))

    await asyncio.sleep(0.05)

    assert pod.counters.nacks_sent == 0


async def test_malformed_rtp_on_a_known_ssrc_is_counted_and_dropped(pod: Pod, room: Room) -> None:
    alice = await publisher(pod, room)
    # The padding bit set, and a padding count (200) longer than the whole payload.
    bad_padding = bytes([0xA0]) + rtp(MIC_SSRC, 5, payload=b"opus" + bytes([200]))[1:]
    alice.publisher.send_rtp(bad_padding)

    assert pod.counters.drops["rtp_malformed"] == 1
    assert pod.counters.rtp_packets_in == 0
    assert 5 not in track(alice, "microphone").receiver.buffer


async def test_twcc_rings_exist_only_once_a_track_negotiates_transport_wide_numbers(pod: Pod, room: Room) -> None:
    # Every participant has a publisher connection; a subscriber-only one must not pay for 32 KB of rings.
    watcher = join(pod, room, "watcher")
    assert watcher.participant.publisher._twcc is None

    alice = await publisher(pod, room)
    alice.publisher.send_rtp(rtp(MIC_SSRC, 100, payload=b"opus frame", extensions={TWCC_ID: struct.pack("!H", 7)}))
    await asyncio.sleep(TWCC_FEEDBACK_INTERVAL * 2)

    assert pod.counters.congestion_feedback[("twcc", "sent")] >= 1
