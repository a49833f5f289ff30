"""A kept folder made by the keep writer itself: real spoken words, written as `listen --keep` writes
them (KeepFolder + the keeper's clip encoding), with ranked intents given by the test.

    names = make_kept_folder(tmp_path / "kept", [("yes", [("yes", 0.9), ("no", 0.05)]), ...])
    rows = read_rows(tmp_path / "kept")
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streamclf.config import KeepSettings
from streamclf.events import Intent, UtteranceEvent
from streamclf.keep.folder import Bound, KeepFolder
from streamclf.keep.keeper import Pending, to_clip
from tests.audio import RATE, spoken_words

Spoken = tuple[str, Sequence[tuple[str, float]]]
"""A word to speak and the ranked intents to record for it."""


def utterance(index: int, intents: Sequence[tuple[str, float]], duration_s: float) -> UtteranceEvent:
    ranked = tuple(Intent(label, score) for label, score in intents)
    return UtteranceEvent(
        id=index, source="file:test.wav", start=float(index), end=index + duration_s, intents=ranked,
        label=ranked[0].label, accepted=True, latency_ms=1.0, model="commands",
    )


def make_kept_folder(folder: Path, spoken: Sequence[Spoken]) -> list[str]:
    """Keep each word's speech with its intents in ``folder``; the file names, oldest first."""
    keep = KeepFolder.for_writing(str(folder))
    audio = spoken_words([word for word, _ in spoken])
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    settings = KeepSettings()
    bound = Bound(round(settings.max_mb * 1e6), 0)
    names: list[str] = []
    for i, ((_word, intents), samples) in enumerate(zip(spoken, audio, strict=True)):
        event = utterance(i, intents, len(samples) / RATE)
        pending = Pending(samples, RATE, event, start + timedelta(seconds=i))
        names += keep.add([to_clip(pending)], bound).written
    return names


def read_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "metadata.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))
