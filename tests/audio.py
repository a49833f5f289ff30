"""Realistic test input in one line: spoken words, word streams, tone bursts (no committed audio).

    from tests.audio import spoken_words, ten_word_stream, tone_bursts
    stream = ten_word_stream(np.random.default_rng(3))              # trainer.streams.Stream
    audio, truth = tone_bursts([(0.5, 0.8), (2.0, 2.4)], total_s=3)  # float32, [(start, end)] s

Synthesis results are cached for the whole test session.
"""

from __future__ import annotations

import functools
import shutil
import struct
from collections.abc import Sequence

import numpy as np
import pytest

from trainer.noise import make_noise, set_level_dbfs
from trainer.streams import Stream, build_stream
from trainer.tts import Voice, synthesize

RATE = 16000
DEFAULT_VOICE = Voice("espeak-ng", "en-us", rate=170, pitch=50)
TEN_WORDS = ("yes", "stop", "seven", "left", "house", "go", "marvin", "down", "happy", "zero")

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")
needs_festival = pytest.mark.skipif(shutil.which("text2wave") is None, reason="festival is not installed")


@functools.lru_cache(maxsize=512)
def _spoken(text: str, voice: Voice, sample_rate: int) -> np.ndarray:
    audio = synthesize(text, voice, sample_rate)
    audio.setflags(write=False)
    return audio


def spoken_words(
    texts: Sequence[str], voice: Voice = DEFAULT_VOICE, sample_rate: int = RATE
) -> list[np.ndarray]:
    """Each text spoken by ``voice`` (trimmed float32, read-only arrays cached per session)."""
    return [_spoken(t, voice, sample_rate) for t in texts]


def ten_word_stream(
    rng: np.random.Generator,
    *,
    voice: Voice = DEFAULT_VOICE,
    texts: Sequence[str] = TEN_WORDS,
    gap_range_s: tuple[float, float] = (0.4, 1.5),
    **stream_options: object,
) -> Stream:
    """Ten spoken words with random gaps; ``stream_options`` go to :func:`build_stream`
    (``level_dbfs``, ``noise``, ``snr_db``, ``lead_s``, ``tail_s``)."""
    words = spoken_words(texts, voice)
    gaps = list(rng.uniform(*gap_range_s, size=len(texts) - 1))
    return build_stream(words, list(texts), gaps, rng, **stream_options)  # type: ignore[arg-type]


def vowel_tone(
    duration_s: float, rng: np.random.Generator, f0: float = 140.0, sample_rate: int = RATE
) -> np.ndarray:
    """A voiced, vowel-like harmonic tone (f0 with formant-shaped harmonics and slight vibrato), -20 dBFS."""
    t = np.arange(round(duration_s * sample_rate)) / sample_rate
    phase = 2 * np.pi * np.cumsum(f0 * (1.0 + 0.02 * np.sin(2 * np.pi * 5.0 * t))) / sample_rate
    out = np.zeros_like(t)
    for k in range(1, int(3500 / f0)):
        freq = k * f0
        formants = sum(1.0 / (1.0 + ((freq - fc) / 120.0) ** 2) for fc in (700.0, 1200.0, 2600.0))
        out += (0.05 + formants) / k**0.5 * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    return set_level_dbfs(out, -20.0)


def tone_bursts(
    bursts: Sequence[tuple[float, float]],
    total_s: float,
    *,
    rng: np.random.Generator | None = None,
    noise: str | None = None,
    noise_dbfs: float = -45.0,
    sample_rate: int = RATE,
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Vowel-like tone bursts at the given (start, end) seconds over silence or ``noise``."""
    rng = rng or np.random.default_rng(0)
    audio = np.zeros(round(total_s * sample_rate), dtype=np.float32)
    for start, end in bursts:
        a, b = round(start * sample_rate), round(end * sample_rate)
        audio[a:b] += vowel_tone((b - a) / sample_rate, rng, f0=float(rng.uniform(100, 220)))[: b - a]
    if noise is not None:
        audio += set_level_dbfs(make_noise(noise, len(audio), rng, sample_rate), noise_dbfs)
    return audio, [(float(s), float(e)) for s, e in bursts]


def wav_header(channels: int, rate: int, data_bytes: int, bits: int = 16) -> bytes:
    """A canonical 44-byte PCM WAV header announcing ``data_bytes`` of audio."""
    block_align = max(channels, 1) * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block_align, block_align, bits)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )
