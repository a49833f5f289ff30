"""The settings and the tuning's durations as frame and sample counts, for one rate and frame length."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import VadSettings
from ..errors import StartupError
from .tuning import Tuning


@dataclass(frozen=True)
class Timing:
    frame: int
    """Samples per VAD frame."""
    sample_rate: int
    open_frames: int
    window_frames: int
    confirm_frames: int
    hangover_frames: int
    gap_frames: int
    restart_gap_frames: int
    closure_frames: int
    murmur_linger_frames: int
    unvoiced_hold: int
    """Samples."""
    unvoiced_hangover_frames: int
    preroll: int
    """Samples, as are the fields below."""
    tail: int
    min_length: int
    max_length: int
    reach: int
    max_extra_preroll: int
    max_extra_tail: int

    @classmethod
    def of(cls, settings: VadSettings, tuning: Tuning, sample_rate: int, frame: int) -> Timing:
        def frames(ms: float) -> int:
            return frames_in(ms, sample_rate, frame)

        def samples(ms: float) -> int:
            return round(ms * sample_rate / 1000.0)

        window = frames(settings.open_window_ms)
        max_length = round(settings.max_utterance_s * sample_rate)
        if max_length < 2 * frame:
            raise StartupError(f"vad.max_utterance_s: must hold at least two {frame}-sample VAD frames")
        pad = settings.masked_pad
        return cls(
            frame=frame,
            sample_rate=sample_rate,
            open_frames=min(frames(settings.open_ms), window),
            window_frames=window,
            confirm_frames=0 if settings.confirm_ms == 0 else frames(settings.confirm_ms),
            hangover_frames=frames(settings.hangover_ms),
            gap_frames=frames(tuning.gap_ms),
            restart_gap_frames=frames(tuning.restart_gap_ms),
            closure_frames=frames(tuning.closure_ms),
            murmur_linger_frames=frames(tuning.murmur_check_linger_s * 1000.0),
            unvoiced_hold=frames(tuning.unvoiced_hold_ms) * frame,
            unvoiced_hangover_frames=min(frames(tuning.unvoiced_hangover_ms), frames(settings.hangover_ms)),
            preroll=samples(settings.preroll_ms),
            tail=samples(settings.tail_ms),
            min_length=samples(settings.min_utterance_ms),
            max_length=max_length,
            reach=samples(tuning.reach_ms) // frame * frame,
            max_extra_preroll=samples(tuning.masked_preroll_max_ms) if pad else 0,
            max_extra_tail=samples(tuning.masked_tail_max_ms) if pad else 0,
        )

    def samples(self, ms: float) -> int | None:
        """Whole frames covering ``ms``, in samples (None for an infinite time)."""
        return None if ms == float("inf") else frames_in(ms, self.sample_rate, self.frame) * self.frame

    @property
    def history(self) -> int:
        """Samples kept while idle: pre-roll (with its masked-edge extra), reach and the opening window."""
        return self.preroll + self.max_extra_preroll + self.reach + self.window_frames * self.frame


def frames_in(ms: float, sample_rate: int, frame: int) -> int:
    """Whole frames covering ``ms`` milliseconds (at least one)."""
    return max(1, int(np.ceil(ms * sample_rate / 1000.0 / frame - 1e-9)))
