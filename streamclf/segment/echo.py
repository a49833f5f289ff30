"""A room's echo: frames that hold nothing but the decay of the sound before them.

In a room, a word does not stop when the talker does: its reverberation fades by 60 dB over the
room's RT60 (0.3 s in a furnished living room, 0.6 s or more in a bare one). Without a noise to
hide it, that tail sounds like speech to webrtcvad and stands far above the floor, so it held
words open for half a second and joined words 0.3 to 0.7 s apart into one segment.

Each of the level tracker's mel bands keeps an envelope that falls at ``echo_decay_db_per_s``: as
slowly as the sound of a room with an RT60 of 0.8 s. Once the room's own decay rate is known
(:class:`~streamclf.segment.decay.RoomDecay`, from the falls after the first words), the envelope
falls more slowly than the room, down to ``echo_slowest_db_per_s``: a bare kitchen's echo (RT60 1 s)
is told apart too, while a dry room, whose rate stays unknown, keeps the faster envelope. A frame
is *echo* when none of its bands rises above what that envelope still allows: everything in it
could be the room's reverberation of earlier frames. A new sound raises some band (a word's "s"
after its vowel raises the high bands, the next word raises all of them). A word's own fading
vowel is explained too, for the few frames its fall lasts: a frame is taken for echo only at the
end of ``echo_run_frames`` explained frames in a row, and the frames before it keep what they held
(taking that back as well gained 40 ms in reverberant rooms, but in a dry one it closed "up"
before its "p" and split the word in two).
"""

from __future__ import annotations

import numpy as np

from .tuning import Tuning


class EchoTracker:
    """Per-band decaying envelopes over a stream's frames (see the module docstring)."""

    def __init__(self, tuning: Tuning, sample_rate: int, frame_samples: int) -> None:
        self._t = tuning
        self._frame_s = frame_samples / sample_rate
        self._envelope_db: np.ndarray | None = None
        self.run = 0
        """Frames in a row, up to the last one, that the envelope explains."""

    def reset(self) -> None:
        self._envelope_db = None
        self.run = 0

    def update(self, band_power: np.ndarray, room_decay_db_per_s: float | None = None) -> bool:
        """Take one frame's band powers; True when it ends a run of ``echo_run_frames`` explained frames.

        ``room_decay_db_per_s``: the room's measured decay rate, when known (see ``envelope_rate``).
        """
        bands_db = 10.0 * np.log10(np.maximum(band_power, 1e-12))
        if self._envelope_db is None:
            self._envelope_db = bands_db.copy()
            self.run = 0
            return False
        self._envelope_db -= envelope_rate(self._t, room_decay_db_per_s) * self._frame_s
        rise = bands_db - self._envelope_db
        top = min(self._t.echo_top_bands, len(rise))
        explained = float(np.mean(np.partition(rise, len(rise) - top)[-top:])) < -self._t.echo_tolerance_db
        np.maximum(self._envelope_db, bands_db, out=self._envelope_db)
        self.run = self.run + 1 if explained else 0
        return self.run >= self._t.echo_run_frames


def envelope_rate(tuning: Tuning, room_decay_db_per_s: float | None) -> float:
    """How fast, dB/s, the envelopes fall, given the room's measured decay rate (None: unknown)."""
    fastest = tuning.echo_decay_db_per_s
    if room_decay_db_per_s is None:
        return fastest
    return min(max(tuning.echo_room_factor * room_decay_db_per_s, tuning.echo_slowest_db_per_s), fastest)
