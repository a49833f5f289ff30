"""Log-mel features in numpy only (no torch, no transformers).

Shared by the transformers feature extractor and by any backend that runs without torch
(ONNX Runtime). One frame every ``hop_length`` samples; features are normalised per
utterance (mean 0, unit variance over the whole spectrogram), so the level of the input
does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["LogMelSpec", "log_mel", "mel_filterbank", "num_frames"]


@dataclass(frozen=True)
class LogMelSpec:
    """Parameters of the log-mel front end."""

    sample_rate: int = 16000
    """Input sample rate in Hz."""
    n_fft: int = 512
    """FFT size in samples."""
    win_length: int = 400
    """Analysis window length in samples (Hann), ≤ n_fft."""
    hop_length: int = 160
    """Frame step in samples."""
    n_mels: int = 40
    """Number of mel bands."""
    f_min: float = 20.0
    """Lowest band edge in Hz."""
    f_max: float = 8000.0
    """Highest band edge in Hz (≤ sample_rate / 2)."""
    top_db: float = 80.0
    """Dynamic range kept below the loudest band, in dB; quieter values are raised to it."""


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def mel_filterbank(spec: LogMelSpec) -> np.ndarray:
    """Triangular mel filters, shape (n_fft // 2 + 1, n_mels), float32, area-normalised."""
    n_bins = spec.n_fft // 2 + 1
    fft_hz = np.linspace(0.0, spec.sample_rate / 2.0, n_bins)
    edges_mel = np.linspace(
        _hz_to_mel(np.array(spec.f_min)), _hz_to_mel(np.array(spec.f_max)), spec.n_mels + 2
    )
    edges_hz = _mel_to_hz(edges_mel)
    lower, centre, upper = edges_hz[:-2], edges_hz[1:-1], edges_hz[2:]
    rising = (fft_hz[:, None] - lower[None, :]) / (centre - lower)[None, :]
    falling = (upper[None, :] - fft_hz[:, None]) / (upper - centre)[None, :]
    weights = np.clip(np.minimum(rising, falling), 0.0, None)
    weights *= (2.0 / (upper - lower))[None, :]
    weights.setflags(write=False)
    return weights.astype(np.float32)


@lru_cache(maxsize=8)
def _filter_bands(spec: LogMelSpec) -> tuple[tuple[int, int, np.ndarray], ...]:
    """Each filter's non-zero bin range and weights (filters are narrow: about 2 % of the bins each)."""
    weights = mel_filterbank(spec)
    bands = []
    for column in weights.T:
        nonzero = np.flatnonzero(column)
        low, high = (int(nonzero[0]), int(nonzero[-1]) + 1) if len(nonzero) else (0, 0)
        bands.append((low, high, np.ascontiguousarray(column[low:high])))
    return tuple(bands)


def _apply_filterbank(power: np.ndarray, spec: LogMelSpec) -> np.ndarray:
    """``power @ mel_filterbank(spec)`` band by band: small products that never start numpy's BLAS
    thread pool, which on a busy machine costs milliseconds per call."""
    mel = np.empty((power.shape[0], spec.n_mels), dtype=np.float32)
    for index, (low, high, weights) in enumerate(_filter_bands(spec)):
        mel[:, index] = power[:, low:high] @ weights if high > low else 0.0
    return mel


@lru_cache(maxsize=8)
def _window(spec: LogMelSpec) -> np.ndarray:
    win = np.zeros(spec.n_fft, dtype=np.float32)
    offset = (spec.n_fft - spec.win_length) // 2
    win[offset : offset + spec.win_length] = np.hanning(spec.win_length + 1)[:-1]
    win.setflags(write=False)
    return win


def num_frames(num_samples: int, spec: LogMelSpec) -> int:
    """Frames produced for ``num_samples`` input samples (centred framing, at least one)."""
    return 1 + max(num_samples, 0) // spec.hop_length


def _frames(audio: np.ndarray, spec: LogMelSpec) -> np.ndarray:
    half = spec.n_fft // 2
    padded = np.pad(audio, (half, half), mode="constant")
    count = num_frames(len(audio), spec)
    needed = (count - 1) * spec.hop_length + spec.n_fft
    if len(padded) < needed:
        padded = np.pad(padded, (0, needed - len(padded)))
    strides = (padded.strides[0] * spec.hop_length, padded.strides[0])
    return np.lib.stride_tricks.as_strided(
        padded, shape=(count, spec.n_fft), strides=strides, writeable=False
    )


def log_mel(audio: np.ndarray, spec: LogMelSpec | None = None) -> np.ndarray:
    """Per-utterance normalised log-mel spectrogram of mono audio, shape (frames, n_mels), float32."""
    spec = spec or LogMelSpec()
    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    frames = _frames(samples, spec) * _window(spec)
    power = np.abs(np.fft.rfft(frames, axis=1)).astype(np.float32) ** 2
    mel = _apply_filterbank(power, spec)
    db = 10.0 * np.log10(np.maximum(mel, 1e-20))
    db = np.maximum(db, db.max() - spec.top_db)
    std = float(db.std())
    normalised = (db - db.mean()) / max(std, 1.0)
    return normalised.astype(np.float32)
