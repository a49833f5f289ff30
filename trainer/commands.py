"""``python -m trainer commands``: your own commands, from a phrase list to a model the daemon runs.

    python -m trainer commands --vocab my-commands.toml --out DIR [--enrolled DIR] [--reviewed DIR]

Stages: check the phrases → synthesise them with every installed TTS voice (``trainer synth``) → fine-tune
from the bundled model's layers, trained on real speech (``--base``, ``--start``) → score the held-out
voices (``trainer evaluate``) → export ONNX (``trainer export``). ``_unknown_`` is other speech:
synthetic phrases that share no word with a command, and real recordings of words that are not
commands (``--other-speech``, the Speech Commands data set by default). ``_background_`` is non-speech.
Clips of the user's own voice (``streamclf enroll``, ``--enrolled``) and utterances they reviewed
(``streamclf review``, ``--reviewed``) are weighted strongly. The synthetic speech is kept in
``DIR/work`` (``--work``) and reused by the next run with the same phrases.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from streamclf.errors import EXIT_OK, StartupError

from . import tts
from .command_vocab import (
    DEFAULT_OTHER_PHRASES,
    REPO,
    check_speakable,
    other_phrases,
    read_commands,
    training_vocabulary_toml,
)

log = logging.getLogger(__name__)

Start = Literal["base", "random", "embedding"]
STARTS: tuple[str, ...] = ("base", "random", "embedding")
EMBEDDING_CONFIG = REPO / "configs" / "models" / "speech-embedding"
DEFAULT_OTHER_SPEECH = "google/speech_commands"
DEFAULT_OTHER_SPEECH_CONFIG = "v0.02"

MAX_COMMAND_S = 4.0
"""Clips are never cut longer than this (the daemon's utterances are a few seconds at most)."""

T = TypeVar("T")


@dataclass(frozen=True)
class CommandsOptions:
    vocab: Path
    out: Path
    work: Path | None = None
    """Synthetic speech and the training vocabulary (default ``out/work``); a second run with the same
    phrases reuses the speech there."""
    base: str | None = None
    """Model whose layers are the starting point (default: the bundled model)."""
    start: Start = "base"
    """base: the base model's layers; random: its architecture with random weights; embedding: a frozen
    speech-embedding front end pretrained on real speech with a new head."""
    other_speech: str | None = DEFAULT_OTHER_SPEECH
    other_speech_config: str = DEFAULT_OTHER_SPEECH_CONFIG
    unknown_phrases: Path = DEFAULT_OTHER_PHRASES
    enrolled: tuple[str, ...] = ()
    enrolled_weight: float = 30.0
    reviewed: tuple[str, ...] = ()
    reviewed_weight: float = 10.0
    steps: int = 500
    learning_rate: float | None = None
    """Default: 1e-3 from the base's layers, 3e-3 otherwise."""
    seed: int = 0
    jobs: int = 2
    max_voices: int | None = 200
    """At most this many voice keys per TTS engine (espeak-ng has hundreds)."""
    engines: tuple[str, ...] = tts.ENGINES
    int8: bool = True


@dataclass(frozen=True)
class CommandsResult:
    out: Path
    labels: tuple[str, ...]
    stage_seconds: dict[str, float]
    figures: dict[str, float]
    """Held-out synthetic voices and each source's held-out accuracy."""
    clips: dict[str, int] = field(default_factory=dict)


# --- stages -------------------------------------------------------------------------------------


def work_dir(options: CommandsOptions) -> Path:
    return options.work if options.work is not None else options.out / "work"


def prepare_vocabulary(options: CommandsOptions) -> tuple[Path, tuple[str, ...]]:
    """Check the user's phrases and write the training vocabulary; returns (path, labels)."""
    commands = read_commands(options.vocab)
    check_speakable(commands, options.engines)
    text = training_vocabulary_toml(commands, other_phrases(options.unknown_phrases, commands))
    path = work_dir(options) / "vocab.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    from .vocab import load_vocabulary

    return path, load_vocabulary(path).labels


def synthesise(options: CommandsOptions, vocab: Path) -> Path:
    """Render the training vocabulary, or reuse the last run's speech when its vocabulary was the same."""
    from .synth import INFO_FILE, SynthOptions, synthesize_dataset

    folder = work_dir(options) / "synth"
    used = folder / "vocab.toml"
    if (folder / INFO_FILE).is_file() and used.is_file() and used.read_text() == vocab.read_text():
        log.info("reusing the synthetic speech in %s (same phrases)", folder)
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    synthesize_dataset(
        SynthOptions(vocab=vocab, out=folder, seed=options.seed, jobs=options.jobs,
                     engines=options.engines, max_voices=options.max_voices)
    )  # fmt: skip
    shutil.copyfile(vocab, used)
    return folder


def fit_settings(options: CommandsOptions, vocab: Path, synth: Path) -> Any:
    from .settings import DataSettings, FitSettings, ModelSettings, TrainingSettings

    base = options.base or _default_model()
    sources = (str(synth), *options.enrolled, *options.reviewed)
    weights = (1.0, *(options.enrolled_weight,) * len(options.enrolled),
               *(options.reviewed_weight,) * len(options.reviewed))  # fmt: skip
    data = DataSettings(
        dataset=sources, weights=weights, vocab=str(vocab),
        unknown_data=(options.other_speech,) if options.other_speech else (),
        dataset_config=options.other_speech_config, label_column="label",
        max_duration=command_seconds(synth),
    )  # fmt: skip
    if options.start == "base":
        model = ModelSettings(base_model=base, from_config=None)
    elif options.start == "random":
        model = ModelSettings(base_model=None, from_config=base)
    else:
        model = ModelSettings(base_model=None, from_config=str(EMBEDDING_CONFIG))
    default_rate = 1e-3 if options.start == "base" else 3e-3
    training = TrainingSettings(
        output_dir=str(options.out), max_steps=options.steps,
        learning_rate=options.learning_rate or default_rate, warmup_ratio=0.05, weight_decay=0.01,
        per_device_train_batch_size=64, per_device_eval_batch_size=64, seed=options.seed,
        balance="sampler", augment=True, eval_strategy="steps", eval_steps=max(1, options.steps // 2),
        save_total_limit=1, dataloader_num_workers=1 if options.jobs > 1 else 0,
        front_end_views=4 if options.start == "embedding" else 0,
    )  # fmt: skip
    return FitSettings(data=data, model=model, training=training)


def command_seconds(synth: Path) -> float:
    """How long a clip may be: the longest spoken command (p99 of the synthetic training clips, whose
    silence is trimmed) with a margin, never under the 1 s of a Speech Commands clip. Taken over all
    sources, the many 1 s recordings of other speech would cut long phrases short."""
    import csv

    import numpy as np
    import soundfile as sf

    from .vocab import BACKGROUND

    with (synth / "train" / "metadata.csv").open(encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["label"] != BACKGROUND]
    seconds = [sf.info(str(synth / "train" / row["file_name"])).duration for row in rows]
    longest = float(np.percentile(seconds, 99)) if seconds else 1.0
    return round(min(MAX_COMMAND_S, max(1.0, longest + 0.1)), 2)


def _default_model() -> str:
    from streamclf.models import DEFAULT_MODEL_DIR

    if not (DEFAULT_MODEL_DIR / "config.json").is_file():
        raise StartupError(f"the bundled model is missing from {DEFAULT_MODEL_DIR}; pass --base")
    return str(DEFAULT_MODEL_DIR)


def fit(options: CommandsOptions, vocab: Path, synth: Path, argv: Sequence[str]) -> Any:
    from .fit import run_fit

    result = run_fit(fit_settings(options, vocab, synth), argv)
    for checkpoint in options.out.glob("checkpoint-*"):
        shutil.rmtree(checkpoint, ignore_errors=True)
    return result


def evaluate_held_out_voices(options: CommandsOptions, vocab: Path, synth: Path) -> float:
    from .evaluate import run_evaluation
    from .settings import DataSettings

    data = DataSettings(dataset=(str(synth),), vocab=str(vocab), label_column="label")
    report = run_evaluation(str(options.out), data, "test", options.out / "eval-test", 64, options.seed)
    return float(report.accuracy)


def export(options: CommandsOptions) -> None:
    from .export import export_onnx

    export_onnx(options.out, int8=options.int8)


# --- the run ------------------------------------------------------------------------------------


class Stages:
    """Runs the stages in turn, timing each and showing which one is running."""

    def __init__(self, names: Sequence[str]) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.names = tuple(names)
        self.seconds: dict[str, float] = {}

    def run(self, name: str, work: Callable[[], T]) -> T:
        number = self.names.index(name) + 1
        self.console.rule(f"[bold]stage {number}/{len(self.names)}: {name}")
        started = time.monotonic()
        value = work()
        self.seconds[name] = time.monotonic() - started
        self.console.log(f"{name} took {self.seconds[name] / 60:.1f} min")
        return value


def run_commands(options: CommandsOptions, argv: Sequence[str]) -> CommandsResult:
    stages = Stages(("check phrases", "synthesise", "fit", "evaluate", "export"))
    vocab, labels = stages.run("check phrases", lambda: prepare_vocabulary(options))
    synth = stages.run("synthesise", lambda: synthesise(options, vocab))
    fitted = stages.run("fit", lambda: fit(options, vocab, synth, argv))
    held_out = stages.run("evaluate", lambda: evaluate_held_out_voices(options, vocab, synth))
    stages.run("export", lambda: export(options))
    figures = {"held-out synthetic voices": held_out}
    figures.update({
        name.removeprefix("eval_").removesuffix("_accuracy"): value
        for name, value in fitted.metrics.items() if name.endswith("accuracy")
    })  # fmt: skip
    return CommandsResult(options.out, labels, stages.seconds, figures, dict(fitted.split_sizes))


def summary_table(result: CommandsResult) -> Any:
    from rich.table import Table

    table = Table(title=f"trainer commands: {result.out}")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("labels", ", ".join(result.labels))
    for split, clips in result.clips.items():
        table.add_row(f"{split} clips", str(clips))
    for name, value in result.figures.items():
        table.add_row(f"accuracy: {name}", f"{value * 100:.1f} %")
    for stage, seconds in result.stage_seconds.items():
        table.add_row(f"time: {stage}", f"{seconds / 60:.1f} min")
    table.add_row("time: all", f"{sum(result.stage_seconds.values()) / 60:.1f} min")
    return table


# --- command line -------------------------------------------------------------------------------


def add_commands_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "commands", help="your own commands: phrases → synthetic speech → fine-tuned model → ONNX",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )  # fmt: skip
    parser.add_argument("--vocab", type=Path, required=True, help="TOML [labels]: label = [phrases]")
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    parser.add_argument("--work", type=Path, help="synthetic speech, reused when the phrases match "
                        "(default: OUT/work)")
    parser.add_argument("--base", help="model whose layers to start from (default: the bundled model)")
    parser.add_argument("--start", choices=STARTS, default="base",
                        help="base layers (default), random weights, or a frozen speech embedding")
    parser.add_argument("--other-speech", default=DEFAULT_OTHER_SPEECH,
                        help=f"real recordings whose non-command words become _unknown_ (hub id or folder; "
                             f"default {DEFAULT_OTHER_SPEECH}); 'none' for synthetic other speech only")
    parser.add_argument("--other-speech-config", default=DEFAULT_OTHER_SPEECH_CONFIG,
                        help="hub configuration of --other-speech")
    parser.add_argument("--unknown-phrases", type=Path, default=DEFAULT_OTHER_PHRASES,
                        help="vocabulary whose _unknown_ phrases and words are synthesised as other speech")
    parser.add_argument("--enrolled", action="append", default=[], help="streamclf enroll folder (repeat)")
    parser.add_argument("--enrolled-weight", type=float, default=30.0)
    parser.add_argument("--reviewed", action="append", default=[], help="streamclf review folder (repeat)")
    parser.add_argument("--reviewed-weight", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=500, help="optimizer steps of 128 clips (default 500)")
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="synthesis processes (default 2)")
    parser.add_argument("--max-voices", type=int, default=200, help="voice keys per TTS engine (default 200)")
    parser.add_argument("--engines", default=",".join(tts.ENGINES), help="comma-separated TTS engines")
    parser.add_argument("--no-int8", dest="int8", action="store_false", help="skip model.int8.onnx")
    return parser  # fmt: skip


