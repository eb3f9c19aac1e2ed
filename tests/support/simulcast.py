"""A simulcast publisher crafted from aiortc's transport and codec pieces.

aiortc cannot send simulcast, so this publisher uses its lower layers
directly: the ORTC ICE and DTLS transports (real ICE, real DTLS-SRTP), its
VP8 encoder and packetizer, and RTP packets carrying the RFC 8852 mid and
rid header extensions. It offers one video m-line with three rid encodings
(``a=rid`` / ``a=simulcast``, RFC 8853) and no SSRC lines, as browsers do,
so the media pod must learn each layer's SSRC from the rid extension.
Every layer sends a key frame every ``keyframe_interval`` seconds, which
stands in for answering PLIs.
"""

from __future__ import annotations

import asyncio
import fractions
import random
import re
import secrets
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import (
    RTCCertificate,
    RTCDtlsFingerprint,
    RTCDtlsParameters,
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceParameters,
    RTCIceTransport,
)
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from aiortc.sdp import candidate_from_sdp, candidate_to_sdp

from mediapod import client
from mediapod.protocol import models_pb2, signal_pb2

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
PAYLOAD_TYPE = 96


class ConstantRateVp8Encoder(Vp8Encoder):
    """aiortc's VP8 encoder (constant bitrate) at a rate of our choosing.

    aiortc clamps target bitrates to 250 kbit/s and up; a test of bandwidth
    allocation needs layers below that, as browsers send them.
    """

    def __init__(self, bitrate: int) -> None:
        super().__init__()
        self._bitrate = bitrate
        self._Vp8Encoder__target_bitrate = bitrate  # the encoder's rate-control buffer is sized from it

    @property  # type: ignore[override]
    def target_bitrate(self) -> int:
        return self._bitrate


@dataclass
class Layer:
    """One simulcast encoding: its rid, size, encoder and RTP state."""

    rid: str
    width: int
    height: int
    encoder: Vp8Encoder = field(default_factory=Vp8Encoder)
    ssrc: int = field(default_factory=lambda: secrets.randbits(32))
    sequence_number: int = field(default_factory=lambda: secrets.randbits(15))
    packets_sent: int = 0


