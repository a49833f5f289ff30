"""Accuracy change of the int8 ONNX graph on held-out synthetic voices.

    .venv/bin/python -m benchmarks.int8_accuracy [--quick] [--data DIR] [--limit N]

Uses the default model's held-out test split when it is on disk (``scripts/build-default-model``
keeps it under ``build/default-model/data/test``: an audiofolder with ``metadata.csv``), else
generates held-out clips with TTS voices (then only the agreement between backends is
meaningful: the model may not know those words). Each clip is classified whole by the torch
backend, the ONNX fp32 graph and the ONNX int8 graph; prints accuracy per backend, the int8
change in points, and how often int8's top-1 label equals fp32's.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from benchmarks.common import REPO, command_clips, default_model_dir, emit, onnx_copy, table
from streamclf.classifier import Classifier
from streamclf.config import ModelSettings

DEFAULT_DATA = REPO / "build" / "default-model" / "data"
BATCH = 16


def held_out(data: Path, limit: int) -> tuple[list[np.ndarray], list[str | None], str]:
    metadata = data / "test" / "metadata.csv"
    if metadata.is_file():
        import soundfile as sf
        import soxr

        clips, labels = [], []
        with metadata.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        step = max(1, len(rows) // limit)
        for row in rows[::step][:limit]:
            audio, rate = sf.read(data / "test" / row["file_name"], dtype="float32", always_2d=True)
            mono = audio.mean(axis=1)
            clips.append(soxr.resample(mono, rate, 16000).astype(np.float32) if rate != 16000 else mono)
            labels.append(row["label"])
        return clips, labels, f"{len(clips)} clips of the held-out test split ({data / 'test'})"
    generated = command_clips(min(limit, 96), seed=99)
    return [a for _, a in generated], [None] * len(generated), (
        f"{len(generated)} generated clips (no test split at {data}; accuracy not applicable)")


def top1(classifier: Classifier, clips: list[np.ndarray]) -> list[str]:
    labels: list[str] = []
    for start in range(0, len(clips), BATCH):
        labels += [r[0].label for r in classifier.classify(clips[start : start + BATCH], top_k=1)]
    return labels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="at most 64 clips (smoke run)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None, help="most clips used (default 2000)")
    args = parser.parse_args()
    limit = args.limit or (64 if args.quick else 2000)
    from streamclf.classifier import load_classifier

    model_dir, model_title = default_model_dir()
    onnx_dir = onnx_copy(model_dir, "default")
    clips, truth, source = held_out(args.data, limit)
    backends = {
        "torch": load_classifier(ModelSettings(model=str(model_dir), backend="torch")),
        "onnx fp32": load_classifier(ModelSettings(model=str(onnx_dir), backend="onnx")),
        "onnx int8": load_classifier(ModelSettings(model=str(onnx_dir / "model.int8.onnx"), backend="onnx")),
    }
    predicted = {name: top1(clf, clips) for name, clf in backends.items()}
    model_labels = set(backends["torch"].labels)
    known = [i for i, t in enumerate(truth) if t is not None and t in model_labels]
    if len(known) < len(truth) / 2:
        source += f"; the model knows too few of these labels ({len(known)}): accuracy not applicable"
        known = []

    def accuracy(name: str) -> float | None:
        if not known:
            return None
        return sum(predicted[name][i] == truth[i] for i in known) / len(known)

    fp32 = accuracy("onnx fp32")
    rows = []
    for name in backends:
        acc = accuracy(name)
        agree = np.mean([a == b for a, b in zip(predicted[name], predicted["onnx fp32"], strict=True)])
        change = "–" if acc is None or fp32 is None else f"{(acc - fp32) * 100:+.2f}"
        rows.append([name, "n/a" if acc is None else f"{acc:.2%}", change, f"{agree:.2%}"])
    header = ["backend", "top-1 accuracy", "change vs fp32 (points)", "top-1 agreement with fp32"]
    notes = [f"- {source}; model: {model_title}; each clip classified whole."]
    emit("int8 accuracy on held-out synthetic voices", table(header, rows), notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
