"""The publishing side of the generator: one process sends every room's VP8 + Opus at a fixed rate.

Runs as a forked process beside the counting processes, on the generator's
core, never the SFU's. Each packet is a pre-built payload with a fresh RTP
header, the VP8 picture id rewritten (so it keeps counting across loops of
the one-second clip) and the send time appended, then SRTP-protected.
"""

from __future__ import annotations

import multiprocessing.sharedctypes
import secrets
import struct
import time
from dataclasses import dataclass

from bench.fanout.endpoint import Connected, binding_request, binding_response
from bench.fanout.media import AUDIO_PTIME, FPS, STAMP, STAMP_MAGIC, MediaLoop
from bench.fanout.sdp import OPUS_PT, VP8_PT
from mediapod.transport.srtp import AES128_CM_SHA1_80, SrtpSession

RTP_HEADER = struct.Struct("!BBHII")
# RFC 7675 consent: our pod drops a peer after 30 s without checks.
KEEPALIVE_INTERVAL = 2.0


@dataclass(frozen=True)
class Publication:
    """One room's publisher: its connection and the SSRCs its offer (or produce call) announced."""

    room: int
    connection: Connected
    audio_ssrc: int
    video_ssrc: int


def new_ssrcs() -> tuple[int, int]:
    return secrets.randbits(32), secrets.randbits(32)


class _Stream:
    """RTP numbering of one SSRC."""

    __slots__ = ("pt", "sequence", "ssrc", "timestamp")

    def __init__(self, ssrc: int, pt: int) -> None:
        self.ssrc, self.pt = ssrc, pt
        self.sequence = secrets.randbits(15)
        self.timestamp = secrets.randbits(31)

    def packet(self, payload: bytes, marker: bool) -> bytes:
        header = RTP_HEADER.pack(0x80, self.pt | (0x80 if marker else 0), self.sequence, self.timestamp, self.ssrc)
        self.sequence = (self.sequence + 1) & 0xFFFF
        return header + payload + STAMP.pack(STAMP_MAGIC, time.time_ns())


def run(
    publications: list[Publication],
    media: MediaLoop,
    sent: multiprocessing.sharedctypes.SynchronizedArray,  # type: ignore[type-arg]
) -> None:
    """Send until killed; ``sent[i]`` (shared memory) counts publications[i]'s RTP packets."""
    rooms = []
    for publication in publications:
        c = publication.connection
        srtp = SrtpSession.from_keying_material(AES128_CM_SHA1_80, c.keying_material, c.is_dtls_server)
        rooms.append((c.sock, c.ice.remote_address, srtp, _Stream(publication.audio_ssrc, OPUS_PT), _Stream(publication.video_ssrc, VP8_PT)))
    sent_counts = sent.get_obj()
    started = time.monotonic()
    audio_ticks = video_ticks = 0
    next_keepalive = 0.0
    while True:
        now = time.monotonic() - started
        if now >= next_keepalive:
            for publication in publications:
                publication.connection.sock.sendto(binding_request(publication.connection.ice), publication.connection.ice.remote_address)
            next_keepalive = now + KEEPALIVE_INTERVAL
        for publication in publications:
            _answer_checks(publication.connection)
        while audio_ticks * AUDIO_PTIME <= now:
            payload = media.audio[audio_ticks % len(media.audio)]
            for i, (sock, address, srtp, audio, _) in enumerate(rooms):
                sock.sendto(srtp.protect_rtp(audio.packet(payload, False)), address)
                sent_counts[i] += 1
                audio.timestamp = (audio.timestamp + int(48_000 * AUDIO_PTIME)) & 0xFFFFFFFF
            audio_ticks += 1
        while video_ticks / FPS <= now:
            frame = media.video[video_ticks % len(media.video)]
            payloads = _with_picture_id(frame.payloads, frame.picture_id_offset, video_ticks)
            for i, (sock, address, srtp, _, video) in enumerate(rooms):
                for n, payload in enumerate(payloads):
                    sock.sendto(srtp.protect_rtp(video.packet(payload, n == len(payloads) - 1)), address)
                sent_counts[i] += len(payloads)
                video.timestamp = (video.timestamp + 90_000 // FPS) & 0xFFFFFFFF
            video_ticks += 1
        next_tick = min(audio_ticks * AUDIO_PTIME, video_ticks / FPS)
        time.sleep(max(0.0, next_tick - (time.monotonic() - started)))


def _answer_checks(connection: Connected) -> None:
    """Read what the SFU sent (RTCP, STUN); answer its connectivity checks, drop the rest."""
    while True:
        try:
            data, address = connection.sock.recvfrom(2048)
        except BlockingIOError:
            return
        if data[0] < 4:
            response = binding_response(data, address, connection.ice)
            if response is not None:
                connection.sock.sendto(response, address)


def _with_picture_id(payloads: tuple[bytes, ...], offset: int | None, picture_id: int) -> list[bytes]:
    if offset is None:
        return list(payloads)
    field = struct.pack("!H", 0x8000 | (picture_id & 0x7FFF))
    return [p[:offset] + field + p[offset + 2 :] for p in payloads]