@dataclass
class SimulcastPublisher:
    """Publishes one VP8 track in three rid layers over a client session."""

    session: client.Session
    layers: list[Layer] = field(
        default_factory=lambda: [Layer("q", 80, 60), Layer("h", 160, 120), Layer("f", 320, 240)]
    )
    keyframe_interval: float = 0.5
    fps: int = 30
    # Offer generic NACK but never retransmit, and never send every n-th
    # packet (0: send all): uplink loss the media pod cannot recover.
    lose_every: int = 0
    # Noise takes whatever bitrate it is given and more; a moving textured
    # gradient lets a ConstantRateVp8Encoder hold the rate it was set to.
    textured: bool = False
    source: int = models_pb2.CAMERA
    track_sid: str = ""
    _dtls: RTCDtlsTransport | None = None
    _ice: RTCIceTransport | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Announce, negotiate, connect; returns the track sid. Media flows until stop()."""
        cid = f"simulcast-{secrets.token_hex(4)}"
        published = await self.session.request(
            signal_pb2.SignalRequest(
                add_track=signal_pb2.AddTrackRequest(
                    cid=cid,
                    name="camera" if self.source == models_pb2.CAMERA else "screen",
                    type=models_pb2.VIDEO,
                    source=self.source,
                    layers=[models_pb2.SimulcastLayer(rid=l.rid, width=l.width, height=l.height) for l in self.layers],
                )
            ),
            expect="track_published",
        )
        self.track_sid = published.track_published.track.sid

        gatherer = RTCIceGatherer(iceServers=[])
        await gatherer.gather()
        self._ice = RTCIceTransport(gatherer)
        self._dtls = RTCDtlsTransport(self._ice, [RTCCertificate.generateCertificate()])
        answer = await self.session.request(
            signal_pb2.SignalRequest(offer=signal_pb2.SessionDescription(type="offer", sdp=self._offer(gatherer, cid))),
            expect="answer",
        )
        await self._connect(answer.answer.sdp)
        self._task = asyncio.get_running_loop().create_task(self._send_frames())
        return self.track_sid

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._dtls is not None:
            await self._dtls.stop()
        if self._ice is not None:
            await self._ice.stop()

    def _offer(self, gatherer: RTCIceGatherer, cid: str) -> str:
        ice = gatherer.getLocalParameters()
        assert self._dtls is not None
        fingerprint = next(f for f in self._dtls.getLocalParameters().fingerprints if f.algorithm == "sha-256")
        rids = [layer.rid for layer in self.layers]
        lines = [
            "v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=group:BUNDLE 0", "a=msid-semantic:WMS *",
            f"m=video 9 UDP/TLS/RTP/SAVPF {PAYLOAD_TYPE}", "c=IN IP4 0.0.0.0", "a=sendonly", "a=mid:0",
            f"a=msid:simulcast-stream {cid}", "a=rtcp-mux",
            f"a=rtpmap:{PAYLOAD_TYPE} VP8/90000", f"a=rtcp-fb:{PAYLOAD_TYPE} nack pli",
            *([f"a=rtcp-fb:{PAYLOAD_TYPE} nack"] if self.lose_every else []),
            f"a=extmap:1 {MID_URI}", f"a=extmap:2 {RID_URI}",
            *[f"a=rid:{rid} send" for rid in rids], f"a=simulcast:send {';'.join(rids)}",
            f"a=ice-ufrag:{ice.usernameFragment}", f"a=ice-pwd:{ice.password}",
            f"a=fingerprint:sha-256 {fingerprint.value}", "a=setup:actpass",
            *[f"a=candidate:{candidate_to_sdp(c)}" for c in gatherer.getLocalCandidates()],
            "a=end-of-candidates",
        ]
        return "\r\n".join(lines) + "\r\n"

    async def _connect(self, answer: str) -> None:
        assert self._ice is not None and self._dtls is not None
        ufrag = re.search(r"a=ice-ufrag:(\S+)", answer)
        pwd = re.search(r"a=ice-pwd:(\S+)", answer)
        fingerprint = re.search(r"a=fingerprint:sha-256 (\S+)", answer)
        assert ufrag and pwd and fingerprint, answer
        for candidate in re.findall(r"a=candidate:(.+)", answer):
            await self._ice.addRemoteCandidate(candidate_from_sdp(candidate.strip()))
        await self._ice.addRemoteCandidate(None)
        # Against an ICE-lite peer we control; RTCPeerConnection sets this the same way.
        self._ice._connection.ice_controlling = True
        await self._ice.start(RTCIceParameters(ufrag.group(1), pwd.group(1), iceLite=True))
        # Our answer says a=setup:passive, so we are the DTLS client (ORTC's
        # default would make the controlling side the server).
        self._dtls._set_role("client")
        await self._dtls.start(
            RTCDtlsParameters(fingerprints=[RTCDtlsFingerprint("sha-256", fingerprint.group(1))], role="auto")
        )

    async def _send_frames(self) -> None:
        assert self._dtls is not None
        extensions = HeaderExtensionsMap()
        extensions.configure(
            RTCRtpParameters(
                headerExtensions=[RTCRtpHeaderExtensionParameters(1, MID_URI), RTCRtpHeaderExtensionParameters(2, RID_URI)]
            )
        )
        rng = random.Random(11)
        time_base = fractions.Fraction(1, 90_000)
        loop = asyncio.get_running_loop()
        started = loop.time()
        last_keyframe = -1.0
        frame_index = 0
        while True:
            now = loop.time() - started
            force_keyframe = now - last_keyframe >= self.keyframe_interval
            if force_keyframe:
                last_keyframe = now
            for layer in self.layers:
                if self.textured:
                    frame = _textured_frame(layer.width, layer.height, frame_index, rng)
                else:
                    frame = av.VideoFrame(layer.width, layer.height, "yuv420p")
                    for plane in frame.planes:
                        plane.update(rng.randbytes(plane.buffer_size))
                frame.pts, frame.time_base = frame_index * (90_000 // self.fps), time_base
                payloads, timestamp = layer.encoder.encode(frame, force_keyframe)
                for i, payload in enumerate(payloads):
                    packet = RtpPacket(
                        payload_type=PAYLOAD_TYPE,
                        sequence_number=layer.sequence_number,
                        timestamp=timestamp,
                        ssrc=layer.ssrc,
                        marker=i == len(payloads) - 1,
                        payload=payload,
                    )
                    packet.extensions.mid = "0"
                    packet.extensions.rtp_stream_id = layer.rid
                    layer.sequence_number = (layer.sequence_number + 1) & 0xFFFF
                    layer.packets_sent += 1
                    if self.lose_every and layer.packets_sent % self.lose_every == 0:
                        continue
                    await self._dtls._send_rtp(packet.serialize(extensions))
            frame_index += 1
            await asyncio.sleep(max(0.0, started + frame_index / self.fps - loop.time()))


def _textured_frame(width: int, height: int, index: int, rng: random.Random) -> av.VideoFrame:
    """A diagonal gradient moving 4 pixels a frame, with light grain: compressible, but never free."""
    ramp = np.add.outer(np.arange(height), np.arange(width)).astype(np.int16) * 3 + index * 4
    grain = np.frombuffer(rng.randbytes(width * height), dtype=np.uint8).reshape(height, width).astype(np.int16) % 21 - 10
    luma = (ramp % 256 + grain).clip(0, 255).astype(np.uint8)
    return av.VideoFrame.from_ndarray(np.concatenate([luma, np.full((height // 2, width), 128, np.uint8)]), format="yuv420p")
