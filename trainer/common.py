"""What fitting, evaluating and reporting share: the model and metric loaders, the batch collator and
the result types. ``fit``, ``evaluate`` and ``report`` import from here, never from each other's
modules, so none of them is half-imported when another needs it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamclf.errors import StartupError

from .data import WAVEFORM, DurationLimit, SourceInfo
from .settings import FitSettings

METRICS_DIR = Path(__file__).resolve().parent / "metrics"
"""The accuracy and macro-F1 metric scripts, loaded by path (no hub)."""


class ModelError(StartupError):
    """A model that cannot be loaded as an audio classifier (exit 3)."""


# --- models -------------------------------------------------------------------------------------


def register_project_models() -> None:
    """Importing streamclf registers the project's own architectures with the Auto classes."""
    importlib.import_module("streamclf")
    try:
        registration = importlib.import_module("streamclf.models.registration")
    except ModuleNotFoundError as err:
        if err.name not in ("streamclf.models", "streamclf.models.registration"):
            raise
        return
    register = getattr(registration, "register", None)
    if callable(register) and "transformers" in sys.modules:
        register()  # transformers may have been imported before streamclf's import hook was installed


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def load_feature_extractor(source: str) -> Any:
    from transformers import AutoFeatureExtractor

    register_project_models()
    try:
        return AutoFeatureExtractor.from_pretrained(source)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelError(f"model: {source}: no usable feature extractor ({first_line(err)})") from err


# --- batches ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioCollator:
    """Truncate to the duration limit, run the feature extractor, pad to the longest clip in the batch."""

    feature_extractor: Any
    max_samples: int
    label_column: str

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        waves = [np.asarray(e[WAVEFORM], dtype=np.float32)[: self.max_samples] for e in examples]
        batch = self.feature_extractor(
            waves,
            sampling_rate=self.feature_extractor.sampling_rate,
            padding="longest",
            return_tensors="pt",
        )
        result = {key: value for key, value in batch.items() if isinstance(value, torch.Tensor)}
        result["labels"] = torch.tensor([int(e[self.label_column]) for e in examples], dtype=torch.long)
        return result


# --- metrics ------------------------------------------------------------------------------------


def load_metrics() -> tuple[Any, Any]:
    """The accuracy and macro-F1 scripts shipped in trainer/metrics, loaded by path (no hub)."""
    import evaluate

    return (
        evaluate.load(str(METRICS_DIR / "accuracy.py")),
        evaluate.load(str(METRICS_DIR / "macro_f1.py")),
    )


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitResult:
    """What a finished run produced; the model card and the summary table are made from it."""

    output_dir: Path
    settings: FitSettings
    labels: tuple[str, ...]
    split_sizes: dict[str, int]
    train_label_counts: dict[str, int]
    limit: DurationLimit
    sampling_rate: int
    skipped: tuple[str, ...]
    metrics: dict[str, float]
    command: str
    model_type: str
    eval_split: str
    sources: tuple[SourceInfo, ...] = ()
    selection_set: str | None = None
    """With several sources: the source whose held-out clips chose the checkpoint."""


@dataclass(frozen=True)
class ClassFigures:
    label: str
    precision: float
    recall: float
    f1: float
    support: int
    """Clips whose true label is this class."""


@dataclass(frozen=True)
class EvaluationReport:
    clips: int
    accuracy: float
    macro_f1: float
    labels: tuple[str, ...]
    """The classes in the report: those that occur as truth or prediction, in model id order."""
    per_class: tuple[ClassFigures, ...]
    confusion: tuple[tuple[int, ...], ...]
    """Rows: true class, columns: predicted class, both in ``labels`` order."""
    skipped: tuple[str, ...] = ()
