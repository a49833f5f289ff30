"""Waveform augmentation: the ways real microphones, rooms, speakers and phone lines change speech.

Each effect is a small function ``(audio, sample_rate, rng or parameters) -> audio`` (float32 mono).
:func:`augment_speech` draws a random chain for the dataset generator and returns a compact
description of what it applied (``speed=1.07;rir=0.42;noise=pink@12;tel;level=-27``);
:func:`apply_condition` applies one named test condition; :func:`train_time_augment` is the
cheaper chain the trainer applies on every read of a training clip. Spectrogram masking
(SpecAugment) is not here: the model applies it in ``forward`` while training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soxr

from trainer import noise

Rng = np.random.Generator

LEVEL_RANGE_DBFS = (-45.0, -3.0)
"""Speech level (RMS of the active part) drawn for every clip."""
SNR_RANGE_DB = (0.0, 30.0)
"""Signal-to-noise ratio range of additive noise."""
NOISE_FLOOR_DBFS = (-75.0, -55.0)
"""Microphone self-noise added under everything, so no clip is digital silence."""

GENERATION_NOISES = ("white", "pink", "brown", "hum", "babble", "clatter", "clicks")
TRAIN_TIME_NOISES = ("white", "pink", "brown", "hum", "clicks")  # cheap to generate per read

TEST_CONDITIONS = (
    "clean",
    "snr20",
    "snr10",
    "snr5",
    "snr0",
    "level-45",
    "level-6",
    "telephone",
    "8khz",
    "reverb",
)
"""Named conditions of the held-out (validation/test) clips, one per clip in turn."""


def _f32(audio: np.ndarray) -> np.ndarray:
    return np.asarray(audio, dtype=np.float32)


def speed_perturb(audio: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """Play ``factor`` times faster: tempo, pitch and formants all move (a shorter or longer vocal tract)."""
    if abs(factor - 1.0) < 1e-3:
        return _f32(audio)
    return _f32(soxr.resample(_f32(audio), sample_rate * factor, sample_rate, quality="MQ"))


def _stft(audio: np.ndarray, n_fft: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    padded = np.pad(audio, (n_fft, n_fft + hop))
    count = 1 + (len(padded) - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(count)[:, None]
    return np.fft.rfft(padded[index] * window, axis=1), window


def _istft(spectrum: np.ndarray, window: np.ndarray, hop: int, length: int) -> np.ndarray:
    n_fft = len(window)
    frames = np.fft.irfft(spectrum, n=n_fft, axis=1) * window
    total = hop * (len(frames) - 1) + n_fft
    out = np.zeros(total)
    norm = np.zeros(total)
    for i, frame in enumerate(frames):
        out[i * hop : i * hop + n_fft] += frame
        norm[i * hop : i * hop + n_fft] += window**2
    out /= np.maximum(norm, 1e-8)
    return out[n_fft : n_fft + length]


def vocal_tract_warp(audio: np.ndarray, sample_rate: int, alpha: float) -> np.ndarray:
    """Stretch the spectral envelope by ``alpha`` (≈0.85–1.15) at the same duration and pitch
    period (VTLP-style frequency warping of each STFT frame's magnitude; phase kept)."""
    if abs(alpha - 1.0) < 1e-3 or len(audio) == 0:
        return _f32(audio)
    n_fft, hop = 512, 128
    spectrum, window = _stft(_f32(audio), n_fft, hop)
    bins = np.arange(spectrum.shape[1], dtype=np.float64)
    source = np.clip(bins / alpha, 0, bins[-1])
    magnitude = np.abs(spectrum)
    warped = np.empty_like(magnitude)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, len(bins) - 1)
    frac = source - low
    warped[:] = magnitude[:, low] * (1 - frac) + magnitude[:, high] * frac
    phase = np.exp(1j * np.angle(spectrum))
    return _f32(_istft(warped * phase, window, hop, len(audio)))


