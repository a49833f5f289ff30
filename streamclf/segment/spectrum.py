"""One frame's power and spectrum, in the bands the rest of the segmenter reads (vectorised numpy).

* the power and the windowed power spectrum, neither counting more than before the high-pass: the
  filter takes out an offset and hum, and the low ringing it leaves after a click was never in the
  input;
* the spectrum summed into mel-spaced bands (what the background is learned in);
* the share of the energy in the voiced band (80-1500 Hz), where voiced speech has most of its energy
  and clatter, clicks and hiss have little;
* the flatness of the high band: high for a hiss (a fricative, a fan), low for ringing tones (a clink).
"""

from __future__ import annotations

import numpy as np

from .tuning import Tuning


class BandLayout:
    """The FFT bins of one frame length at one rate, grouped as the segmenter reads them."""

    def __init__(self, tuning: Tuning, sample_rate: int, frame_samples: int) -> None:
        freqs = np.fft.rfftfreq(frame_samples, 1.0 / sample_rate)
        low, high = tuning.voiced_band_hz
        self._voiced_bins = (freqs >= low) & (freqs <= high)
        self._hiss_from = int(np.searchsorted(freqs, tuning.hiss_band_hz))
        self._hiss_parts = tuning.hiss_parts
        self._band_bins, self._band_starts = _mel_bands(freqs, sample_rate, tuning)
        self.top = min(tuning.top_bands, len(self._band_starts))
        """How many of the most raised bands a frame's excess is the mean of."""
        band_low_edges = freqs[self._band_bins][self._band_starts]
        self.voiced_bands = max(1, int(np.sum(band_low_edges[1:] <= high)))
        """The first this many bands make up the voiced band."""
        self._window = np.hanning(frame_samples).astype(np.float32)

    def power_and_spectrum(
        self, frame: np.ndarray, unfiltered: np.ndarray | None
    ) -> tuple[float, np.ndarray]:
        """Mean power and windowed power spectrum of ``frame``, with ``unfiltered`` (the frame before
        the high-pass) as the most any of them may be."""
        power = float(np.dot(frame, frame)) / max(len(frame), 1)
        spectrum = np.abs(np.fft.rfft(frame * self._window)) ** 2
        if unfiltered is not None:
            power = min(power, float(np.dot(unfiltered, unfiltered)) / max(len(unfiltered), 1))
            np.minimum(spectrum, np.abs(np.fft.rfft(unfiltered * self._window)) ** 2, out=spectrum)
        return power, spectrum

    def bands(self, spectrum: np.ndarray) -> np.ndarray:
        """Power in each mel band (never 0)."""
        return np.add.reduceat(spectrum[self._band_bins], self._band_starts) + 1e-12

    def voiced_share(self, spectrum: np.ndarray) -> float:
        """Share of the frame's energy in the voiced band, 0..1."""
        total = float(spectrum.sum())
        return float(spectrum[self._voiced_bins].sum()) / total if total > 0.0 else 0.0

    def high_band_flatness(self, spectrum: np.ndarray) -> float:
        """Spectral flatness above the hiss band's start, 0..1 (see :func:`flatness`)."""
        return flatness(spectrum[self._hiss_from :], self._hiss_parts)


def flatness(power: np.ndarray, parts: int) -> float:
    """Spectral flatness of ``power`` (geometric over arithmetic mean) in ``parts`` equal sub-bands,
    averaged weighted by each sub-band's power: 0 for pure tones, about 0.56 for white noise.

    Within a narrow sub-band a hiss's slope hardly matters, so a fricative's rising spectrum still
    reads as noise-like; a ringing mode dominates its sub-band and reads as a tone.
    """
    width = len(power) // parts
    if width < 2:
        return 0.0
    split = power[: width * parts].reshape(parts, width).astype(np.float64)
    mean = split.mean(axis=1)
    total = float(mean.sum())
    if total <= 0.0:
        return 0.0
    geometric = np.exp(np.mean(np.log(np.maximum(split, total * 1e-12)), axis=1))
    return float(np.sum(geometric)) / total


def _mel_bands(freqs: np.ndarray, sample_rate: int, tuning: Tuning) -> tuple[np.ndarray, np.ndarray]:
    """FFT bin indices inside the band range and the start of each of (up to) ``tuning.bands`` bands."""
    low, high = tuning.band_range_hz[0], min(tuning.band_range_hz[1], sample_rate / 2.0)
    bins = np.flatnonzero((freqs >= low) & (freqs <= high))
    mel = 2595.0 * np.log10(1.0 + freqs[bins] / 700.0)
    edges = np.linspace(mel[0], mel[-1] + 1e-6, tuning.bands + 1)
    starts = np.unique(np.searchsorted(mel, edges[:-1]))
    return bins, starts[starts < len(bins)]
