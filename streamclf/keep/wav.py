"""Kept clips on disk: 16 kHz mono 16-bit WAV, encoded in memory (so their size is known before
anything is written) and read back for review."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

KEEP_RATE = 16000
"""Sample rate of every kept clip, in Hz."""


class BadClip(ValueError):
    """A clip that cannot be read as audio; ``str()`` says why in a few words."""


def encode_wav(audio: np.ndarray, rate: int) -> bytes:
    """``audio`` (float32 mono at ``rate``) as the bytes of a 16 kHz mono 16-bit WAV file."""
    samples = np.asarray(audio, dtype=np.float32)
    if rate != KEEP_RATE and samples.size:
        import soxr

        samples = np.asarray(soxr.resample(samples, rate, KEEP_RATE), dtype=np.float32)
    buffer = io.BytesIO()
    # clipped first: libsndfile wraps out-of-range floats around instead of saturating
    sf.write(buffer, np.clip(samples, -1.0, 1.0), KEEP_RATE, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def read_clip(path: Path) -> tuple[np.ndarray, int]:
    """The clip's samples (float32, mono) and rate; BadClip when missing or not audio."""
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise BadClip("audio file missing") from None
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        if not path.exists():
            raise BadClip("audio file missing") from None
        why = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise BadClip(f"not readable audio ({why})") from None
    if audio.shape[0] == 0:
        raise BadClip("audio file is empty")
    return np.ascontiguousarray(audio.mean(axis=1), dtype=np.float32), int(rate)
