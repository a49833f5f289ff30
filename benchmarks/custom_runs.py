"""What ``benchmarks.custom_words`` and ``benchmarks.custom_enrol`` share: clips, vocabularies, trainer
runs and scoring a model directory through the daemon's classifier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import REPO
from benchmarks.real_speech import BACKGROUND, UNKNOWN, Scored, load_audio, read_rows, score

WIDE_CNN = REPO / "configs" / "models" / "logmel-cnn-wide"
COMMANDS_VOCAB = REPO / "configs" / "commands.toml"


@dataclass(frozen=True)
class Clip:
    path: Path
    label: str
    speaker: str


# --- data ---------------------------------------------------------------------------------------


def real_clips(data: Path, split: str) -> list[Clip]:
    rows = read_rows(data / "metadata.csv")
    return [Clip(data / r["file_name"], r["label"], r["speaker"]) for r in rows if r["split"] == split]


def background_clips(synth: Path) -> list[Clip]:
    clips: list[Clip] = []
    for split in ("validation", "test"):
        metadata = synth / split / "metadata.csv"
        if metadata.is_file():
            clips += [Clip(synth / split / r["file_name"], BACKGROUND, "") for r in read_rows(metadata)
                      if r["label"] == BACKGROUND]  # fmt: skip
    return clips


def phrases_of(word: str) -> list[str]:
    """The word's spellings in the default vocabulary (they steer the TTS engines), else the word."""
    from trainer.vocab import load_vocabulary

    return list(load_vocabulary(COMMANDS_VOCAB).phrases.get(word, (word,)))


def write_vocabulary(path: Path, words: list[str], keep: bool = False) -> Path:
    """``[labels]`` TOML: each word with its phrases (``keep``: every other word of the data set)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["[labels]"] + [f"{json.dumps(w)} = {json.dumps(phrases_of(w))}" for w in words]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- training -----------------------------------------------------------------------------------


def run(command: list[str], log: Path) -> float:
    """Run a trainer command with its output in ``log``; seconds taken."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    started = time.monotonic()
    with log.open("w") as handle:
        done = subprocess.run(
            command, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False
        )
    if done.returncode != 0:
        raise SystemExit(f"custom_words: {' '.join(command[:4])} failed ({done.returncode}); see {log}")
    return time.monotonic() - started


def build_base(data: Path, base_steps: int, folder: Path, words: list[str]) -> Path:
    base = folder / "base"
    if (base / "config.json").is_file():
        return base
    all_words = sorted({r["label"] for r in read_rows(data / "metadata.csv")})
    vocab = write_vocabulary(folder / "base-vocab.toml", [w for w in all_words if w not in words])
    command = [
        sys.executable, "-m", "trainer", "fit", "--from-config", str(WIDE_CNN), "--data", str(data),
        "--vocab", str(vocab), "--label-column", "label", "--augment", "--balance", "sampler",
        "--learning-rate", "3e-3", "--weight-decay", "0.01", "--warmup-ratio", "0.05",
        "--per-device-train-batch-size", "64", "--max-duration", "2.0", "--dataloader-num-workers", "1",
        "--eval-strategy", "epoch", "--seed", "0", "--max-steps", str(base_steps), "--output-dir", str(base),
    ]  # fmt: skip
    run(command, folder / "base.log")
    return base


@dataclass(frozen=True)
class CommandsRun:
    """One ``python -m trainer commands`` run for the custom words of ``folder``."""

    folder: Path
    name: str
    """Model directory name (``folder/name``) and log name."""
    start: str
    base: Path
    data: Path
    steps: int
    extra: tuple[str, ...] = ()
    reuse: bool = False
    """Keep a model a finished earlier run left (its time is read from ``folder/name.seconds``)."""


def commands_run(spec: CommandsRun) -> tuple[Path, float]:
    """Train (model directory, seconds); the seconds are kept in ``folder/name.seconds``."""
    out = spec.folder / spec.name
    seconds_file = spec.folder / f"{spec.name}.seconds"
    if out.resolve() == spec.base.resolve():
        raise SystemExit(f"custom_words: {out} would overwrite the model it starts from")
    if spec.reuse and (out / "model.onnx").is_file() and seconds_file.is_file():
        return out, float(seconds_file.read_text(encoding="utf-8"))
    command = [
        sys.executable, "-m", "trainer", "commands", "--vocab", str(spec.folder / "vocab.toml"),
        "--out", str(out), "--work", str(spec.folder / "work"), "--base", str(spec.base),
        "--start", spec.start, "--other-speech", str(spec.data), "--steps", str(spec.steps), *spec.extra,
    ]  # fmt: skip
    seconds = run(command, spec.folder / f"{spec.name}.log")
    seconds_file.write_text(f"{seconds:.1f}\n", encoding="utf-8")
    return out, seconds


# --- scoring ------------------------------------------------------------------------------------


def score_model(model: Path, clips: list[Clip], words: list[str]) -> list[Scored]:
    from streamclf.classifier import load_classifier
    from streamclf.config import ModelSettings

    classifier = load_classifier(ModelSettings(model=str(model), backend="auto", threads=1))
    truth = [c.label if c.label in words or c.label == BACKGROUND else UNKNOWN for c in clips]
    return score(classifier, [load_audio(c.path) for c in clips], truth)


