"""The review loop: for each kept clip, show it, play it, read keys until one decides, write it.

Each decision is written to metadata.csv before the next clip is shown (atomically, under the
folder's lock), so quitting, a crash or Ctrl-C loses nothing already decided. A row whose audio is
missing or unreadable is reported in one line and skipped (left as it is: it may be restored); the
command then exits 4. A row `listen --keep` dropped while it was on screen is reported as gone.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..audiofolder import BadClip, Row, read_clip
from ..errors import StreamclfError
from ..keep.folder import KeepFolder
from ..keep.rows import BadRow, KeptClip, parse_row
from .keymap import Action, Choice, decode_key
from .keys import NextKey
from .playback import Player

DONE = {Action.ACCEPT: "accepted", Action.RELABEL: "relabelled", Action.DISCARD: "discarded",
        Action.SKIP: "skipped"}


class WriteFailed(StreamclfError):
    """metadata.csv could not be rewritten; the decisions before this one are saved (exit 1)."""


@dataclass(frozen=True)
class Outcome:
    """What one decision did; ``applied`` is False when the clip's row was already gone."""

    file_name: str
    action: Action
    label: str | None = None
    applied: bool = True

    @property
    def kind(self) -> str:
        return DONE.get(self.action, self.action.value) if self.applied else "gone"

    def describe(self) -> str:
        if not self.applied:
            return "gone: `listen --keep` dropped it meanwhile"
        return f"{self.kind} as {self.label}" if self.label is not None else self.kind


@dataclass(frozen=True)
class ReviewResult:
    """How many clips each decision got, how many could not be read, and whether the user quit."""

    counts: Mapping[str, int]
    quit: bool

    @property
    def unreadable(self) -> int:
        return self.counts.get("unreadable", 0)


class View(Protocol):
    def clip(self, index: int, total: int, clip: KeptClip) -> None: ...
    def outcome(self, outcome: Outcome) -> None: ...
    def note(self, text: str) -> None: ...


@dataclass(frozen=True)
class Reviewer:
    """The parts the loop works with."""

    folder: KeepFolder
    next_key: NextKey
    player: Player
    view: View
    keymap: Mapping[str, str]


def review(rows: Sequence[Row], parts: Reviewer) -> ReviewResult:
    """Review ``rows`` in order until they are done, the user quits or the keys run out."""
    tally: collections.Counter[str] = collections.Counter()
    for index, row in enumerate(rows, 1):
        loaded = _load(row, parts)
        if loaded is None:
            tally["unreadable"] += 1
            continue
        clip, audio, rate = loaded
        parts.view.clip(index, len(rows), clip)
        choice = _choose(clip, audio, rate, parts)
        parts.player.stop()
        if choice.action is Action.QUIT:
            return ReviewResult(dict(tally), quit=True)
        outcome = _apply(clip, choice, parts.folder)
        parts.view.outcome(outcome)
        tally[outcome.kind] += 1
    return ReviewResult(dict(tally), quit=False)


def _load(row: Row, parts: Reviewer) -> tuple[KeptClip, np.ndarray, int] | None:
    """The clip and its audio; None (reported in one line) when either cannot be read."""
    try:
        clip = parse_row(row)
        audio, rate = read_clip(parts.folder.audio_path(clip.file_name))
    except (BadRow, BadClip) as exc:
        parts.view.note(f"skipped {row.get('file_name') or '(a row without file_name)'}: {exc}")
        return None
    return clip, audio, rate


def _choose(clip: KeptClip, audio: np.ndarray, rate: int, parts: Reviewer) -> Choice:
    """Play the clip and read keys until one decides (end of input: quit)."""
    parts.player.play(audio, rate)
    while True:
        key = parts.next_key()
        if key is None:
            return Choice(Action.QUIT)
        choice = decode_key(key, parts.keymap)
        if choice is None:
            parts.view.note(f"  key {key!r} does nothing here")
        elif choice.action is Action.REPLAY:
            parts.player.play(audio, rate)
        elif choice.action is Action.ACCEPT and not clip.predicted:
            parts.view.note("  no top intent to accept: press a label's key")
        else:
            return choice


def _apply(clip: KeptClip, choice: Choice, folder: KeepFolder) -> Outcome:
    """Write the decision to the folder."""
    if choice.action is Action.SKIP:
        return Outcome(clip.file_name, Action.SKIP)
    try:
        if choice.action is Action.DISCARD:
            return Outcome(clip.file_name, Action.DISCARD, applied=folder.discard(clip.file_name))
        label = clip.predicted if choice.action is Action.ACCEPT else choice.label
        assert label is not None
        return Outcome(clip.file_name, choice.action, label, folder.relabel(clip.file_name, label))
    except OSError as exc:
        raise WriteFailed(
            f"cannot write {folder.metadata}: {exc.strerror or exc}; the decisions before this one are saved"
        ) from None
