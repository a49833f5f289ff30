"""The segmenter's states, idle → candidate → speaking ⇄ hangover → idle, and what it keeps.

* **idle**: ``open_ms`` of speech within the last ``open_window_ms`` opens a *candidate* at the
  window's first speech frame (reached back over audible frames), less the pre-roll.
* **candidate**: kept once it holds ``confirm_ms`` of voiced frames, ``strong_frames`` of them well
  above the noise, and over murmur one frame silero-vad hears as a voice; then :class:`SpeechStart`
  is emitted at its onset (``edges.confirmed_onset``). A pause of ``restart_gap_ms`` restarts it at
  the next sound (a clink before a word does not drag the onset forward), unless it is so far only
  a clear hiss and the pause is a stop's closure. ``hangover_ms`` without speech drops it.
* **speaking**: the last frame held the utterance: a voiced frame (over murmur: well above it and
  near the utterance's peak), or unvoiced sound right after the voice, or a clear hiss running on
  from it (over murmur, any clear hiss). A consonant leaves a shorter hangover than a vowel.
* **hangover**: counting down; sound running on from the speech still widens the segment. At zero
  the utterance is emitted (at least ``min_utterance_ms`` with the edges the noise hid) or dropped,
  unless the whole hangover stood loud near the utterance's level (the sound went on).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass, field

from .heard import Heard


class State(enum.Enum):
    IDLE = "idle"
    CANDIDATE = "candidate"
    SPEAKING = "speaking"
    HANGOVER = "hangover"


class OpeningWindow:
    """Idle: the last ``open_window_ms`` of frames, until ``open_ms`` of them are speech."""

    def __init__(self, frames: int, speech_frames: int) -> None:
        self._recent: deque[Heard] = deque(maxlen=frames)
        self._speech_frames = speech_frames

    def add(self, heard: Heard) -> list[Heard]:
        """The window's speech frames once this speech frame opens an utterance, else nothing."""
        self._recent.append(heard)
        if not heard.speech or sum(h.speech for h in self._recent) < self._speech_frames:
            return []
        opened = [h for h in self._recent if h.speech]
        self._recent.clear()
        return opened

    def clear(self) -> None:
        self._recent.clear()


@dataclass
class Candidate:
    """An opened utterance not yet confirmed: its speech frames since it (re)started."""

    frames: list[Heard] = field(default_factory=list)
    voiced: int = 0
    strong: int = 0
    voice_probability: float = 0.0
    quiet_frames: int = 0
    """Frames since its last speech frame."""

    def add(self, heard: Heard) -> None:
        self.frames.append(heard)
        self.voiced += heard.voiced
        self.strong += heard.strong
        self.voice_probability = max(self.voice_probability, heard.features.voice_probability)

    def ready(self, voiced: int, strong: int, voice_probability: float) -> bool:
        """Whether it holds enough voiced and strong frames, and one as voice-like as asked."""
        return self.voiced >= voiced and self.strong >= strong and self.voice_probability >= voice_probability


@dataclass
class Utterance:
    """The utterance open since a candidate opened (one per segment after a max-length cut)."""

    onset: int
    last_speech_end: int
    last_voiced_end: int = 0
    weak_lead: int = 0
    """Samples of speech before the onset that ``confirmed_onset`` left out (they count for length)."""
    hangover_left: int = 0
    consonant: bool = False
    """The last frame held it as unvoiced sound: a hiss going on from it holds too."""
    continued: bool = False
    """It continues a segment cut at ``max_utterance_s``."""
    loud_run: int = 0
    """Frames in a row, up to the last, that stood out of the background..."""
    loud_run_min_db: float = math.inf
    """...and the quietest of them, dB over the floor."""

    def note_loudness(self, loud: bool, above_floor_db: float) -> None:
        if loud:
            self.loud_run += 1
            self.loud_run_min_db = min(self.loud_run_min_db, above_floor_db)
        else:
            self.loud_run, self.loud_run_min_db = 0, math.inf

    def sound_goes_on(self, frames: int, from_db: float) -> bool:
        """Whether the last ``frames`` all stood out of the background, none under ``from_db``."""
        return self.loud_run >= frames and self.loud_run_min_db >= from_db

    def hold(self, at: int, voiced: bool, hangover_frames: int) -> None:
        """A frame ending at ``at`` holds it: a voiced one restarts the hangover, a consonant leaves at
        least ``hangover_frames`` of it."""
        self.last_speech_end = at
        if voiced:
            self.last_voiced_end = at
            self.hangover_left = hangover_frames
        else:
            self.hangover_left = max(self.hangover_left, hangover_frames)
        self.consonant = not voiced

    def continue_at(self, at: int) -> None:
        """Cut at ``at`` (max length): the rest is a new segment of the same utterance."""
        self.continued = True
        self.onset = at
        self.weak_lead = 0
        self.last_speech_end = max(self.last_speech_end, at)