def options_from_args(args: argparse.Namespace) -> CommandsOptions:
    from streamclf.errors import ConfigError

    if args.steps < 1:
        raise ConfigError("steps", "must be at least 1")
    if min([args.enrolled_weight, args.reviewed_weight]) <= 0:
        raise ConfigError("weights", "must be positive")
    other = None if str(args.other_speech).lower() == "none" else args.other_speech
    options = CommandsOptions(
        vocab=args.vocab, out=args.out, work=args.work, base=args.base, start=args.start, other_speech=other,
        other_speech_config=args.other_speech_config, unknown_phrases=args.unknown_phrases,
        enrolled=tuple(args.enrolled), enrolled_weight=args.enrolled_weight, reviewed=tuple(args.reviewed),
        reviewed_weight=args.reviewed_weight, steps=args.steps, learning_rate=args.learning_rate,
        seed=args.seed, jobs=args.jobs, max_voices=args.max_voices,
        engines=tuple(e.strip() for e in args.engines.split(",") if e.strip()), int8=args.int8,
    )  # fmt: skip
    for folder in (*options.enrolled, *options.reviewed):
        if not Path(folder).is_dir():
            raise ConfigError(folder, "no such folder")
    return options


def run_commands_cli(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .report import show

    options = options_from_args(args)
    result = run_commands(options, argv)
    show([summary_table(result)])
    sys.stdout.write(f"Run it: streamclf listen --model {options.out}\n")
    return EXIT_OK
