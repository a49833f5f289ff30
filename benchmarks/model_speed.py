"""How long each model takes to classify one 1 s segment on one CPU thread, with torch and ONNX Runtime.

Usage: python -m benchmarks.model_speed [--model DIR …] [--config DIR …] [--repeats N]

``--model`` takes trained model directories (ONNX: their ``model.onnx``, exported into a scratch copy
when missing); ``--config`` takes architecture configs (``configs/models/*``), built with random
weights (the speech-embedding front end with its pretrained weights) and exported. Without either it
measures the bundled model and every config in configs/models except the wav2vec2 ones. Each figure
is the median over the repeats of the daemon's own classifier (``load_classifier``: features, model
and softmax); ratios compare figures of the same run. Prints a Markdown table.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core: numpy's BLAS must not spin up a thread pool
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

import streamclf  # noqa: F401 - registers the project's architectures
from benchmarks.common import REPO, WORK_DIR, table
from streamclf.models import DEFAULT_MODEL_DIR

CONFIGS = REPO / "configs" / "models"
LABELS = 37


def build_from_config(config_dir: Path, out: Path) -> Path:
    """A random-weight model of ``config_dir`` (pretrained front end where it has one), exported."""
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification

    from trainer.pretrained import initialise_front_end

    config = AutoConfig.from_pretrained(config_dir, num_labels=LABELS)
    model = AutoModelForAudioClassification.from_config(config).eval()
    initialise_front_end(model)
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(out)
    AutoFeatureExtractor.from_pretrained(config_dir).save_pretrained(out)
    from trainer.export import export_onnx

    export_onnx(out)
    return out


def with_onnx(model_dir: Path) -> Path:
    """``model_dir`` when it holds model.onnx, else a scratch copy with one exported."""
    from trainer.export import export_onnx

    if (model_dir / "model.onnx").is_file():
        return model_dir
    copy = WORK_DIR / "model-speed" / model_dir.name
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(model_dir, copy)
    export_onnx(copy)
    return copy


def time_classifier(model_dir: Path, backend: str, repeats: int) -> float:
    from streamclf.classifier import load_classifier
    from streamclf.config import ModelSettings

    classifier = load_classifier(ModelSettings(model=str(model_dir), backend=backend, threads=1))
    audio = (np.random.default_rng(0).standard_normal(16000) * 0.05).astype(np.float32)
    for _ in range(10):
        classifier.classify([audio], top_k=3)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        classifier.classify([audio], top_k=3)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def size_mb(model_dir: Path) -> float:
    return (model_dir / "model.safetensors").stat().st_size / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", type=Path, action="append", default=[])
    parser.add_argument("--config", type=Path, action="append", default=[])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    models = list(args.model)
    configs = list(args.config)
    if not models and not configs:
        models = [DEFAULT_MODEL_DIR] if (DEFAULT_MODEL_DIR / "config.json").exists() else []
        configs = sorted(
            p for p in CONFIGS.iterdir() if (p / "config.json").is_file() and "wav2vec2" not in p.name
        )
    targets = [(str(m), with_onnx(m), m) for m in models]
    targets += [(f"{c.name} (random weights)", build_from_config(c, WORK_DIR / "model-speed" / c.name), None)
                for c in configs]  # fmt: skip
    rows = []
    for name, onnx_dir, torch_dir in targets:
        torch_ms = time_classifier(torch_dir or onnx_dir, "torch", args.repeats)
        onnx_ms = time_classifier(onnx_dir, "onnx", args.repeats)
        rows.append((name, f"{size_mb(onnx_dir):.2f}", f"{torch_ms:.2f}", f"{onnx_ms:.2f}",
                     f"{torch_ms / onnx_ms:.1f}x"))  # fmt: skip
    print(f"1 s segment, one thread, median of {args.repeats} (features + model + softmax):\n")
    print(table(("model", "weights MB", "torch ms", "ONNX ms", "torch / ONNX"), rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
