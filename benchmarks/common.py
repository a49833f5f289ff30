"""Shared pieces of the benchmark scripts: statistics, Markdown tables, models, speech, the CLI.

Every figure is a median with its spread (the interquartile range, p25-p75, unless a column
says otherwise); ratios compare figures measured in the same run. Nothing here is a test.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RATE = 16000
BASE_CONFIG = REPO / "configs" / "models" / "logmel-cnn"
WORK_DIR = Path(os.environ.get("STREAMCLF_BENCH_DIR", REPO / "build" / "bench"))
"""Models and audio the benchmarks build are cached here between runs."""


# --- statistics and tables ---------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    median: float
    p25: float
    p75: float
    count: int

    def show(self, digits: int = 1) -> str:
        return f"{self.median:.{digits}f} ({self.p25:.{digits}f}–{self.p75:.{digits}f})"


def summarise(values: Sequence[float]) -> Summary:
    if not values:
        return Summary(float("nan"), float("nan"), float("nan"), 0)
    p25, p75 = np.percentile(values, [25, 75])
    return Summary(statistics.median(values), float(p25), float(p75), len(values))


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def emit(title: str, body: str, notes: Sequence[str] = ()) -> None:
    """Print one benchmark's Markdown section on stdout (run_all collects it)."""
    print(f"### {title}\n")
    print(body)
    for note in notes:
        print(f"\n{note}")
    print(flush=True)


# --- the default model ---------------------------------------------------------------------------


BUILT_MODEL_DIR = REPO / "build" / "default-model" / "model"
"""Where scripts/build-default-model trains the default model before copying it into the package."""


def default_model_dir() -> tuple[Path, str]:
    """The bundled default model; else the one scripts/build-default-model left in build/; else a
    random-weight log-mel CNN of the same architecture (cached)."""
    from streamclf.models import DEFAULT_MODEL_DIR

    if (DEFAULT_MODEL_DIR / "model.safetensors").is_file():
        return DEFAULT_MODEL_DIR, "bundled default model"
    if (BUILT_MODEL_DIR / "model.safetensors").is_file():
        return BUILT_MODEL_DIR, f"default model as trained by scripts/build-default-model ({BUILT_MODEL_DIR})"
    path = WORK_DIR / "logmel-random"
    if not (path / "model.safetensors").is_file():
        _build_random_logmel(path)
    return path, "random-weight log-mel CNN (configs/models/logmel-cnn; bundled model absent)"


def _build_random_logmel(path: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification

    import streamclf  # noqa: F401  (registers the log-mel model)

    torch.manual_seed(0)
    labels = [f"cmd{i}" for i in range(36)]
    config = AutoConfig.from_pretrained(
        BASE_CONFIG, id2label=dict(enumerate(labels)), label2id={k: i for i, k in enumerate(labels)}
    )
    model = AutoModelForAudioClassification.from_config(config).eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    AutoFeatureExtractor.from_pretrained(BASE_CONFIG).save_pretrained(path)


def onnx_copy(model_dir: Path, name: str) -> Path:
    """A cached copy of ``model_dir`` with model.onnx and model.int8.onnx exported beside it."""
    target = WORK_DIR / f"onnx-{name}"
    stamp = target / "source.json"
    source_mtime = (model_dir / "model.safetensors").stat().st_mtime
    fresh = stamp.is_file() and json.loads(stamp.read_text()).get("mtime") == source_mtime
    if fresh and (target / "model.int8.onnx").is_file():
        return target
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for item in model_dir.iterdir():
        if item.is_file() and item.suffix in (".json", ".safetensors"):
            shutil.copy2(item, target / item.name)
    from trainer.export import export_onnx

    export_onnx(target, int8=True)
    stamp.write_text(json.dumps({"source": str(model_dir), "mtime": source_mtime}))
    return target


# --- speech ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def command_clips(count: int, seed: int = 0) -> tuple[tuple[str, np.ndarray], ...]:
    """``count`` spoken command words (text, trimmed float32 at 16 kHz), many voices, cached on disk."""
    import soundfile as sf

    from trainer.streams import COMMAND_WORDS, speaking_voices
    from trainer.tts import TtsError, synthesize

    cache = WORK_DIR / f"clips-{count}-{seed}"
    if (cache / "index.json").is_file():
        index = json.loads((cache / "index.json").read_text())
        return tuple((text, sf.read(cache / f"{i}.wav", dtype="float32")[0]) for i, text in enumerate(index))
    rng = np.random.default_rng(seed)
    voices = speaking_voices(rng, max(8, count // 4))
    clips: list[tuple[str, np.ndarray]] = []
    attempt = 0
    while len(clips) < count and attempt < count * 3:
        text = COMMAND_WORDS[attempt % len(COMMAND_WORDS)]
        voice = voices[attempt % len(voices)]
        attempt += 1
        try:
            audio = synthesize(text, voice, RATE)
        except TtsError:
            continue
        if 0.12 * RATE <= len(audio) <= 1.2 * RATE:
            clips.append((text, audio.astype(np.float32)))
    cache.mkdir(parents=True, exist_ok=True)
    for i, (_, audio) in enumerate(clips):
        sf.write(cache / f"{i}.wav", audio, RATE, subtype="FLOAT")
    (cache / "index.json").write_text(json.dumps([t for t, _ in clips]))
    return tuple(clips)


def command_stream(seconds: float, seed: int = 0, gap_range: tuple[float, float] = (0.8, 2.5),
                   noise: str | None = "pink", clip_count: int = 48):
    """A :class:`trainer.streams.Stream` of about ``seconds`` of commands and silence (known word times)."""
    from trainer.streams import build_stream

    clips = command_clips(clip_count)
    rng = np.random.default_rng(seed)
    words: list[np.ndarray] = []
    texts: list[str] = []
    gaps: list[float] = []
    total = 0.5
    while total < seconds - 1.0:
        text, audio = clips[int(rng.integers(len(clips)))]
        gap = float(rng.uniform(*gap_range))
        words.append(audio)
        texts.append(text)
        gaps.append(gap)
        total += len(audio) / RATE + gap
    levels = list(rng.uniform(-32.0, -14.0, size=len(words)))
    return build_stream(words, texts, gaps[:-1], rng, lead_s=0.5, tail_s=1.0, level_dbfs=levels,
                        noise=noise, snr_db=25.0)


# --- the machine and the command line ----------------------------------------------------------


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "streamclf", *args]


def child_env(threads: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


@contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def machine_description() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = os.cpu_count() or 0
    load = os.getloadavg()
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = [f"Python {sys.version.split()[0]}"]
    for module in ("numpy", "torch", "transformers", "onnxruntime"):
        try:
            versions.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            versions.append(f"{module} absent")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True, check=False).stdout.strip() or "unknown"
    return (
        f"{cpu}, {cores} logical cores, {mem_gib:.0f} GiB RAM; load average at start "
        f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}; {', '.join(versions)}; commit {commit}"
    )
