"""Noise generators and level helpers for test audio (torch-free).

Every generator takes the sample count and a ``np.random.Generator`` and returns float32 at
roughly -20 dBFS RMS; use :func:`set_level_dbfs` or :func:`mix_at_snr` to place it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import soxr

_DEFAULT_DBFS = -20.0
_SILENT_DBFS = -200.0


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level of ``x`` in dB relative to full scale (an RMS of 1.0 is 0 dBFS); silence is -200."""
    if len(x) == 0:
        return _SILENT_DBFS
    power = float(np.mean(np.asarray(x, dtype=np.float64) ** 2))
    return 10.0 * np.log10(power) if power > 0.0 else _SILENT_DBFS


def set_level_dbfs(x: np.ndarray, dbfs: float) -> np.ndarray:
    """``x`` scaled so its RMS is ``dbfs`` (silence stays silence)."""
    level = rms_dbfs(x)
    if level <= _SILENT_DBFS:
        return np.asarray(x, dtype=np.float32).copy()
    return (np.asarray(x, dtype=np.float64) * 10.0 ** ((dbfs - level) / 20.0)).astype(np.float32)


def active_part(speech: np.ndarray, sample_rate_hint: int = 16000, below_peak_db: float = 40.0) -> np.ndarray:
    """The 10 ms frames of ``speech`` within ``below_peak_db`` of its loudest frame (its "active" part)."""
    hop = max(1, sample_rate_hint // 100)
    count = len(speech) // hop
    if count == 0:
        return np.asarray(speech)
    frames = np.asarray(speech[: count * hop], dtype=np.float64).reshape(count, hop)
    power = np.mean(frames**2, axis=1)
    keep = power >= power.max() * 10.0 ** (-below_peak_db / 10.0)
    return frames[keep].ravel()


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech`` plus ``noise`` scaled so that speech-active RMS / noise RMS is ``snr_db``.

    ``noise`` is tiled or cut to the length of ``speech``. The sum may exceed ±1; callers clip if needed.
    """
    if len(noise) == 0:
        raise ValueError("noise is empty")
    reps = int(np.ceil(len(speech) / len(noise)))
    bed = np.tile(noise, reps)[: len(speech)]
    speech_level = rms_dbfs(active_part(speech))
    scaled = set_level_dbfs(bed, speech_level - snr_db)
    return (np.asarray(speech, dtype=np.float32) + scaled).astype(np.float32)


def _shaped(n: int, rng: np.random.Generator, gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """White noise shaped in the frequency domain by ``gain(relative_frequency)``."""
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1] if n > 1 else 1.0
    shaped = np.fft.irfft(spectrum * gain(freqs), n)
    return set_level_dbfs(shaped, _DEFAULT_DBFS)


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian white noise."""
    return set_level_dbfs(rng.standard_normal(n), _DEFAULT_DBFS) if n > 0 else np.zeros(0, np.float32)


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f noise (-3 dB per octave)."""
    return _shaped(n, rng, lambda f: 1.0 / np.sqrt(f))


def brown(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f² noise (-6 dB per octave), without its DC drift."""
    return _shaped(n, rng, lambda f: 1.0 / np.maximum(f, 20.0 / max(n, 1)))


def hum(n: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Mains hum: 50 or 60 Hz with decaying odd and even harmonics and a little hiss."""
    t = np.arange(n) / sample_rate
    base = float(rng.choice([50.0, 60.0])) * (1.0 + rng.uniform(-0.002, 0.002))
    out = np.zeros(n)
    for k in range(1, 8):
        if base * k < sample_rate / 2:
            out += rng.uniform(0.3, 1.0) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 2 * np.pi))
    out += 0.01 * rng.standard_normal(n)
    return set_level_dbfs(out, _DEFAULT_DBFS) if n > 0 else np.zeros(0, np.float32)


def clicks(n: int, rng: np.random.Generator, sample_rate: int = 16000, rate_hz: float = 3.0) -> np.ndarray:
    """Sparse short clicks (keyboard, relay): 1-3 ms bursts at random times, about ``rate_hz`` a second."""
    out = np.zeros(n)
    count = rng.poisson(rate_hz * n / sample_rate)
    for start in rng.integers(0, max(n, 1), size=count):
        length = int(sample_rate * rng.uniform(0.001, 0.003))
        burst = rng.standard_normal(length) * np.exp(-np.arange(length) / max(length / 4, 1))
        stop = min(n, start + length)
        out[start:stop] += burst[: stop - start] * rng.uniform(0.2, 1.0)
    out += 1e-4 * rng.standard_normal(n)
    return set_level_dbfs(out, _DEFAULT_DBFS) if n > 0 else np.zeros(0, np.float32)


def _clink(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """One dish/cutlery hit: a few inharmonic ringing modes (1.5-7 kHz) with a noisy attack."""
    length = int(sample_rate * rng.uniform(0.08, 0.4))
    t = np.arange(length) / sample_rate
    out = np.zeros(length)
    for _ in range(rng.integers(2, 6)):
        freq = rng.uniform(1500.0, min(7000.0, sample_rate * 0.45))
        decay = rng.uniform(0.015, 0.12)
        out += (
            rng.uniform(0.2, 1.0)
            * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
            * np.exp(-t / decay)
        )
    attack = int(sample_rate * 0.004)
    out[:attack] += rng.standard_normal(attack) * np.exp(-np.arange(attack) / (attack / 4))
    return out


def clatter(n: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Kitchen-like noise: dish and cutlery clinks in bursts over a broadband bed (tap water, fan)."""
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    bed = _shaped(n, rng, lambda f: 1.0 / np.sqrt(np.maximum(f, 0.01))).astype(np.float64) * 0.35
    out = bed.copy()
    seconds = n / sample_rate
    t = 0.0
    while t < seconds:
        t += float(rng.exponential(0.6))
        # sometimes a flurry of hits (stacking plates), sometimes a single one
        for _ in range(int(rng.choice([1, 1, 2, 3, 5]))):
            start = int((t + rng.uniform(0, 0.25)) * sample_rate)
            if start >= n:
                break
            hit = _clink(rng, sample_rate) * 10.0 ** (rng.uniform(-6.0, 6.0) / 20.0) * 0.1
            stop = min(n, start + len(hit))
            out[start:stop] += hit[: stop - start]
    return set_level_dbfs(out, _DEFAULT_DBFS)


_BABBLE_WORDS = (
    "the",
    "kitchen",
    "dinner",
    "tomorrow",
    "weather",
    "really",
    "think",
    "about",
    "another",
    "people",
    "morning",
    "actually",
    "yesterday",
    "because",
    "maybe",
    "station",
    "after",
    "water",
    "seven",
    "table",
    "window",
    "going",
    "coffee",
    "something",
    "everyone",
    "market",
    "ready",
)


@functools.lru_cache(maxsize=4)
def _babble_pool(sample_rate: int) -> tuple[np.ndarray, ...]:
    """A pool of TTS words from several voices (generated once per process)."""
    from .tts import Voice, available_engines, synthesize

    voices = [
        Voice("espeak-ng", v, rate=r, pitch=p)
        for v, r, p in (
            ("en-us+m3", 170, 40),
            ("en-gb+f2", 180, 60),
            ("en-us+f4", 160, 70),
            ("en-gb-x-rp+m1", 175, 30),
            ("en-029+m5", 165, 50),
            ("en-us+f1", 185, 55),
        )
    ]
    if "flite" in available_engines():
        voices += [Voice("flite", "slt"), Voice("flite", "rms"), Voice("flite", "awb")]
    pool = []
    for i, word in enumerate(_BABBLE_WORDS):
        pool.append(synthesize(word, voices[i % len(voices)], sample_rate))
        pool.append(synthesize(word, voices[(i + 3) % len(voices)], sample_rate))
    return tuple(pool)


def _talker(n: int, rng: np.random.Generator, pool: tuple[np.ndarray, ...], sample_rate: int) -> np.ndarray:
    out = np.zeros(n)
    pos = -int(rng.uniform(0.0, 2.0) * sample_rate)  # already talking when the clip starts
    while pos < n:
        word = pool[int(rng.integers(len(pool)))]
        factor = float(rng.uniform(0.85, 1.15))  # speed/pitch shift of the voice
        word = soxr.resample(word, sample_rate, int(sample_rate * factor))
        start = max(pos, 0)
        piece = word[start - pos :]
        stop = min(n, start + len(piece))
        out[start:stop] += piece[: stop - start] * 10.0 ** (rng.uniform(-4.0, 4.0) / 20.0)
        pos += len(word) + int(sample_rate * rng.uniform(0.02, 0.25))
    return out


def babble(n: int, rng: np.random.Generator, sample_rate: int = 16000, talkers: int = 8) -> np.ndarray:
    """Several overlapped TTS talkers, degraded (low-passed and smeared like a distant room)."""
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    pool = _babble_pool(sample_rate)
    mix = sum((_talker(n, rng, pool, sample_rate) for _ in range(talkers)), np.zeros(n))
    # room smear: convolve with a short exponentially decaying noise tail (about 0.3 s)
    tail_len = int(0.3 * sample_rate)
    tail = rng.standard_normal(tail_len) * np.exp(-np.arange(tail_len) / (0.06 * sample_rate))
    tail[0] += 3.0
    size = n + tail_len
    smeared = np.fft.irfft(np.fft.rfft(mix, size) * np.fft.rfft(tail, size), size)[:n]
    # distance: gentle low-pass above ~3 kHz
    spectrum = np.fft.rfft(smeared)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    spectrum *= 1.0 / (1.0 + (freqs / 3000.0) ** 2)
    return set_level_dbfs(np.fft.irfft(spectrum, n), _DEFAULT_DBFS)


def make_noise(kind: str, n: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Noise of ``kind`` by name: white, pink, brown, hum, clicks, clatter or babble."""
    if kind in ("white", "pink", "brown"):
        return {"white": white, "pink": pink, "brown": brown}[kind](n, rng)
    generators = {"hum": hum, "clicks": clicks, "clatter": clatter, "babble": babble}
    if kind not in generators:
        raise ValueError(f"unknown noise {kind!r} (known: white, pink, brown, {', '.join(generators)})")
    return generators[kind](n, rng, sample_rate)


NOISE_KINDS = ("white", "pink", "brown", "hum", "clicks", "clatter", "babble")
