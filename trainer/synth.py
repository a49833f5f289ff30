"""``python -m trainer synth``: a spoken-command dataset from every TTS voice on the machine.

Writes an ``audiofolder``: ``OUT/{train,validation,test}/<label>/<label>_<n>.wav`` and one
``metadata.csv`` per split (``file_name,label,text,voice,engine,augment``). Voices are split by
key (engine + voice + variant): a voice in validation or test never appears in training.
Training clips get a random augmentation chain (:func:`trainer.augment.augment_speech`);
validation and test clips cycle through the named conditions of
:data:`trainer.augment.TEST_CONDITIONS` so accuracy can be read per condition. Every item has
its own seed (run seed + item number), so the output does not depend on ``--jobs``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import multiprocessing
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from streamclf.errors import EXIT_OK, StartupError, StreamclfError
from trainer import augment, noise, tts
from trainer.vocab import Vocabulary, load_vocabulary

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
COLUMNS = ("file_name", "label", "text", "voice", "engine", "augment")
INFO_FILE = "synth-info.json"
"""Written last into the output folder: seconds taken, clips per split, seed."""
HELD_OUT_FRACTION = {"validation": 0.05, "test": 0.08}
"""Share of the voice keys of a large engine held out for each split."""

ESPEAK_RATE_WPM = (115, 235)
ESPEAK_PITCH = (15, 85)
STRETCH_PERCENT = (80, 130)
"""flite/festival duration stretch range (100 = normal speed)."""


@dataclass(frozen=True)
class SynthOptions:
    vocab: Path
    out: Path
    seed: int = 0
    per_voice: int = 1
    """Renderings of each phrase set per voice key (each with its own rate/pitch)."""
    rare_voice_repeats: int = 12
    """Extra multiplier for engines with few voices (flite, festival), so they are not drowned out."""
    background_factor: float = 1.5
    """``_background_`` clips per split, relative to the average spoken label's count."""
    jobs: int = 2
    engines: tuple[str, ...] = tts.ENGINES
    max_voices: int | None = None
    """Use at most this many voice keys per engine (quick runs and tests)."""
    sample_rate: int = 16000


@dataclass(frozen=True)
class Item:
    """One clip to render; everything random about it derives from ``(seed, index)``."""

    index: int
    seed: int
    split: str
    label: str
    text: str
    voice: tts.Voice | None
    """None for a background clip."""
    condition: str | None = None
    """Named held-out condition (validation/test), None for the random training chain."""


@dataclass(frozen=True)
class Row:
    split: str
    file_name: str
    label: str
    text: str
    voice: str
    engine: str
    augment: str


# ---------------------------------------------------------------------------------------------- planning


def split_voice_keys(keys: Sequence[str], seed: int) -> dict[str, str]:
    """Voice key → split. Per engine: a large one (≥ 10 keys) holds out fixed fractions; a small
    one gives one key to test (≥ 2 keys) and one to validation (≥ 4 keys); the rest train."""
    by_engine: dict[str, list[str]] = {}
    for key in sorted(set(keys)):
        by_engine.setdefault(key.split(":", 1)[0], []).append(key)
    assignment: dict[str, str] = {}
    for engine, engine_keys in sorted(by_engine.items()):
        order = list(engine_keys)
        np.random.default_rng([seed, sum(engine.encode())]).shuffle(order)
        count = len(order)
        if count >= 10:
            n_test = max(1, round(count * HELD_OUT_FRACTION["test"]))
            n_val = max(1, round(count * HELD_OUT_FRACTION["validation"]))
        else:
            n_test = 1 if count >= 2 else 0
            n_val = 1 if count >= 4 else 0
        for position, key in enumerate(order):
            if position < n_test:
                assignment[key] = "test"
            elif position < n_test + n_val:
                assignment[key] = "validation"
            else:
                assignment[key] = "train"
    return assignment


def _vary(voice: tts.Voice, rng: np.random.Generator) -> tts.Voice:
    if voice.engine == "espeak-ng":
        return replace(
            voice, rate=int(rng.integers(*ESPEAK_RATE_WPM)), pitch=int(rng.integers(*ESPEAK_PITCH))
        )
    return replace(voice, rate=int(rng.integers(*STRETCH_PERCENT)))


