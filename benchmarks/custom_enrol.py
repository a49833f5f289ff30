"""Enrolment part of ``benchmarks.custom_words``: a few clips of one real speaker, then that speaker's rest.

For each chosen ``validation`` speaker (those with the most clips of the custom words, counting only
words they said at least twice), up to five clips of each word are enrolled, always leaving one to
test; the test is the rest of their clips of the custom words plus their clips of other words (as
``_unknown_``). The enrolled model is ``trainer commands --enrolled`` started from the custom model
that won (``--base WORK/NAME/start-<start>``), so the labels and layers carry over.
"""

from __future__ import annotations

import csv
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import table
from benchmarks.custom_runs import Clip, CommandsRun, commands_run, real_clips, score_model
from benchmarks.real_speech import Scored, accuracy, pct

MAX_ENROLLED = 5
ENROL_STEPS = 150


@dataclass(frozen=True)
class SpeakerSplit:
    speaker: str
    enrolled: list[Clip]
    test: list[Clip]


@dataclass(frozen=True)
class EnrolmentReport:
    markdown: str
    figures: dict[str, object]


def choose_speakers(clips: list[Clip], words: list[str], count: int) -> list[SpeakerSplit]:
    by_speaker: dict[str, list[Clip]] = defaultdict(list)
    for clip in clips:
        by_speaker[clip.speaker].append(clip)
    splits = [split_speaker(speaker, own, words) for speaker, own in by_speaker.items()]
    splits = [s for s in splits if s.enrolled]
    splits.sort(key=lambda s: (-len(s.enrolled) - sum(c.label in words for c in s.test), s.speaker))
    return splits[:count]


def split_speaker(speaker: str, own: list[Clip], words: list[str]) -> SpeakerSplit:
    enrolled: list[Clip] = []
    test: list[Clip] = []
    for word in words:
        said = sorted((c for c in own if c.label == word), key=lambda c: c.path.name)
        if len(said) >= 2:
            keep = min(MAX_ENROLLED, len(said) - 1)
            enrolled += said[:keep]
            test += said[keep:]
    test += [c for c in own if c.label not in words]
    return SpeakerSplit(speaker, enrolled, test)


def write_enrolled(folder: Path, split: SpeakerSplit) -> Path:
    """An audiofolder like ``streamclf enroll`` writes: ``<label>/<file>`` and ``metadata.csv``."""
    if folder.exists():
        shutil.rmtree(folder)
    rows = []
    for clip in split.enrolled:
        target = folder / clip.label / clip.path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip.path, target)
        rows.append((f"{clip.label}/{clip.path.name}", clip.label, split.speaker))
    with (folder / "metadata.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("file_name", "label", "speaker"))
        writer.writerows(rows)
    return folder


def enrolment_report(
    data: Path, folder: Path, words: list[str], start: str, speakers: int, reuse: bool = False
) -> EnrolmentReport:
    clips = real_clips(data, "validation")
    rows = []
    before_all: list[Scored] = []
    after_all: list[Scored] = []
    for split in choose_speakers(clips, words, speakers):
        enrolled = write_enrolled(folder / "enrol" / split.speaker, split)
        spec = CommandsRun(folder, f"enrolled-{split.speaker}", "base", folder / f"start-{start}", data,
                           ENROL_STEPS, ("--enrolled", str(enrolled)), reuse)  # fmt: skip
        model, seconds = commands_run(spec)
        before = score_model(folder / f"start-{start}", split.test, words)
        after = score_model(model, split.test, words)
        before_all += before
        after_all += after
        rows.append((split.speaker, len(split.enrolled), *groups(before, words), *groups(after, words),
                     f"{seconds / 60:.1f}"))  # fmt: skip
    rows.append(("all", "", *groups(before_all, words), *groups(after_all, words), ""))
    markdown = "\n".join([
        f"Enrolment (from the `{start}` model, {ENROL_STEPS} steps, up to {MAX_ENROLLED} clips per word); "
        "the test is the rest of the speaker's clips: their custom words, their other words as `_unknown_`:",
        "",
        table(("speaker", "enrolled clips", "before: words", "before: other words", "before: all",
               "after: words", "after: other words", "after: all", "min"), rows),
        "",
    ])  # fmt: skip
    figures = {"before": accuracy(before_all), "after": accuracy(after_all), "test_clips": len(after_all),
               "after_words": accuracy([s for s in after_all if s.label in words]),
               "after_other_words": accuracy([s for s in after_all if s.label not in words])}  # fmt: skip
    return EnrolmentReport(markdown, figures)


def groups(scored: list[Scored], words: list[str]) -> tuple[str, str, str]:
    """Accuracy on the custom words (with their count), on other words, and on both."""
    said = [s for s in scored if s.label in words]
    other = [s for s in scored if s.label not in words]
    return (f"{pct(accuracy(said))} ({len(said)})", f"{pct(accuracy(other))} ({len(other)})",
            pct(accuracy(scored)))  # fmt: skip
