"""Make the committed recording the hot-path replay forwards: ``python bench/hotpath/record.py``.

Two seconds of a simulcast VP8 camera (80x60, 160x120, 320x240 at 30 fps and 60, 120, 250 kbit/s,
a keyframe every third of a second, a moving textured picture so the encoder has work)
and an Opus microphone (a tone, 20 ms frames), encoded by aiortc's encoders
and packetized by them. The uplink is not perfect, as a real one is not:
every 41st packet of the top layer is lost and every 53rd packet of the
middle layer arrives after its successor. Run it only to change the
recording; the replay's reference digests are made from the committed file.
"""

from __future__ import annotations

import fractions
import sys
from pathlib import Path

import av
import numpy as np
from aiortc.codecs.opus import OpusEncoder
from aiortc.rtp import RtpPacket

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from capture import AUDIO, RECORDING, VIDEO_LAYERS, Recorded, write

from tests.support.simulcast import ConstantRateVp8Encoder

SECONDS = 2
FPS = 30
SIZES = ((80, 60), (160, 120), (320, 240))
BITRATES = (60_000, 120_000, 250_000)
VIDEO_PT, AUDIO_PT = 96, 111
LOSE_EVERY = 41      # top layer
REORDER_EVERY = 53   # middle layer
KEYFRAME_EVERY = 10  # frames: a third of a second, so switches and resumes come soon


def _picture(width: int, height: int, index: int) -> av.VideoFrame:
    x = np.arange(width, dtype=np.uint16)[None, :]
    y = np.arange(height, dtype=np.uint16)[:, None]
    plane = ((x * 3 + y * 2 + index * 5) % 256).astype(np.uint8)
    rgb = np.stack([plane, np.roll(plane, index, axis=1), plane[::-1]], axis=2)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    frame.pts, frame.time_base = index * 3000, fractions.Fraction(1, 90000)
    return frame


def _tone(index: int) -> av.AudioFrame:
    samples = np.arange(index * 960, (index + 1) * 960)
    wave = (np.sin(2 * np.pi * 440 * samples / 48000) * 8000).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(np.stack([wave, wave], axis=1).reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate, frame.pts, frame.time_base = 48000, index * 960, fractions.Fraction(1, 48000)
    return frame


def _video() -> list[tuple[int, int, bytes]]:
    """(offset ms, layer, packet) of every layer's frames."""
    out = []
    for layer, (stream, (width, height), bitrate) in enumerate(zip(VIDEO_LAYERS, SIZES, BITRATES)):
        encoder, sequence = ConstantRateVp8Encoder(bitrate), 1000 * (layer + 1)
        for index in range(SECONDS * FPS):
            payloads, timestamp = encoder.encode(_picture(width, height, index), force_keyframe=index % KEYFRAME_EVERY == 0)
            for at, payload in enumerate(payloads):
                packet = RtpPacket(
                    payload_type=VIDEO_PT, marker=int(at == len(payloads) - 1), sequence_number=sequence & 0xFFFF,
                    timestamp=timestamp, ssrc=stream.ssrc, payload=payload,
                )
                sequence += 1
                out.append((index * 1000 // FPS, layer, packet.serialize()))
    return out


def _audio() -> list[tuple[int, int, bytes]]:
    encoder, out = OpusEncoder(), []
    for index in range(SECONDS * 50):
        payloads, timestamp = encoder.encode(_tone(index))
        packet = RtpPacket(payload_type=AUDIO_PT, sequence_number=(500 + index) & 0xFFFF, timestamp=timestamp, ssrc=AUDIO.ssrc, payload=payloads[0])
        out.append((index * 20, -1, packet.serialize()))
    return out


def main() -> None:
    packets = sorted(_video() + _audio(), key=lambda item: (item[0], item[1]))
    arrived: list[Recorded] = []
    counts = [0, 0, 0]
    held: Recorded | None = None
    for offset, layer, packet in packets:
        if layer >= 0:
            counts[layer] += 1
            if layer == 2 and counts[layer] % LOSE_EVERY == 0:
                continue
            if layer == 1 and counts[layer] % REORDER_EVERY == 0:
                held = Recorded(offset, packet)
                continue
        arrived.append(Recorded(offset, packet))
        if held is not None and layer == 1:
            arrived.append(Recorded(offset, held.packet))
            held = None
    write(RECORDING, arrived)
    print(f"{RECORDING}: {len(arrived)} packets, {RECORDING.stat().st_size} bytes")


if __name__ == "__main__":
    main()