def _fft_filter(
    audio: np.ndarray, sample_rate: int, gain_of_hz: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    n = len(audio)
    if n == 0:
        return _f32(audio)
    size = 1 << int(np.ceil(np.log2(max(n, 2))))
    spectrum = np.fft.rfft(audio, size)
    spectrum *= gain_of_hz(np.fft.rfftfreq(size, 1.0 / sample_rate))
    return _f32(np.fft.irfft(spectrum, size)[:n])


def band_limit(audio: np.ndarray, sample_rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """Smooth band-pass (4th-order-like skirts) between ``low_hz`` and ``high_hz``."""

    def gain(freqs: np.ndarray) -> np.ndarray:
        highpass = 1.0 / np.sqrt(1.0 + (low_hz / np.maximum(freqs, 1.0)) ** 8)
        lowpass = 1.0 / np.sqrt(1.0 + (freqs / high_hz) ** 8)
        return highpass * lowpass

    return _fft_filter(audio, sample_rate, gain)


def _mu_law_quantise(audio: np.ndarray, mu: float = 255.0) -> np.ndarray:
    clipped = np.clip(audio, -1.0, 1.0)
    encoded = np.sign(clipped) * np.log1p(mu * np.abs(clipped)) / np.log1p(mu)
    quantised = np.round(encoded * 127.0) / 127.0
    return _f32(np.sign(quantised) * np.expm1(np.abs(quantised) * np.log1p(mu)) / mu)


def resample_through(audio: np.ndarray, sample_rate: int, low_rate: int) -> np.ndarray:
    """Down to ``low_rate`` and back up: everything above low_rate / 2 is gone (an 8 kHz recording)."""
    down = soxr.resample(_f32(audio), sample_rate, low_rate, quality="MQ")
    up = soxr.resample(down, low_rate, sample_rate, quality="MQ")
    return _f32(up[: len(audio)]) if len(up) >= len(audio) else _f32(np.pad(up, (0, len(audio) - len(up))))


def telephone(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """A phone line: 300–3400 Hz band-pass, 8 kHz sampling and G.711 µ-law quantisation."""
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    scale = 0.5 / peak if peak > 0 else 1.0
    narrow = band_limit(audio, sample_rate, 300.0, 3400.0) * scale
    return _f32(_mu_law_quantise(resample_through(narrow, sample_rate, 8000)) / scale)


def room_impulse_response(
    sample_rate: int, rng: Rng, rt60_s: float, direct_to_reverb_db: float | None = None
) -> np.ndarray:
    """Synthetic impulse response: a direct path, a few early reflections, then exponentially
    decaying (slightly low-passed) noise reaching −60 dB after ``rt60_s``, its energy
    ``direct_to_reverb_db`` under the direct path's (drawn between -3.5 and +10.5 dB when None)."""
    length = max(int(rt60_s * sample_rate), 16)
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60_s)
    tail = np.convolve(tail, np.ones(3) / 3.0, mode="same")
    onset = int(rng.uniform(0.002, 0.008) * sample_rate)
    tail[:onset] = 0.0
    response = np.zeros(length)
    response[0] = 1.0
    for _ in range(4):
        position = int(rng.uniform(0.003, 0.03) * sample_rate)
        if position < length:
            response[position] += rng.uniform(-0.6, 0.6)
    direct_to_reverb = rng.uniform(0.3, 1.5)  # (drawn either way: the same rng gives the same room)
    if direct_to_reverb_db is not None:
        direct_to_reverb = 10.0 ** (-direct_to_reverb_db / 20.0)
    response += tail * direct_to_reverb / max(float(np.sqrt(np.sum(tail**2))), 1e-9)
    return _f32(response / np.sqrt(np.sum(response**2)))


def reverberate(
    audio: np.ndarray, sample_rate: int, rng: Rng, rt60_s: float, direct_to_reverb_db: float | None = None
) -> np.ndarray:
    """``audio`` played in a room with reverberation time ``rt60_s`` (same length; tail cut); see
    :func:`room_impulse_response` for ``direct_to_reverb_db``."""
    response = room_impulse_response(sample_rate, rng, rt60_s, direct_to_reverb_db)
    n = len(audio)
    size = 1 << int(np.ceil(np.log2(max(n + len(response), 2))))
    wet = np.fft.irfft(np.fft.rfft(audio, size) * np.fft.rfft(response, size), size)[:n]
    return _f32(wet)


def microphone_colour(audio: np.ndarray, sample_rate: int, rng: Rng) -> np.ndarray:
    """A random microphone/loudspeaker response: low cut, spectral tilt, a presence bump or dip."""
    low_cut = rng.uniform(40.0, 250.0)
    tilt_db_per_octave = rng.uniform(-3.0, 2.0)
    peak_hz = rng.uniform(1500.0, 5000.0)
    peak_db = rng.uniform(-6.0, 6.0)

    def gain(freqs: np.ndarray) -> np.ndarray:
        f = np.maximum(freqs, 1.0)
        highpass = 1.0 / np.sqrt(1.0 + (low_cut / f) ** 4)
        tilt = 10.0 ** (tilt_db_per_octave * np.log2(f / 1000.0) / 20.0)
        bump = 10.0 ** (peak_db * np.exp(-0.5 * (np.log2(f / peak_hz) / 0.5) ** 2) / 20.0)
        return highpass * np.clip(tilt, 0.1, 4.0) * bump

    return _fft_filter(audio, sample_rate, gain)


def clip(audio: np.ndarray, threshold: float) -> np.ndarray:
    """Hard clipping at ±``threshold`` (an overdriven input stage), level restored afterwards."""
    return _f32(np.clip(audio, -threshold, threshold))


def set_speech_level(audio: np.ndarray, dbfs: float) -> np.ndarray:
    """Scale so the active (speech) part has RMS ``dbfs``."""
    level = noise.rms_dbfs(noise.active_part(audio))
    if level <= -199.0:
        return _f32(audio)
    return _f32(audio * 10.0 ** ((dbfs - level) / 20.0))


def pad_and_shift(
    audio: np.ndarray,
    sample_rate: int,
    rng: Rng,
    lead_s: tuple[float, float] = (0.05, 0.35),
    tail_s: tuple[float, float] = (0.08, 0.45),
) -> np.ndarray:
    """Surround ``audio`` with random stretches of silence: where the word sits in the segment moves."""
    lead = int(rng.uniform(*lead_s) * sample_rate)
    tail = int(rng.uniform(*tail_s) * sample_rate)
    return _f32(np.pad(audio, (lead, tail)))


def add_noise(audio: np.ndarray, sample_rate: int, rng: Rng, kind: str, snr_db: float) -> np.ndarray:
    """Additive noise of ``kind`` (see :mod:`trainer.noise`) at ``snr_db`` below the speech."""
    bed = noise.make_noise(kind, len(audio), rng, sample_rate)
    return noise.mix_at_snr(audio, bed, snr_db)


def add_noise_floor(audio: np.ndarray, rng: Rng, dbfs: float) -> np.ndarray:
    """Faint white-ish self-noise at ``dbfs`` RMS."""
    return (
        _f32(audio + noise.set_level_dbfs(noise.pink(len(audio), rng), dbfs)) if len(audio) else _f32(audio)
    )


def finish(audio: np.ndarray) -> np.ndarray:
    """Keep samples inside ±1 (what a sound card would deliver)."""
    return _f32(np.clip(audio, -1.0, 1.0))


@dataclass(frozen=True)
class Augmented:
    audio: np.ndarray
    description: str
    """``;``-separated ``name[=value]`` steps in the order applied."""


def augment_speech(audio: np.ndarray, sample_rate: int, rng: Rng) -> Augmented:
    """Generation-time chain for a training clip: every clip gets a position, a microphone and a level;
    most get some of speed, vocal-tract warp, room, noise, phone line / 8 kHz and clipping."""
    steps: list[str] = []
    x = _f32(audio)
    if rng.random() < 0.6:
        factor = float(rng.uniform(0.88, 1.14))
        x = speed_perturb(x, sample_rate, factor)
        steps.append(f"speed={factor:.2f}")
    if rng.random() < 0.35:
        alpha = float(rng.uniform(0.86, 1.14))
        x = vocal_tract_warp(x, sample_rate, alpha)
        steps.append(f"vtlp={alpha:.2f}")
    x = pad_and_shift(x, sample_rate, rng)
    steps.append(f"shift={len(x) / sample_rate:.2f}s")
    if rng.random() < 0.3:
        rt60 = float(rng.uniform(0.15, 0.9))
        x = reverberate(x, sample_rate, rng, rt60)
        steps.append(f"rir={rt60:.2f}")
    x = microphone_colour(x, sample_rate, rng)
    steps.append("mic")
    if rng.random() < 0.55:
        kind = str(rng.choice(GENERATION_NOISES))
        snr = float(rng.uniform(*SNR_RANGE_DB))
        x = add_noise(x, sample_rate, rng, kind, snr)
        steps.append(f"noise={kind}@{snr:.0f}")
    channel = rng.random()
    if channel < 0.12:
        x = telephone(x, sample_rate)
        steps.append("tel")
    elif channel < 0.22:
        x = resample_through(x, sample_rate, 8000)
        steps.append("8khz")
    level = float(rng.uniform(*LEVEL_RANGE_DBFS))
    x = set_speech_level(x, level)
    steps.append(f"level={level:.0f}")
    x = add_noise_floor(x, rng, float(rng.uniform(*NOISE_FLOOR_DBFS)))
    if rng.random() < 0.06:
        threshold = float(rng.uniform(0.05, 0.4))
        x = set_speech_level(x, float(rng.uniform(-12.0, -3.0)))
        x = clip(x, threshold)
        steps.append(f"clip={threshold:.2f}")
    return Augmented(finish(x), ";".join(steps))


def apply_condition(audio: np.ndarray, sample_rate: int, rng: Rng, condition: str) -> Augmented:
    """One named held-out condition (see :data:`TEST_CONDITIONS`) on a padded clip at −25 dBFS
    unless the condition sets the level; noise conditions use pink, babble or clatter in turn."""
    if condition not in TEST_CONDITIONS:
        raise ValueError(f"unknown condition {condition!r} (known: {', '.join(TEST_CONDITIONS)})")
    x = pad_and_shift(_f32(audio), sample_rate, rng)
    level = -25.0
    description = condition
    if condition.startswith("snr"):
        kind = str(rng.choice(("pink", "babble", "clatter", "white")))
        x = add_noise(x, sample_rate, rng, kind, float(condition[3:]))
        description = f"{condition};noise={kind}"
    elif condition.startswith("level"):
        level = float(condition[5:])
    elif condition == "telephone":
        x = telephone(x, sample_rate)
    elif condition == "8khz":
        x = resample_through(x, sample_rate, 8000)
    elif condition == "reverb":
        x = reverberate(x, sample_rate, rng, float(rng.uniform(0.3, 0.8)))
    x = add_noise_floor(set_speech_level(x, level), rng, -70.0)
    return Augmented(finish(x), description)


def train_time_augment(audio: np.ndarray, sample_rate: int, rng: Rng) -> np.ndarray:
    """Cheap random chain applied by the trainer on every read of a training clip: level, shift,
    speed, noise, room, phone band and clipping, each with some probability (about half the reads
    change little, so the clean generation-time variety still shows)."""
    x = _f32(audio)
    if len(x) == 0:
        return x
    if rng.random() < 0.3:
        x = speed_perturb(x, sample_rate, float(rng.uniform(0.9, 1.1)))
    if rng.random() < 0.5:
        shift = int(rng.uniform(-0.1, 0.1) * sample_rate)
        x = np.roll(x, shift) if abs(shift) < len(x) // 4 else x
    if rng.random() < 0.15:
        x = reverberate(x, sample_rate, rng, float(rng.uniform(0.15, 0.7)))
    if rng.random() < 0.35:
        kind = str(rng.choice(TRAIN_TIME_NOISES))
        x = add_noise(x, sample_rate, rng, kind, float(rng.uniform(*SNR_RANGE_DB)))
    if rng.random() < 0.08:
        x = telephone(x, sample_rate)
    if rng.random() < 0.5:
        x = set_speech_level(x, float(rng.uniform(*LEVEL_RANGE_DBFS)))
    if rng.random() < 0.03:
        x = clip(x, float(rng.uniform(0.1, 0.5)) * float(np.max(np.abs(x)) or 1.0))
    return finish(x)
