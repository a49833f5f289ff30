"""Accuracy on real speech: the Speech Commands validation speakers, per label, under noise and phone
lines, and how often speech that is no command is accepted.

    python -m benchmarks.real_speech --model DIR [--model DIR2 …] [--data ../shared/data/speech_commands]
        [--synth DIR] [--other DIR] [--backend auto|torch|onnx] [--conditions] [--json OUT]

Each model goes through the daemon's own classifier (``load_classifier``, ONNX Runtime when the
directory has ``model.onnx``). Real clips come from the data set's ``validation`` split, whose
speakers are never in training. ``--synth`` names a ``trainer synth`` folder: its test split (voices
held out of training) gives the synthetic figures. The false-accept rate is measured on other speech:
``--other`` names a ``trainer synth`` folder of words and phrases no label was trained on
(``configs/other-speech.toml``; every split of it counts), and without it the ``_unknown_`` clips of
``--synth``'s test split stand in. ``--conditions`` also scores every real clip under each held-out
condition of ``trainer.augment`` (noise at 20/10/5/0 dB SNR, levels, 8 kHz, telephone, reverb).
Prints Markdown; nothing here is a test.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import csv
import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks.common import REPO, table

COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
"""The ten command words of the Speech Commands benchmark."""
RARE_CLIPS = 100
"""Words with fewer real training clips than this are reported apart."""
UNKNOWN = "_unknown_"
BACKGROUND = "_background_"
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.3, 0.96, 0.05))
FALSE_ACCEPT_TARGET = 0.05
BATCH = 32


@dataclass(frozen=True)
class Clip:
    path: Path
    label: str
    group: str
    """"real" or the synthetic condition."""


@dataclass(frozen=True)
class Scored:
    label: str
    predicted: str
    score: float


def read_rows(metadata: Path) -> list[dict[str, str]]:
    with metadata.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def real_clips(data: Path, split: str = "validation") -> tuple[list[Clip], dict[str, int]]:
    """The split's clips and every word's number of training clips."""
    rows = read_rows(data / "metadata.csv")
    train_counts: dict[str, int] = defaultdict(int)
    for row in rows:
        if row["split"] == "train":
            train_counts[row["label"]] += 1
    clips = [Clip(data / row["file_name"], row["label"], "real") for row in rows if row["split"] == split]
    return clips, dict(train_counts)


def synthetic_clips(synth: Path, split: str = "test") -> list[Clip]:
    rows = read_rows(synth / split / "metadata.csv")
    return [Clip(synth / split / row["file_name"], row["label"], row["engine"]) for row in rows]


def other_speech(folder: Path) -> list[Clip]:
    """Every clip of every split of a ``trainer synth`` folder, as non-command speech."""
    clips: list[Clip] = []
    for split in ("train", "validation", "test"):
        if (folder / split / "metadata.csv").is_file():
            clips += [Clip(c.path, UNKNOWN, c.group) for c in synthetic_clips(folder, split)]
    return clips


def load_audio(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if rate != 16000:
        import soxr

        mono = soxr.resample(mono, rate, 16000)
    return np.asarray(mono, dtype=np.float32)


def score(classifier: object, waves: list[np.ndarray], labels: list[str]) -> list[Scored]:
    results: list[Scored] = []
    for start in range(0, len(waves), BATCH):
        ranked = classifier.classify(waves[start : start + BATCH], top_k=1)  # type: ignore[attr-defined]
        for truth, intents in zip(labels[start : start + BATCH], ranked, strict=True):
            results.append(Scored(truth, intents[0].label, intents[0].score))
    return results


def accuracy(scored: list[Scored]) -> float:
    return float(np.mean([s.predicted == s.label for s in scored])) if scored else float("nan")


def accepted_command(item: Scored, threshold: float) -> bool:
    return item.predicted not in (UNKNOWN, BACKGROUND) and item.score >= threshold


def threshold_rows(real: list[Scored], unknown: list[Scored]) -> list[dict[str, float]]:
    """Per threshold: recall of real words (right and accepted) and the false-accept rate of
    non-command speech (accepted as any command)."""
    rows = []
    for threshold in THRESHOLDS:
        recall = np.mean([s.predicted == s.label and s.score >= threshold for s in real]) if real else np.nan
        false = np.mean([accepted_command(s, threshold) for s in unknown]) if unknown else np.nan
        rows.append({"threshold": threshold, "recall": float(recall), "false_accept": float(false)})
    return rows


def pick_threshold(rows: list[dict[str, float]]) -> dict[str, float] | None:
    """The lowest threshold whose false-accept rate is within the target (most recall kept)."""
    return next((row for row in rows if row["false_accept"] <= FALSE_ACCEPT_TARGET), None)


def pct(value: float) -> str:
    return "–" if np.isnan(value) else f"{value * 100:.1f}%"


def per_label_table(scored: list[Scored], train_counts: dict[str, int]) -> str:
    by_label: dict[str, list[Scored]] = defaultdict(list)
    for item in scored:
        by_label[item.label].append(item)
    rows = [
        (label, train_counts.get(label, 0), len(items), pct(accuracy(items)))
        for label, items in sorted(by_label.items())
    ]
    return table(("word", "real training clips", "validation clips", "top-1"), rows)


def condition_scores(classifier: object, clips: list[Clip], waves: list[np.ndarray]) -> dict[str, float]:
    from trainer.augment import TEST_CONDITIONS, apply_condition

    results = {}
    for number, condition in enumerate(TEST_CONDITIONS):
        rng = np.random.default_rng(number)  # a fixed seed per condition: the same noise every run
        changed = [apply_condition(w, 16000, rng, condition).audio for w in waves]
        results[condition] = accuracy(score(classifier, changed, [c.label for c in clips]))
    return results


def evaluate_model(model: str, args: argparse.Namespace) -> dict[str, object]:
    from streamclf.classifier import load_classifier
    from streamclf.config import ModelSettings

    classifier = load_classifier(ModelSettings(model=model, backend=args.backend, threads=1))
    clips, train_counts = real_clips(args.data)
    known = set(classifier.labels)
    clips = [c for c in clips if c.label in known]
    waves = [load_audio(c.path) for c in clips]
    real = score(classifier, waves, [c.label for c in clips])
    report: dict[str, object] = {
        "model": model,
        "real_top1": accuracy(real),
        "real_clips": len(real),
        "commands_top1": accuracy([s for s in real if s.label in COMMANDS]),
        "rare_top1": accuracy([s for s in real if train_counts.get(s.label, 0) < RARE_CLIPS]),
        "common_top1": accuracy([s for s in real if train_counts.get(s.label, 0) >= RARE_CLIPS]),
        "per_label": per_label_table(real, train_counts),
    }
    unknown: list[Scored] = []
    if args.synth is not None:
        synth = synthetic_clips(args.synth)
        synth_scored = score(classifier, [load_audio(c.path) for c in synth], [c.label for c in synth])
        report["synthetic_top1"] = accuracy(synth_scored)
        unknown = [s for s in synth_scored if s.label == UNKNOWN]
    if args.other is not None:
        other = other_speech(args.other)
        unknown = score(classifier, [load_audio(c.path) for c in other], [c.label for c in other])
    report["non_command_clips"] = len(unknown)
    rows = threshold_rows([s for s in real if s.label not in (UNKNOWN, BACKGROUND)], unknown)
    report["thresholds"] = rows
    report["chosen"] = pick_threshold(rows)
    if args.conditions:
        report["conditions"] = condition_scores(classifier, clips, waves)
    return report


def show(report: dict[str, object]) -> str:
    lines = [
        f"### {report['model']}",
        "",
        table(
            ("real validation, all words", "ten commands", "words ≥ 100 training clips", "rare words",
             "synthetic held-out voices"),
            [(pct(report["real_top1"]), pct(report["commands_top1"]),  # type: ignore[arg-type]
              pct(report["common_top1"]), pct(report["rare_top1"]),  # type: ignore[arg-type]
              pct(report.get("synthetic_top1", float("nan"))))],  # type: ignore[arg-type]
        ),
        "",
    ]  # fmt: skip
    chosen = report.get("chosen")
    rows = report["thresholds"]
    assert isinstance(rows, list)
    lines += [
        table(
            ("threshold", "real words right and accepted", "non-command speech accepted"),
            [(r["threshold"], pct(r["recall"]), pct(r["false_accept"])) for r in rows],
        ),
        "",
        f"Non-command speech: {report['non_command_clips']} clips. "
        f"Lowest threshold with at most {FALSE_ACCEPT_TARGET:.0%} of it accepted: "
        + (f"**{chosen['threshold']}**" if isinstance(chosen, dict) else "none"),
        "",
    ]
    conditions = report.get("conditions")
    if isinstance(conditions, dict):
        lines += [table(("condition", "top-1"), [(k, pct(v)) for k, v in conditions.items()]), ""]
    lines += [str(report["per_label"]), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", action="append", required=True, help="model directory (repeatable)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "speech_commands")
    parser.add_argument("--synth", type=Path, default=None, help="a trainer synth folder (its test split)")
    parser.add_argument("--other", type=Path, default=None, help="a trainer synth folder of other speech")
    parser.add_argument("--backend", default="auto", choices=("auto", "torch", "onnx"))
    parser.add_argument(
        "--conditions", action="store_true", help="also score real clips under each condition"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    reports = [evaluate_model(model, args) for model in args.model]
    print("\n".join(show(report) for report in reports))
    if args.json is not None:
        text = json.dumps(reports, indent=1, default=lambda o: asdict(o))
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
