"""What one frame is, on its own: a per-frame step that never reads the state machine.

A frame (already high-passed: the filter runs once per pushed block, see ``machine.py``) goes
through its band powers, how far it stands out of the background, the gain, the frame detector
(webrtcvad or silero-vad), the room's decay and echo, and, over murmur, silero-vad's second
opinion. The result is a frozen :class:`FrameFeatures`; the machine decides what it means for the
utterance, and the background learns from it afterwards (``background.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..vad import FrameDetector
from ..vad.murmur import MurmurCheck
from .background import BackgroundModel
from .decay import RoomDecay
from .echo import EchoTracker
from .gain import AutoGain
from .spectrum import BandLayout
from .tuning import BackgroundKind, Tuning


class FrameFeatures(NamedTuple):
    """What one frame is (a tuple: one is made per frame)."""

    energy_db: float
    """Level, dBFS."""
    above_floor_db: float
    """Margin over the background's noise floor, dB."""
    band_excess_db: float
    """Mean dB by which its most raised bands stand over the background's spectrum."""
    loud: bool
    """Stands out of the background, in level or spectrum."""
    strong: bool
    """Stands well out of it: frames like this confirm an utterance and anchor its onset."""
    voicing: bool
    """Most of its energy in the voiced band, or that band far over the background's and still a fair
    share (the front vowel of a high voice, "yes")."""
    voice_raised: bool
    """Its voiced band stands ``voiced_raise_db`` over the background's."""
    voiced_share: float
    """Share of its energy in the voiced band."""
    flatness: float
    """Its high band's flatness (hiss near 0.5, ringing tones near 0); 0 where no rule reads it."""
    detector: bool
    """The frame detector says speech."""
    echo: bool
    """It holds nothing but the room's reverberation of the frames before it."""
    voice_probability: float
    """Over murmur, silero-vad's speech probability here; 1 where none is taken."""
    bands: np.ndarray
    """Power in each mel band."""

    @property
    def sounding(self) -> bool:
        """The detector says speech and the frame stands out of the background."""
        return self.loud and self.detector


class FrameAnalyser:
    """The per-frame step and the state it carries across frames (detector, echo, room, gain, check)."""

    def __init__(
        self,
        tuning: Tuning,
        layout: BandLayout,
        detector: FrameDetector,
        background: BackgroundModel,
        gain: AutoGain,
        murmur_check: MurmurCheck | None,
        murmur_linger_frames: int,
    ) -> None:
        self._t = tuning
        self._layout = layout
        self._detector = detector
        self._background = background
        self._gain = gain
        self._echo = EchoTracker(tuning, detector.sample_rate, detector.frame_samples)
        self.room = RoomDecay(tuning, detector.sample_rate, detector.frame_samples)
        self.murmur_check = murmur_check
        self._linger_frames = murmur_linger_frames
        self._murmur_left = 0  # frames the murmur check keeps running after murmur was last heard

    def reset(self) -> None:
        self._detector.reset()
        self._gain.reset()
        self._echo.reset()
        self.room.reset()
        if self.murmur_check is not None:
            self.murmur_check.reset()
        self._murmur_left = 0

    def analyse(self, raw: np.ndarray, filtered: np.ndarray) -> FrameFeatures:
        """One frame, as it came and high-passed."""
        t = self._t
        power, spectrum = self._layout.power_and_spectrum(filtered, raw)
        energy = max(10.0 * np.log10(power), t.silence_dbfs) if power > 0.0 else t.silence_dbfs
        share = self._layout.voiced_share(spectrum)
        bands = self._layout.bands(spectrum)
        out = self._background.stand_out(energy, power, bands)
        assert self._background.floor_db is not None
        gained = filtered * np.float32(self._gain.step(energy, self._background.floor_db))
        said = self._detector.is_speech(gained) if out.loud or self._detector.needs_every_frame else False
        self.room.update(energy, out.above_floor_db)
        voice_probability = self._second_opinion(gained)
        echo = self._echo.update(bands, self.room.rate_db_per_s)
        voicing = share >= t.voiced_ratio or (
            share >= t.voiced_min_ratio and out.low_band_excess_db >= t.voiced_raise_db
        )
        # the flatness only where a rule reads it (strong or unvoiced sound): off the idle path
        wanted = out.loud and said and (out.strong or not voicing)
        flatness = self._layout.high_band_flatness(spectrum) if wanted else 0.0
        raised = out.low_band_excess_db >= t.voiced_raise_db
        return FrameFeatures(energy, out.above_floor_db, out.band_excess_db, out.loud, out.strong, voicing,
                             raised, share, flatness, said, echo, voice_probability, bands)

    def _second_opinion(self, gained: np.ndarray) -> float:
        """silero-vad's speech probability of this (gain-normalised) frame while the background is
        murmur, or was within ``murmur_check_linger_s`` (the model keeps its context across a lull);
        1 where the background is no murmur."""
        check = self.murmur_check
        if check is None:
            return 1.0
        murmur = self._background.kind is BackgroundKind.MURMUR
        if murmur:
            self._murmur_left = self._linger_frames
        elif self._murmur_left > 0:
            self._murmur_left -= 1
            if self._murmur_left == 0:
                check.reset()
        if self._murmur_left == 0:
            return 1.0
        check.push(gained)
        return check.probability if murmur else 1.0