def _select_voices(options: SynthOptions) -> list[tts.Voice]:
    voices: list[tts.Voice] = []
    for engine in options.engines:
        if engine not in tts.available_engines():
            log.info("%s is not installed: skipped", engine)
            continue
        found = tts.list_voices(engine)
        if options.max_voices is not None and len(found) > options.max_voices:
            picker = np.random.default_rng([options.seed, 7, len(voices)])
            chosen = sorted(picker.choice(len(found), size=options.max_voices, replace=False))
            found = [found[i] for i in chosen]
        voices.extend(found)
    if not voices:
        raise StartupError("synth: no text-to-speech engine found (install espeak-ng, flite or festival)")
    return voices


def plan_items(vocabulary: Vocabulary, voices: Sequence[tts.Voice], options: SynthOptions) -> list[Item]:
    """Every clip of the dataset, in a fixed order (the item number is part of each clip's seed)."""
    split_of = split_voice_keys([v.key for v in voices], options.seed)
    engine_sizes = Counter(v.engine for v in voices)
    planner = np.random.default_rng([options.seed, 1])
    specs: list[tuple[str, str, str, tts.Voice | None]] = []
    for base_voice in voices:
        rare = engine_sizes[base_voice.engine] < 10
        repeats = options.per_voice * (options.rare_voice_repeats if rare else 1)
        for label, phrases in vocabulary.phrases.items():
            for repeat in range(repeats):
                text = phrases[repeat % len(phrases)] if repeats > 1 else str(planner.choice(phrases))
                specs.append((split_of[base_voice.key], label, text, _vary(base_voice, planner)))
    if vocabulary.background is not None:
        per_label = Counter((split, label) for split, label, _, _ in specs)
        for split in SPLITS:
            counts = [n for (s, _), n in per_label.items() if s == split]
            if counts:
                total = round(float(np.mean(counts)) * options.background_factor)
                specs.extend((split, vocabulary.background, "", None) for _ in range(total))
    items: list[Item] = []
    condition_turn: Counter[str] = Counter()
    for index, (split, label, text, voice) in enumerate(specs):
        condition = None
        if split != "train" and voice is not None:
            turn = condition_turn[split]
            condition = augment.TEST_CONDITIONS[turn % len(augment.TEST_CONDITIONS)]
            condition_turn[split] += 1
        items.append(Item(index, options.seed, split, label, text, voice, condition))
    return items


# ---------------------------------------------------------------------------------------------- rendering

BACKGROUND_KINDS = ("white", "pink", "brown", "hum", "clicks", "clatter", "babble", "quiet", "mixture")


def render_background(rng: np.random.Generator, sample_rate: int) -> augment.Augmented:
    """Non-speech: a noise colour, hum, clicks, clatter, heavily degraded babble, near-silence or a
    mixture of two, through a random room/microphone/channel, at a random level."""
    n = int(rng.uniform(0.4, 1.6) * sample_rate)
    kind = str(rng.choice(BACKGROUND_KINDS))
    steps = [f"bg={kind}"]
    if kind == "quiet":
        x = np.zeros(n, dtype=np.float32)
    elif kind == "mixture":
        first, second = rng.choice(
            ("white", "pink", "brown", "hum", "clicks", "clatter"), size=2, replace=False
        )
        x = noise.make_noise(str(first), n, rng, sample_rate) + noise.set_level_dbfs(
            noise.make_noise(str(second), n, rng, sample_rate), float(rng.uniform(-35.0, -15.0))
        )
        steps[0] = f"bg={first}+{second}"
    else:
        x = noise.make_noise(kind, n, rng, sample_rate)
    if kind == "babble":  # heavily degraded: far away in a reverberant room, through a narrow channel
        x = augment.reverberate(x, sample_rate, rng, float(rng.uniform(0.5, 1.2)))
        x = augment.band_limit(x, sample_rate, 200.0, float(rng.uniform(1500.0, 3000.0)))
        steps.append("degraded")
    elif rng.random() < 0.25:
        rt60 = float(rng.uniform(0.15, 0.8))
        x = augment.reverberate(x, sample_rate, rng, rt60)
        steps.append(f"rir={rt60:.2f}")
    if len(x) and np.any(x):
        x = augment.microphone_colour(x, sample_rate, rng)
        if rng.random() < 0.15:
            x = augment.telephone(x, sample_rate)
            steps.append("tel")
        level = float(rng.uniform(-65.0, -10.0))
        x = noise.set_level_dbfs(x, level)
        steps.append(f"level={level:.0f}")
    floor = float(rng.uniform(-80.0, -50.0))
    x = augment.add_noise_floor(x, rng, floor)
    steps.append(f"floor={floor:.0f}")
    return augment.Augmented(augment.finish(x), ";".join(steps))


