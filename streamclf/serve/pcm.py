"""Wyoming audio chunks → float32 samples, and the checks that keep bad input out.

A chunk carries raw little-endian PCM with its own ``rate`` (Hz), ``width`` (bytes per sample:
1 is unsigned 8-bit, 2, 3 and 4 signed) and ``channels``. Anything else is :class:`BadInput`,
answered with one line to the client and in the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_RATE, MAX_RATE = 4000, 384000
MAX_CHANNELS = 32
WIDTHS = (1, 2, 3, 4)


class BadInput(Exception):
    """Input a client should not have sent; ``code`` names the kind, ``str()`` is one line."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class AudioFormat:
    rate: int
    width: int
    channels: int

    @property
    def frame_bytes(self) -> int:
        return self.width * self.channels


def audio_format(data: dict[str, Any], what: str) -> AudioFormat:
    """The format in an ``audio-start`` or ``audio-chunk`` event's data, checked."""
    values = [data.get(k) for k in ("rate", "width", "channels")]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise BadInput("bad-format", f"{what}: rate, width and channels must be integers, got {values}")
    rate, width, channels = (int(v) for v in values)  # type: ignore[arg-type]
    if not MIN_RATE <= rate <= MAX_RATE:
        raise BadInput("bad-rate", f"{what}: rate {rate} Hz is outside {MIN_RATE}..{MAX_RATE}")
    if width not in WIDTHS:
        raise BadInput("bad-width", f"{what}: width {width} bytes per sample; use 1, 2, 3 or 4")
    if not 1 <= channels <= MAX_CHANNELS:
        raise BadInput("bad-channels", f"{what}: {channels} channels; use 1 to {MAX_CHANNELS}")
    return AudioFormat(rate, width, channels)


def decode(payload: bytes, fmt: AudioFormat, max_seconds: float) -> np.ndarray:
    """``(frames, channels)`` float32 in -1..1 from raw PCM; BadInput for a torn or huge chunk."""
    if len(payload) % fmt.frame_bytes:
        raise BadInput("bad-chunk", f"audio-chunk: {len(payload)} bytes is not a whole number of "
                                    f"{fmt.frame_bytes}-byte frames")
    frames = len(payload) // fmt.frame_bytes
    if frames > max_seconds * fmt.rate:
        raise BadInput("chunk-too-long", f"audio-chunk: {frames / fmt.rate:.1f} s of audio in one chunk; "
                                         f"at most {max_seconds:g} s")
    return _samples(payload, fmt.width).reshape(frames, fmt.channels)


def _samples(payload: bytes, width: int) -> np.ndarray:
    raw = np.frombuffer(payload, dtype=np.uint8)
    if width == 1:
        return (raw.astype(np.float32) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(payload, dtype="<i2").astype(np.float32) / 32768.0
    if width == 4:
        return (np.frombuffer(payload, dtype="<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    triples = raw.reshape(-1, 3).astype(np.int32)
    value = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
    value = np.where(value >= 1 << 23, value - (1 << 24), value)
    return (value / float(1 << 23)).astype(np.float32)
