"""Where an utterance starts and ends: pure functions applied at confirmation and at closing.

* :func:`lead_is_hiss`: a candidate that so far is only a clear hiss is the "s" of "stop" or
  "skip": the pause after it (the stop's closure) does not restart it.
* :func:`confirmed_onset`: on confirmation, the onset moves past the ringing frames that led the
  candidate (a dish clink running into a word), and over murmur up to ``weak_lead_ms`` before its
  first clear frame (a swell of the murmur running into the word).
* :func:`reach_back` / :func:`reach_forward`: edges move out over adjacent audible frames (a soft
  first or last consonant).
* :func:`masked_pads`: the soft edges that the noise hides, added back: the closer the utterance's
  loudest frame to the noise, the more of its fade lies under it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .heard import Heard
from .tuning import Tuning

Audible = Callable[[int], bool]
"""Whether the frame starting at this stream sample stands out of the noise."""


def lead_is_hiss(frames: Sequence[Heard]) -> bool:
    """Whether a candidate's speech frames, up to the first whose voiced band rises out of the
    background, hold a hiss of unvoiced sound and no clear frame other than a hiss. A clear frame
    voiced only by its share of energy, its voiced band no higher than the background's, neither
    makes nor breaks the hiss: over murmur, an "s" holds as much of the murmur's voiced band."""
    only_hiss, hissed = True, False
    for heard in frames:
        raised = heard.voiced and heard.features.voice_raised
        if heard.clear:
            only_hiss = only_hiss and heard.hiss and not raised
            hissed = hissed or (heard.hiss and not heard.voiced)
        if raised:
            break
    return only_hiss and hissed


def word_after_ringing(frames: Sequence[Heard]) -> int | None:
    """Where the word begins after ringing frames that lead a candidate, up to its first voiced frame
    (None: no ringing led it, or nothing followed the ringing)."""
    rung, word_from = False, None
    for heard in frames:
        if heard.ringing:
            rung, word_from = True, None
        elif rung and word_from is None:
            word_from = heard.start
        if heard.voiced:
            break
    return word_from


def confirmed_onset(onset: int, frames: Sequence[Heard], weak_lead: int | None) -> tuple[int, int]:
    """(onset, samples of speech it left out) once a candidate with these speech frames is confirmed.
    ``weak_lead``: samples of weak speech kept before the first clear frame (None: all of it)."""
    word_from = word_after_ringing(frames)
    if word_from is not None and word_from > onset:
        onset = word_from
    first_clear = next((heard.start for heard in frames if heard.clear), None)
    if weak_lead is None or first_clear is None or first_clear - weak_lead <= onset:
        return onset, 0
    return first_clear - weak_lead, first_clear - weak_lead - onset


def reach_back(onset: int, limit: int, frame: int, audible: Audible) -> int:
    """Move the onset back over audible frames just before it, not before ``limit``."""
    while onset - frame >= limit and audible(onset - frame):
        onset -= frame
    return onset


def reach_forward(end: int, limit: int, frame: int, audible: Audible) -> int:
    """Move the end forward over audible frames just after it, not past ``limit``."""
    while end + frame <= limit and audible(end):
        end += frame
    return end


def masked_pads(peak_above_db: float, tuning: Tuning, max_preroll: int, max_tail: int) -> tuple[int, int]:
    """Extra pre-roll and tail, in samples, for soft edges hidden under the noise."""
    depth = tuning.masked_depth_db
    hidden = min(max(depth - peak_above_db, 0.0), depth) / depth
    return round(hidden * max_preroll), round(hidden * max_tail)
