"""One frame as the state machine takes it: its features, and what they make it for the utterance."""

from __future__ import annotations

from typing import NamedTuple

from .features import FrameFeatures
from .tuning import Tuning


class Heard(NamedTuple):
    """One frame as the state machine takes it (a tuple: one is made per frame)."""

    start: int
    """Stream sample where the frame starts."""
    features: FrameFeatures
    speech: bool
    """The detector says speech, the frame stands out of the background, and it is no room echo that
    counts as such (a candidate's own frames still count: a short word's fading vowel echoes nothing)."""
    voiced: bool
    """Speech with its energy in the voiced band."""
    strong: bool
    """Voiced and well above the noise: counts towards confirmation."""
    clear: bool
    """Speech well above the noise, voiced or not: anchors the onset."""
    hiss: bool
    """Clear, and its high band noise-like (a fricative), not ringing tones."""
    ringing: bool
    """Unvoiced speech whose high band rings at a few tones (a clink of china), not a hiss."""

    @property
    def loud(self) -> bool:
        """Stands out of the background, whatever the detector says, and is no echo."""
        return self.features.loud and not self.features.echo

    @property
    def voiced_echo(self) -> bool:
        """Sounding and voiced, but taken for echo: a vowel's own fall, or the room's reverberation."""
        return self.features.sounding and self.features.voicing and not self.speech


def hear(start: int, features: FrameFeatures, leave_out_echo: bool, tuning: Tuning) -> Heard:
    """``leave_out_echo``: whether a frame of room echo is no speech now (idle, or confirmed)."""
    speech = features.sounding and not (features.echo and leave_out_echo)
    voiced = speech and features.voicing
    clear = speech and features.strong
    hiss_like = features.flatness >= tuning.hiss_flatness
    return Heard(
        start=start,
        features=features,
        speech=speech,
        voiced=voiced,
        strong=voiced and features.strong,
        clear=clear,
        hiss=clear and hiss_like,
        ringing=speech and not voiced and not hiss_like,
    )
