"""Streams of spoken words with known boundaries, for segmenter tests and benchmarks (torch-free)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .noise import active_part, make_noise, mix_at_snr, rms_dbfs, set_level_dbfs
from .tts import Voice


@dataclass(frozen=True)
class WordTruth:
    text: str
    start: float
    """Seconds from the stream start to the first sample of the (trimmed) word."""
    end: float
    """Seconds from the stream start to just after the word's last sample."""


@dataclass(frozen=True)
class Stream:
    audio: np.ndarray
    """float32 mono, clipped to ±1."""
    sample_rate: int
    words: tuple[WordTruth, ...]

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


def build_stream(
    words: Sequence[np.ndarray],
    texts: Sequence[str],
    gaps_s: Sequence[float],
    rng: np.random.Generator,
    *,
    lead_s: float = 0.5,
    tail_s: float = 1.0,
    level_dbfs: float | Sequence[float] = -20.0,
    noise: str | None = None,
    snr_db: float = 20.0,
    sample_rate: int = 16000,
) -> Stream:
    """Words (trimmed float32 at ``sample_rate``) laid out with silence between them.

    ``gaps_s`` has one gap fewer than ``words``. ``level_dbfs`` sets each word's RMS over its
    active part (one value for all or one per word). With ``noise`` (a name from
    :data:`trainer.noise.NOISE_KINDS`) the whole stream gets that noise at ``snr_db`` below the
    speech's active level.
    """
    if len(words) != len(texts):
        raise ValueError(f"{len(words)} words but {len(texts)} texts")
    if len(words) and len(gaps_s) != len(words) - 1:
        raise ValueError(f"{len(words)} words need {len(words) - 1} gaps, got {len(gaps_s)}")
    levels = [float(level_dbfs)] * len(words) if isinstance(level_dbfs, (int, float)) else list(level_dbfs)
    if len(levels) != len(words):
        raise ValueError(f"{len(words)} words but {len(levels)} levels")
    lead = round(lead_s * sample_rate)
    gaps = [round(g * sample_rate) for g in gaps_s]
    total = lead + sum(len(w) for w in words) + sum(gaps) + round(tail_s * sample_rate)
    speech = np.zeros(total, dtype=np.float32)
    truths = []
    pos = lead
    for i, (word, text, level) in enumerate(zip(words, texts, levels, strict=True)):
        gain_db = level - rms_dbfs(active_part(word, sample_rate))
        speech[pos : pos + len(word)] = word * np.float32(10.0 ** (gain_db / 20.0))
        truths.append(WordTruth(text, pos / sample_rate, (pos + len(word)) / sample_rate))
        pos += len(word) + (gaps[i] if i < len(gaps) else 0)
    audio = speech
    if noise is not None:
        bed = make_noise(noise, total, rng, sample_rate)
        if len(words):
            audio = mix_at_snr(speech, bed, snr_db)
        else:
            audio = set_level_dbfs(bed, float(np.mean(levels)) - snr_db if levels else -30.0)
    return Stream(np.clip(audio, -1.0, 1.0).astype(np.float32), sample_rate, tuple(truths))


def write_wav(path: str | Path, stream: Stream) -> None:
    """The stream as 16-bit PCM WAV."""
    sf.write(str(path), stream.audio, stream.sample_rate, subtype="PCM_16")


COMMAND_WORDS = (
    "yes",
    "no",
    "up",
    "down",
    "left",
    "right",
    "on",
    "off",
    "stop",
    "go",
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "cancel",
    "lights",
    "music",
    "pause",
)
"""Short command words: 150-800 ms in the voices below."""

#: espeak-ng variants that are not plain voiced speech (whispers, croaks, robot effects) are left out
#: of :func:`speaking_voices`; they are still in :func:`trainer.tts.list_voices`.
_ODD_VARIANTS = ("whisper", "whisperf", "croak", "Demonic", "UniRobot", "anikaRobot", "klatt")


def speaking_voices(
    rng: np.random.Generator, count: int, engines: Sequence[str] = ("espeak-ng", "flite")
) -> list[Voice]:
    """``count`` distinct voices drawn from the installed ``engines``, with random rate and pitch."""
    from .tts import list_voices

    pool = [
        v for v in list_voices() if v.engine in engines and not any(odd in v.name for odd in _ODD_VARIANTS)
    ]
    by_engine = {e: [v for v in pool if v.engine == e] for e in engines}
    chosen: list[Voice] = []
    for i in range(count):
        engine = [e for e in engines if by_engine.get(e)][i % len([e for e in engines if by_engine.get(e)])]
        base = by_engine[engine][int(rng.integers(len(by_engine[engine])))]
        if engine == "espeak-ng":
            chosen.append(
                Voice(base.engine, base.name, int(rng.integers(130, 230)), int(rng.integers(20, 80)))
            )
        else:
            chosen.append(Voice(base.engine, base.name, int(rng.integers(80, 130))))
    return chosen
