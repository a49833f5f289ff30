"""Custom commands on real voices: words the base model never learned, trained from synthetic speech only.

    python -m benchmarks.custom_words --words zero,one,two,three,four,five,six,seven,eight,nine
        [--name digits] [--data ../shared/data/speech_commands] [--work build/custom-words]
        [--starts base,random,embedding] [--base-steps 700] [--steps 500] [--enrol-speakers 2] [--reuse]
        [--json OUT]

1. **Base**: ``trainer fit`` of the bundled architecture (the wide log-mel CNN) on the real recordings
   with ``--words`` left out (reused when ``WORK/NAME/base`` exists).
2. **Custom models**: ``python -m trainer commands`` for those words, from synthetic speech only (the
   real recordings give ``_unknown_`` their other words, never the custom ones), once per ``--starts``:
   the base's layers, random weights, and the frozen speech-embedding front end. Each model directory
   is kept in ``WORK/NAME/start-<start>`` so that it can be scored on more real speech; ``--reuse``
   scores a model an earlier run finished instead of training it again.
3. **Scores** on the real ``validation`` speakers, never trained on: the custom words, the other words
   (as ``_unknown_``) and synthetic non-speech (``_background_``); the balanced figure is the mean of
   the three groups. False accepts: other words taken for a custom word at the daemon's threshold,
   per minute of that speech.
4. **Enrolment** (``benchmarks.custom_enrol``): for ``--enrol-speakers`` validation speakers, up to five
   of their clips per word are enrolled (``trainer commands --enrolled``, from the winning model) and
   the rest of their clips are the test.

Prints Markdown; nothing here is a test. Times are wall-clock on this machine, whatever else runs.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import REPO, table
from benchmarks.custom_enrol import enrolment_report
from benchmarks.custom_runs import (
    Clip,
    CommandsRun,
    background_clips,
    build_base,
    commands_run,
    real_clips,
    score_model,
    write_vocabulary,
)
from benchmarks.real_speech import BACKGROUND, UNKNOWN, Scored, accepted_command, accuracy, pct

THRESHOLD = 0.65
"""The daemon's default acceptance threshold."""
RATE = 16000


@dataclass(frozen=True)
class ArmScore:
    start: str
    words: float
    unknown: float
    background: float
    balanced: float
    pooled: float
    false_accepts_per_minute: float
    false_accepts: int
    other_speech_minutes: float
    per_word: dict[str, float]
    seconds: float


# --- scoring ---------------------------------------------------------------------------------


def arm_score(start: str, scored: list[Scored], minutes: float, words: list[str], seconds: float) -> ArmScore:
    groups = {
        "words": [s for s in scored if s.label in words],
        "unknown": [s for s in scored if s.label == UNKNOWN],
        "background": [s for s in scored if s.label == BACKGROUND],
    }
    figures = {name: accuracy(items) for name, items in groups.items()}
    false = sum(accepted_command(s, THRESHOLD) for s in groups["unknown"])
    return ArmScore(
        start=start, words=figures["words"], unknown=figures["unknown"], background=figures["background"],
        balanced=float(np.nanmean(list(figures.values()))), pooled=accuracy(scored),
        false_accepts_per_minute=false / minutes if minutes else float("nan"), false_accepts=false,
        other_speech_minutes=minutes,
        per_word={w: accuracy([s for s in groups["words"] if s.label == w]) for w in words}, seconds=seconds,
    )  # fmt: skip


def other_speech_minutes(clips: list[Clip], words: list[str]) -> float:
    import soundfile as sf

    return sum(sf.info(str(c.path)).duration for c in clips if c.label not in words) / 60.0


def show(name: str, words: list[str], scores: list[ArmScore], test_clips: dict[str, int]) -> str:
    rows = [
        (s.start, pct(s.words), pct(s.unknown), pct(s.background), f"**{pct(s.balanced)}**", pct(s.pooled),
         f"{s.false_accepts_per_minute:.2f} ({s.false_accepts})", f"{s.seconds / 60:.1f}")
        for s in scores
    ]  # fmt: skip
    lines = [
        f"### {name}: {', '.join(words)}",
        "",
        f"Real validation clips: {test_clips['words']} of the custom words, {test_clips['unknown']} of other "
        f"words; {test_clips['background']} synthetic non-speech clips.",
        "",
        table(("start", "custom words", "_unknown_", "_background_", "balanced (mean of 3)", "all clips",
               f"false accepts / min of other speech at {THRESHOLD}", "trainer commands min"), rows),
        "",
        table(("word", *[s.start for s in scores]),
              [(w, *[pct(s.per_word[w]) for s in scores]) for w in words]),
        "",
    ]  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--words", required=True, help="comma-separated Speech Commands words")
    parser.add_argument("--name", help="folder name of the run (default: the first word)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "speech_commands")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "custom-words")
    parser.add_argument("--starts", default="base,random,embedding")
    parser.add_argument("--base-steps", type=int, default=700)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--enrol-speakers", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="score models earlier runs finished")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    words = [w.strip() for w in args.words.split(",") if w.strip()]
    folder = args.work / (args.name or words[0])
    base = build_base(args.data, args.base_steps, folder, words)
    write_vocabulary(folder / "vocab.toml", words)
    clips = real_clips(args.data, "validation")
    minutes = other_speech_minutes(clips, words)
    scores: list[ArmScore] = []
    for start in [s.strip() for s in args.starts.split(",") if s.strip()]:
        spec = CommandsRun(folder, f"start-{start}", start, base, args.data, args.steps,
                           reuse=args.reuse)  # fmt: skip
        model, seconds = commands_run(spec)
        evaluation = clips + background_clips(folder / "work" / "synth")
        scores.append(arm_score(start, score_model(model, evaluation, words), minutes, words, seconds))
    counts = {
        "words": sum(c.label in words for c in clips),
        "unknown": sum(c.label not in words for c in clips),
        "background": len(background_clips(folder / "work" / "synth")),
    }
    sys.stdout.write(show(folder.name, words, scores, counts))
    report: dict[str, object] = {"words": words, "arms": [asdict(s) for s in scores], "clips": counts}
    if args.enrol_speakers > 0 and scores:
        best = max(scores, key=lambda s: s.balanced)
        enrolment = enrolment_report(args.data, folder, words, best.start, args.enrol_speakers, args.reuse)
        sys.stdout.write(enrolment.markdown)
        report["enrolment"] = enrolment.figures
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1, default=float) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
