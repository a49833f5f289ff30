"""Evaluate a model directory on labelled audio: accuracy, macro-F1, per-class figures, confusion matrix."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .common import (
    AudioCollator,
    ClassFigures,
    EvaluationReport,
    ModelError,
    load_feature_extractor,
    load_metrics,
    register_project_models,
)
from .data import WAVEFORM, DataError, load_splits
from .settings import DataSettings

log = logging.getLogger(__name__)


def classification_report(
    references: Sequence[int] | np.ndarray,
    predictions: Sequence[int] | np.ndarray,
    names: Sequence[str],
    skipped: Sequence[str] = (),
) -> EvaluationReport:
    """Figures for integer class ids; ``names[i]`` is the name of class id ``i``.

    Accuracy and macro-F1 come from the metric scripts in trainer/metrics (the ones training uses)."""
    truth = np.asarray(references, dtype=np.int64)
    predicted = np.asarray(predictions, dtype=np.int64)
    if truth.shape != predicted.shape:
        raise ValueError("references and predictions differ in length")
    present = np.union1d(truth, predicted)
    accuracy_metric, f1_metric = load_metrics()
    accuracy = float(accuracy_metric.compute(predictions=predicted, references=truth)["accuracy"])
    macro_f1 = float(
        f1_metric.compute(predictions=predicted, references=truth, labels=present.tolist())["macro_f1"]
    )
    position = {int(c): i for i, c in enumerate(present)}
    confusion = np.zeros((len(present), len(present)), dtype=np.int64)
    for t, p in zip(truth, predicted, strict=True):
        confusion[position[int(t)], position[int(p)]] += 1
    per_class = []
    for i, class_id in enumerate(present):
        true_pos = int(confusion[i, i])
        predicted_total = int(confusion[:, i].sum())
        support = int(confusion[i, :].sum())
        precision = true_pos / predicted_total if predicted_total else 0.0
        recall = true_pos / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append(ClassFigures(names[int(class_id)], precision, recall, f1, support))
    return EvaluationReport(
        clips=int(truth.size),
        accuracy=accuracy,
        macro_f1=macro_f1,
        labels=tuple(names[int(c)] for c in present),
        per_class=tuple(per_class),
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        skipped=tuple(skipped),
    )


def plot_confusion(report: EvaluationReport, path: Path, title: str) -> None:
    """A confusion-matrix PNG (rows: truth, columns: prediction), counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    matrix = np.asarray(report.confusion)
    size = max(4.0, 0.55 * len(report.labels) + 2.0)
    figure, axes = plt.subplots(figsize=(size, size), dpi=100)
    image = axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(report.labels)), report.labels, rotation=60, ha="right")
    axes.set_yticks(range(len(report.labels)), report.labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, str(count), ha="center", va="center",
                  color="white" if count > threshold else "black", fontsize=8)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def load_trained_model(model_dir: str) -> tuple[Any, Any]:
    from transformers import AutoModelForAudioClassification

    register_project_models()
    feature_extractor = load_feature_extractor(model_dir)
    try:
        model = AutoModelForAudioClassification.from_pretrained(model_dir)
    except (OSError, ValueError, KeyError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"model: {model_dir}: not an audio-classification model ({first})") from err
    return model.eval(), feature_extractor


def _to_model_ids(data_labels: Sequence[str], label2id: dict[str, int], model_dir: str) -> np.ndarray:
    missing = [name for name in data_labels if name not in label2id]
    if missing:
        raise DataError(
            f"data: label(s) {', '.join(missing[:5])} unknown to model {model_dir} "
            f"(its labels: {', '.join(list(label2id)[:10])})"
        )
    return np.asarray([label2id[name] for name in data_labels], dtype=np.int64)


def evaluation_limit(model_dir: str, data: DataSettings, sampling_rate: int) -> int:
    """Samples per clip: ``max_duration`` if set, else the limit the model was trained with
    (``metrics.json`` beside it), else no limit."""
    seconds = data.max_duration
    metrics_file = Path(model_dir) / "metrics.json"
    if seconds is None and metrics_file.is_file():
        try:
            seconds = json.loads(metrics_file.read_text(encoding="utf-8")).get("duration_limit_s")
        except (OSError, ValueError) as err:
            log.warning("ignoring %s: %s", metrics_file, err)
    if seconds is None:
        return 2**31 - 1
    log.info("clips truncated to %.2f s", float(seconds))
    return max(1, round(float(seconds) * sampling_rate))


def predict(model: Any, collator: AudioCollator, clips: Any, batch_size: int) -> np.ndarray:
    from rich.console import Console
    from rich.progress import Progress

    predictions: list[np.ndarray] = []
    with Progress(console=Console(stderr=True), transient=True) as progress, torch.no_grad():
        task = progress.add_task("classifying", total=len(clips))
        for start in range(0, len(clips), batch_size):
            rows = [clips[i] for i in range(start, min(start + batch_size, len(clips)))]
            batch = collator(rows)
            batch.pop("labels")
            logits = model(**batch).logits
            predictions.append(logits.argmax(dim=-1).cpu().numpy())
            progress.advance(task, len(rows))
    return np.concatenate(predictions) if predictions else np.zeros(0, dtype=np.int64)


def run_evaluation(
    model_dir: str, data: DataSettings, split: str, output_dir: Path, batch_size: int, seed: int
) -> EvaluationReport:
    """Classify ``split`` of ``data`` with the model; write evaluation.json and confusion_matrix.png."""
    model, feature_extractor = load_trained_model(model_dir)
    prepared = load_splits(data, int(feature_extractor.sampling_rate), seed)
    if split not in prepared.splits:
        raise DataError(f"data: split {split!r} not found (splits: {', '.join(prepared.splits)})")
    clips = prepared.splits[split].with_format("numpy", columns=[WAVEFORM, prepared.label_column])
    label2id = {str(k): int(v) for k, v in model.config.label2id.items()}
    to_model = _to_model_ids(prepared.labels, label2id, model_dir)
    max_samples = evaluation_limit(model_dir, data, prepared.sampling_rate)
    collator = AudioCollator(feature_extractor, max_samples=max_samples, label_column=prepared.label_column)
    predicted = predict(model, collator, clips, batch_size)
    truth = to_model[np.asarray(clips[prepared.label_column], dtype=np.int64)]
    names = [str(model.config.id2label[i]) for i in range(len(model.config.id2label))]
    report = classification_report(truth, predicted, names, skipped=prepared.skipped)
    output_dir.mkdir(parents=True, exist_ok=True)
    document = {"model": model_dir, "data": data.dataset, "split": split, **asdict(report)}
    (output_dir / "evaluation.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    plot_confusion(report, output_dir / "confusion_matrix.png", f"{Path(model_dir).name} on {split}")
    log.info("wrote %s and %s", output_dir / "evaluation.json", output_dir / "confusion_matrix.png")
    return report
