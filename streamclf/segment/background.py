"""What the background sounds like: its floor, its noise peaks, its spectrum and its kind.

Two views of how far a frame stands out of the background, each against its own noise peak:

* **level**: the frame's level over an adaptive noise floor. The floor falls quickly to quieter
  frames, rises slowly through louder ones, and jumps up to the quietest frame of the last few
  seconds when the noise got louder. The level peak is a high quantile of the non-speech frames'
  height over the floor: fluctuating noise widens the margin.
* **spectrum**: the mean dB by which the frame's most raised mel bands stand over the background's
  mean spectrum, learned from frames within the background's usual level. A near talker raises a
  few bands far over coloured noise or distant murmur where the whole-band level barely moves.

A frame is *loud* when either view clears its peak, *strong* when one clears it with some dB to
spare (more over voice-like background). The share of the background's energy in the voiced band
says what kind it is (:class:`BackgroundKind`). A sound that stays loud and steady for seconds is a
new background (a fan switched on): the model starts over on it and says so.

An open candidate's frames may be speech: what they teach is provisional. The candidate's own frames
are judged with it (a spectrum frozen for the length of a candidate made the murmur around it stand
out, and lost words over babble), while what was learned before is kept aside: confirmation returns
to it exactly, a drop keeps what the candidate taught (``candidate_opens``, ``candidate_confirmed``,
``candidate_dropped``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .spectrum import BandLayout
from .steady import BusyWindow, SteadySound, WindowMinimum
from .tuning import PROFILES, BackgroundKind, Profile, Tuning


class StandOut(NamedTuple):
    """How far one frame stands out of the background (a tuple: one is made per frame)."""

    above_floor_db: float
    band_excess_db: float
    """Mean dB of its most raised bands over the background's spectrum."""
    loud: bool
    strong: bool
    low_band_excess_db: float
    """dB by which its voiced band stands over the background's."""


@dataclass(frozen=True)
class Learned:
    """What the model has learned of the noise from its frames (the floor follows every frame)."""

    level_peak_db: float
    spectrum_peak_db: float
    spectrum: np.ndarray
    power: float