def _voice_description(voice: tts.Voice) -> str:
    parts = []
    if voice.rate is not None:
        parts.append(f"rate={voice.rate}")
    if voice.pitch is not None:
        parts.append(f"pitch={voice.pitch}")
    return ";".join(parts)


def render_item(item: Item, out: Path, sample_rate: int) -> Row | None:
    """Synthesise, augment and write one clip; None (logged) when the TTS engine fails on it."""
    rng = np.random.default_rng([item.seed, item.index])
    if item.voice is None:
        result = render_background(rng, sample_rate)
        voice_key, engine = "", "noise"
    else:
        try:
            speech = tts.synthesize(item.text, item.voice, sample_rate)
        except tts.TtsError as err:
            log.warning("skipped item %d: %s", item.index, err)
            return None
        if item.condition is None:
            result = augment.augment_speech(speech, sample_rate, rng)
        else:
            result = augment.apply_condition(speech, sample_rate, rng, item.condition)
        tts_part = _voice_description(item.voice)
        if tts_part:
            result = augment.Augmented(result.audio, f"{tts_part};{result.description}")
        voice_key, engine = item.voice.key, item.voice.engine
    file_name = f"{item.label}/{item.label}_{item.index:06d}.wav"
    path = out / item.split / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, result.audio, sample_rate, subtype="PCM_16")
    return Row(item.split, file_name, item.label, item.text, voice_key, engine, result.description)


def _render_star(job: tuple[Item, Path, int]) -> Row | None:
    return render_item(*job)


def render_all(items: Sequence[Item], out: Path, options: SynthOptions) -> Iterator[Row | None]:
    """Rows in item order, rendered by ``options.jobs`` processes."""
    jobs = [(item, out, options.sample_rate) for item in items]
    if options.jobs <= 1:
        yield from map(_render_star, jobs)
        return
    with multiprocessing.get_context("fork").Pool(options.jobs) as pool:
        yield from pool.imap(_render_star, jobs, chunksize=16)


