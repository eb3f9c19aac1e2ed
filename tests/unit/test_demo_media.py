"""The demo tracks ``sbctl room join --publish-demo`` publishes: bars that visibly move, a tone at its pitch."""

from __future__ import annotations

import numpy as np
import pytest

from mediapod.demo_media import SCROLL_PIXELS, MovingBarsTrack, SineTrack


async def test_bars_fill_the_frame_with_eight_colours_and_scroll_every_frame() -> None:
    track = MovingBarsTrack(320, 240)

    first, second = await track.recv(), await track.recv()

    luma = [frame.to_ndarray(format="gray") for frame in (first, second)]  # PyAV's conversion, not ours
    assert luma[0].shape == (240, 320)
    assert len(np.unique(luma[0])) == 8, "eight bars of distinct brightness"
    assert (luma[0] == luma[0][0]).all(), "every row alike: vertical bars"
    assert np.array_equal(np.roll(luma[0], SCROLL_PIXELS, axis=1), luma[1])
    assert second.pts > first.pts


def test_bars_refuse_odd_sizes_yuv420p_cannot_hold() -> None:
    with pytest.raises(ValueError, match="even dimensions"):
        MovingBarsTrack(321, 240)


async def test_sine_is_loud_at_its_frequency_and_continuous_across_frames() -> None:
    track = SineTrack(frequency=440, amplitude=0.5)

    frames = [await track.recv() for _ in range(60)]  # 1.2 s: crosses the one-second table's wrap

    rate = frames[0].sample_rate
    samples = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.fft.rfftfreq(samples.size, 1 / rate)[spectrum.argmax()] == pytest.approx(440, abs=1)
    assert np.sqrt(np.mean(samples**2)) == pytest.approx(0.5 * 32767 / np.sqrt(2), rel=0.02)
    # A phase jump at a frame boundary would be a step far larger than a sine's per-sample change.
    assert np.abs(np.diff(samples)).max() <= 2 * np.pi * 440 / rate * 0.5 * 32767 + 2
