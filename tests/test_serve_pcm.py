"""Wyoming audio chunks of every width decode to the same samples; impossible formats are refused."""

from __future__ import annotations

import numpy as np
import pytest

from streamclf.serve.pcm import AudioFormat, BadInput, audio_format, decode


def _encode(samples: np.ndarray, width: int) -> bytes:
    if width == 1:
        return (np.round(samples * 127) + 128).astype(np.uint8).tobytes()
    if width == 2:
        return np.round(samples * 32767).astype("<i2").tobytes()
    if width == 4:
        return np.round(samples * 2147483647).astype("<i4").tobytes()
    ints = np.round(samples * 8388607).astype(np.int64) & 0xFFFFFF
    return np.stack([ints & 0xFF, (ints >> 8) & 0xFF, ints >> 16], axis=1).astype(np.uint8).tobytes()


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_every_width_decodes_to_the_same_stereo_samples(width: int) -> None:
    t = np.arange(480) / 16000
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), -0.25 * np.cos(2 * np.pi * 300 * t)], axis=1)
    decoded = decode(_encode(stereo.reshape(-1), width), AudioFormat(16000, width, 2), max_seconds=1.0)
    assert decoded.shape == (480, 2) and decoded.dtype == np.float32
    assert np.max(np.abs(decoded - stereo)) < (0.02 if width == 1 else 1e-4)


@pytest.mark.parametrize(("data", "code"), [
    ({"rate": 0, "width": 2, "channels": 1}, "bad-rate"),
    ({"rate": 16000, "width": 5, "channels": 1}, "bad-width"),
    ({"rate": 16000, "width": 2, "channels": 0}, "bad-channels"),
    ({"rate": "16000", "width": 2, "channels": 1}, "bad-format"),
    ({"width": 2, "channels": 1}, "bad-format"),
])
def test_impossible_formats_are_bad_input_in_one_line(data: dict, code: str) -> None:
    with pytest.raises(BadInput) as caught:
        audio_format(data, "audio-start")
    assert caught.value.code == code and "\n" not in str(caught.value)


def test_a_torn_or_huge_chunk_is_bad_input() -> None:
    with pytest.raises(BadInput, match="whole number"):
        decode(b"\0" * 3, AudioFormat(16000, 2, 1), max_seconds=1.0)
    with pytest.raises(BadInput, match="at most 1 s"):
        decode(b"\0" * 2 * 32000, AudioFormat(16000, 2, 1), max_seconds=1.0)