class MetadataWriter:
    """One ``metadata.csv`` per split folder (file names relative to it), written row by row as clips
    arrive, so an interrupted run still leaves a readable dataset of what it finished."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.counts: Counter[str] = Counter()
        self._handles: dict[str, Any] = {}
        self._writers: dict[str, Any] = {}

    def write(self, row: Row) -> None:
        if row.split not in self._writers:
            (self.out / row.split).mkdir(parents=True, exist_ok=True)
            handle = (self.out / row.split / "metadata.csv").open("w", newline="", encoding="utf-8")
            self._handles[row.split] = handle
            self._writers[row.split] = csv.writer(handle)
            self._writers[row.split].writerow(COLUMNS)
        self._writers[row.split].writerow(
            (row.file_name, row.label, row.text, row.voice, row.engine, row.augment)
        )
        self.counts[row.split] += 1

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def __enter__(self) -> MetadataWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def synthesize_dataset(options: SynthOptions) -> dict[str, int]:
    """Plan, render and index the whole dataset; returns clips per split."""
    vocabulary = load_vocabulary(options.vocab)
    if options.out.exists() and any(options.out.iterdir()):
        raise StartupError(f"synth: {options.out} exists and is not empty; choose a new --out")
    voices = _select_voices(options)
    items = plan_items(vocabulary, voices, options)
    log.info(
        "synth: %d clips, %d labels, %d voice keys (%s), %d jobs",
        len(items),
        len(vocabulary.labels),
        len(voices),
        ", ".join(f"{e} {n}" for e, n in Counter(v.engine for v in voices).items()),
        options.jobs,
    )
    noise.babble(
        160, np.random.default_rng(0), options.sample_rate
    )  # builds the word pool once, before forking
    started = time.monotonic()
    skipped = 0
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("synth"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    with progress, MetadataWriter(options.out) as metadata:
        task = progress.add_task("synth", total=len(items))
        for row in render_all(items, options.out, options):
            if row is None:
                skipped += 1
            else:
                metadata.write(row)
            progress.advance(task)
    counts = {split: metadata.counts[split] for split in SPLITS if metadata.counts[split]}
    elapsed = time.monotonic() - started
    log.info(
        "synth: wrote %s clips (%s) to %s in %.1f s (%d skipped)",
        sum(counts.values()),
        ", ".join(f"{k} {v}" for k, v in counts.items()),
        options.out,
        elapsed,
        skipped,
    )
    info = {
        "seconds": round(elapsed, 1),
        "clips": counts,
        "skipped": skipped,
        "seed": options.seed,
        "jobs": options.jobs,
        "voice_keys": len(voices),
    }
    (options.out / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return counts


# ---------------------------------------------------------------------------------------------- command line


def add_synth_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``synth`` subcommand to ``python -m trainer``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "synth",
        help="generate a spoken-command dataset with the installed TTS voices",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "--vocab", type=Path, required=True, help="vocabulary TOML ([labels] label = phrases)"
    )
    parser.add_argument("--out", type=Path, required=True, help="new (or empty) output folder")
    parser.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    parser.add_argument(
        "--per-voice", type=int, default=1, help="renderings per phrase set per voice (default 1)"
    )
    parser.add_argument(
        "--rare-voice-repeats",
        type=int,
        default=12,
        help="multiplier for engines with fewer than 10 voices (default 12)",
    )
    parser.add_argument(
        "--background-factor",
        type=float,
        default=1.5,
        help="background clips relative to an average label (default 1.5)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--engines", default=",".join(tts.ENGINES), help="comma-separated engines to use")
    parser.add_argument(
        "--max-voices", type=int, default=None, help="at most this many voice keys per engine"
    )
    parser.add_argument("--sample-rate", type=int, default=16000, help="Hz (default 16000)")
    return parser


def options_from_args(args: argparse.Namespace) -> SynthOptions:
    engines = tuple(e.strip() for e in str(args.engines).split(",") if e.strip())
    unknown = [e for e in engines if e not in tts.ENGINES]
    if unknown:
        raise StartupError(
            f"synth: --engines: unknown engine {unknown[0]!r} (known: {', '.join(tts.ENGINES)})"
        )
    for name in ("per_voice", "jobs", "rare_voice_repeats", "sample_rate"):
        if getattr(args, name) < 1:
            raise StartupError(f"synth: --{name.replace('_', '-')} must be at least 1")
    if args.max_voices is not None and args.max_voices < 1:
        raise StartupError("synth: --max-voices must be at least 1")
    if args.background_factor < 0:
        raise StartupError("synth: --background-factor must not be negative")
    return SynthOptions(
        vocab=args.vocab,
        out=args.out,
        seed=args.seed,
        per_voice=args.per_voice,
        rare_voice_repeats=args.rare_voice_repeats,
        background_factor=args.background_factor,
        jobs=args.jobs,
        engines=engines,
        max_voices=args.max_voices,
        sample_rate=args.sample_rate,
    )


def run_synth(args: argparse.Namespace) -> int:
    """Entry point of ``python -m trainer synth``; errors propagate as :class:`StreamclfError`."""
    synthesize_dataset(options_from_args(args))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (``python -m trainer.synth``) while ``trainer.cli`` does not list ``synth``."""
    import sys

    parser = argparse.ArgumentParser(prog="python -m trainer")
    add_synth_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["synth", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return run_synth(args)
    except StreamclfError as err:
        sys.stderr.write(f"trainer: error: {err}\n")
        return err.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