class BackgroundModel:
    def __init__(self, tuning: Tuning, layout: BandLayout, frames_per_s: float, margin_db: float) -> None:
        t = self._t = tuning
        self._layout = layout
        self._margin_db = margin_db
        self._rise = t.floor_rise_db_per_s / frames_per_s
        self._warm_up_frames = round(t.warm_up_s * frames_per_s)
        self._warm_up_rise = t.warm_up_rise_db_per_s / frames_per_s
        self._cold_frames = max(1, round(t.cold_start_s * frames_per_s))
        self._spectrum_rate = 1.0 / (t.spectrum_time_s * frames_per_s)
        self._steady = SteadySound(tuning, frames_per_s)
        self._minimum = WindowMinimum(tuning, frames_per_s)
        self._busy = BusyWindow(tuning, frames_per_s)
        self.reset()

    def reset(self) -> None:
        self.floor_db: float | None = None
        self.level_peak_db = 0.0
        self.spectrum_peak_db = 0.0
        self.voiced_share = 0.0
        """Running mean of the non-speech frames' share of energy in the voiced band."""
        self._spectrum: np.ndarray | None = None  # band powers, running mean
        self._power = 0.0  # frame power, running mean over the same frames
        self._learned = 0
        self._share_frames = 0
        self._frames = 0
        self._committed: Learned | None = None
        """While a candidate is open: what was learned before it."""
        self._steady.reset()
        self._minimum.reset()
        self._busy.reset()

    # --- the kind of background -------------------------------------------------------------------

    @property
    def voice_likeness(self) -> float:
        """0 while at most half the background's energy is in the voiced band, 1 from 90 % (babble)."""
        t = self._t
        return min(max((self.voiced_share - t.murmur_from_share) / t.murmur_share_span, 0.0), 1.0)

    @property
    def kind(self) -> BackgroundKind:
        if self.voice_likeness >= self._t.murmur_likeness:
            return BackgroundKind.MURMUR
        if self.floor_db is None or self.floor_db < self._t.quiet_floor_dbfs:
            return BackgroundKind.QUIET
        return BackgroundKind.STATIONARY

    @property
    def profile(self) -> Profile:
        return PROFILES[self.kind]

    # --- judging a frame --------------------------------------------------------------------------

    def stand_out(self, energy_db: float, power: float, bands: np.ndarray) -> StandOut:
        """How far a frame stands out. In the cold start the frame is first taken into the background:
        nothing is known of it yet, so no early frame can stand far above it."""
        t = self._t
        if self.floor_db is None:
            self.floor_db = energy_db
        if self._spectrum is None:
            self._spectrum = bands.copy()
        if self._frames < self._cold_frames:
            self._learn_spectrum(bands, power)
        excess = self._excess(bands)
        above = energy_db - self.floor_db
        cold = t.cold_start_db * max(1.0 - self._frames / self._cold_frames, 0.0)
        spectrum_margin = max(self._margin_db, self.spectrum_peak_db + t.noise_peak_margin_db) + cold
        loud = (above >= self._level_margin_db() + cold or excess >= spectrum_margin) and (
            energy_db >= t.absolute_min_dbfs
        )
        babble = self.voice_likeness
        peak_margin = t.noise_peak_margin_db
        level_strong = self.level_peak_db + peak_margin + t.level_strong_db + t.level_babble_db * babble
        spectrum_strong = (
            self.spectrum_peak_db + peak_margin + t.spectrum_strong_db + t.spectrum_babble_db * babble
        )
        spectrum_is_strong = excess >= spectrum_strong + cold and above >= t.strong_min_above_db
        strong = loud and (above >= level_strong + cold or spectrum_is_strong)
        low = self._layout.voiced_bands
        low_excess = 10.0 * float(np.log10(bands[:low].sum() / self._spectrum[:low].sum()))
        return StandOut(above, excess, loud, strong, low_excess)

    def audible(self, energy_db: float, bands: np.ndarray) -> bool:
        """Whether a frame stands out of the noise at all (an utterance's soft edges)."""
        t = self._t
        if self.floor_db is None or self._spectrum is None or energy_db < t.absolute_min_dbfs:
            return False
        if energy_db - self.floor_db >= max(t.audible_margin_db, self.level_peak_db + t.noise_peak_margin_db):
            return True
        return self._excess(bands) >= max(t.audible_margin_db, self.spectrum_peak_db + t.noise_peak_margin_db)

    def _excess(self, bands: np.ndarray) -> float:
        assert self._spectrum is not None
        ratios = bands / self._spectrum
        top = self._layout.top
        return float(np.mean(10.0 * np.log10(np.partition(ratios, len(ratios) - top)[-top:])))

    def _level_margin_db(self) -> float:
        return max(self._margin_db, self.level_peak_db + self._t.noise_peak_margin_db)

    # --- learning from a judged frame -------------------------------------------------------------

    def learn(self, energy_db: float, bands: np.ndarray, band_excess_db: float, voiced_share: float,
              speech: bool, learn_noise: bool) -> bool:
        """Adapt to a frame once the segmenter has judged it. ``learn_noise`` False: the frame belongs
        to a confirmed utterance. True when the background stepped up to a new steady sound: the model
        has started over on it, and what looked like speech since was that sound."""
        assert self.floor_db is not None
        t = self._t
        cold = self._frames < self._cold_frames
        if energy_db <= t.no_signal_dbfs < self.floor_db:
            return False  # digital silence teaches nothing once a background was heard
        new_floor = self._steady.step(energy_db, self.floor_db, self._level_margin_db())
        if new_floor is not None:
            self.reset()
            self.floor_db = new_floor
            return True
        warming_up = self._frames <= self._warm_up_frames
        self._follow_floor(energy_db, cold or (warming_up and learn_noise and not speech))
        self._frames += 1
        rebase = self._minimum.step(energy_db)
        if rebase is not None:
            self._rebase(rebase)
        busy = not learn_noise or speech
        if self._note_busy(busy) or not busy:
            above = energy_db - self.floor_db
            warm = self._frames <= self._warm_up_frames
            self._learn_noise(energy_db, above, bands, band_excess_db, voiced_share, cold, warm, busy)
        return False

    def _follow_floor(self, energy_db: float, fast: bool) -> None:
        assert self.floor_db is not None
        if energy_db < self.floor_db:
            self.floor_db += self._t.floor_fall * (energy_db - self.floor_db)
        else:
            self.floor_db += min(self._warm_up_rise if fast else self._rise, energy_db - self.floor_db)

    def _note_busy(self, busy: bool) -> bool:
        """Whether nearly all of the last seconds were speech over murmur: murmur that has drifted
        away from the spectrum stands out, is taken for speech, and would otherwise teach nothing."""
        return self._busy.step(busy) and busy and self.profile.learn_when_busy

    def _learn_noise(self, energy_db: float, above_floor_db: float, bands: np.ndarray, band_excess_db: float,
                     voiced_share: float, cold: bool, warming_up: bool, spectrum_only: bool) -> None:
        """What one frame teaches about the noise: the spectrum (only frames within the background's
        usual level, or every frame of murmur that talks on: ``spectrum_only``), the voiced share and
        the noise peaks."""
        t = self._t
        if spectrum_only or (not cold and above_floor_db < self.level_peak_db + t.noise_peak_margin_db):
            self._learn_spectrum(bands, 10.0 ** (energy_db / 10.0))
        if spectrum_only:
            return
        self._share_frames += 1
        share_rate = max(1.0 / self._share_frames, t.voiced_share_rate)
        self.voiced_share += share_rate * (voiced_share - self.voiced_share)
        step = t.noise_peak_step_db * (t.warm_up_step_factor if warming_up else 1.0)
        self.level_peak_db = self._quantile_step(self.level_peak_db, above_floor_db, step)
        self.spectrum_peak_db = self._quantile_step(self.spectrum_peak_db, band_excess_db, step)

    def _learn_spectrum(self, bands: np.ndarray, power: float) -> None:
        """Running mean of the background's band powers and power (even weights at first)."""
        assert self._spectrum is not None
        rate = max(1.0 / (self._learned + 1), self._spectrum_rate)
        self._spectrum += rate * (bands - self._spectrum)
        self._power += rate * (power - self._power)
        self._learned += 1

    def _quantile_step(self, peak: float, value: float, step: float) -> float:
        """One step of a streaming quantile tracker over ``value`` clipped to 0..noise_peak_max_db."""
        q = self._t.noise_quantile
        if min(max(value, 0.0), self._t.noise_peak_max_db) > peak:
            return peak + step * q
        return max(peak - step * (1.0 - q), 0.0)

    def _rebase(self, level_db: float) -> None:
        """The background is at least ``level_db`` loud now: raise the floor and the spectrum to it."""
        if self.floor_db is not None and level_db > self.floor_db:
            # excursions were measured from the old floor: shift the level peak with it
            self.level_peak_db = max(self.level_peak_db - (level_db - self.floor_db), 0.0)
            self.floor_db = level_db
        if self._spectrum is not None and self._power > 0.0:
            rise = level_db - 10.0 * np.log10(self._power)
            if rise > 0.0:
                self._spectrum *= 10.0 ** (rise / 10.0)
                self._power *= 10.0 ** (rise / 10.0)
                self.spectrum_peak_db = max(self.spectrum_peak_db - rise, 0.0)

    # --- an open candidate ------------------------------------------------------------------------

    def candidate_opens(self) -> None:
        """A candidate opens: from now on what its frames teach is provisional."""
        if self._committed is None and self._spectrum is not None:
            spectrum = self._spectrum.copy()
            self._committed = Learned(self.level_peak_db, self.spectrum_peak_db, spectrum, self._power)

    def candidate_dropped(self) -> None:
        """The candidate was dropped: it was noise after all; keep what its frames taught."""
        self._committed = None

    def candidate_confirmed(self) -> None:
        """The candidate was confirmed: its frames were speech; back to what was learned before it."""
        committed, self._committed = self._committed, None
        if committed is not None and self._spectrum is not None:
            self.level_peak_db, self.spectrum_peak_db = committed.level_peak_db, committed.spectrum_peak_db
            self._spectrum[:] = committed.spectrum
            self._power = committed.power
