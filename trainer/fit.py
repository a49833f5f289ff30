"""Fine-tune an audio-classification model with the transformers ``Trainer``.

Safe under ``accelerate launch`` / ``torchrun``: data is prepared on the main process first (the other
processes then hit the ``datasets`` cache) and files are written by the main process only.
"""

from __future__ import annotations

import importlib
import json
import logging
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamclf.errors import StartupError

from .data import WAVEFORM, DurationLimit, PreparedData, duration_limit, label_counts, load_splits
from .settings import FitSettings, ModelSettings, TrainingSettings, as_dict

log = logging.getLogger(__name__)

METRICS_DIR = Path(__file__).resolve().parent / "metrics"
Augment = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


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


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def load_feature_extractor(source: str) -> Any:
    from transformers import AutoFeatureExtractor

    register_project_models()
    try:
        return AutoFeatureExtractor.from_pretrained(source)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelError(f"model: {source}: no usable feature extractor ({_first_line(err)})") from err


def load_base_model(settings: ModelSettings, labels: Sequence[str], seed: int) -> tuple[Any, Any]:
    """(model, feature extractor) with a fresh classification head for ``labels``."""
    from transformers import AutoConfig, AutoModelForAudioClassification, set_seed

    register_project_models()
    set_seed(seed)
    id2label = {i: name for i, name in enumerate(labels)}
    label2id = {name: i for i, name in id2label.items()}
    source = settings.from_config or settings.base_model
    assert source is not None
    feature_extractor = load_feature_extractor(source)
    try:
        if settings.from_config is not None:
            config = AutoConfig.from_pretrained(
                settings.from_config, num_labels=len(labels), id2label=id2label, label2id=label2id
            )
            model = AutoModelForAudioClassification.from_config(config)
        else:
            model = AutoModelForAudioClassification.from_pretrained(
                source, num_labels=len(labels), id2label=id2label, label2id=label2id,
                ignore_mismatched_sizes=True,
            )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelError(f"model: {source}: not an audio-classification model ({_first_line(err)})") from err
    if settings.freeze_feature_encoder and hasattr(model, "freeze_feature_encoder"):
        if settings.from_config is None:
            model.freeze_feature_encoder()
            log.info("feature encoder frozen")
        else:
            log.info("random weights (--from-config): feature encoder left trainable")
    return model, feature_extractor


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


class AugmentedClips(torch.utils.data.Dataset):
    """The training split with a waveform augmentation applied on every read (training only)."""

    def __init__(self, clips: Any, augment: Augment, sampling_rate: int, seed: int) -> None:
        self.clips = clips
        self.augment = augment
        self.sampling_rate = sampling_rate
        self.seed = seed
        self.reads = 0

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, Any]:
        self.reads += 1
        example = dict(self.clips[index])
        rng = np.random.default_rng((self.seed, index, self.reads))
        wave = np.asarray(example[WAVEFORM], dtype=np.float32)
        example[WAVEFORM] = np.asarray(self.augment(wave, self.sampling_rate, rng), dtype=np.float32)
        return example


def load_augment() -> Augment:
    try:
        module = importlib.import_module("trainer.augment")
    except ModuleNotFoundError as err:
        raise StartupError("--augment: trainer.augment is not installed in this checkout") from err
    augment: Augment = module.train_time_augment
    return augment


# --- metrics ------------------------------------------------------------------------------------


def load_metrics() -> tuple[Any, Any]:
    """The accuracy and macro-F1 scripts shipped in trainer/metrics, loaded by path (no hub)."""
    import evaluate

    return (
        evaluate.load(str(METRICS_DIR / "accuracy.py")),
        evaluate.load(str(METRICS_DIR / "macro_f1.py")),
    )


def make_compute_metrics() -> Callable[[Any], dict[str, float]]:
    accuracy, macro_f1 = load_metrics()

    def compute_metrics(prediction: Any) -> dict[str, float]:
        logits = prediction.predictions
        if isinstance(logits, tuple):
            logits = logits[0]
        predicted = np.argmax(logits, axis=-1)
        references = prediction.label_ids
        return {
            **accuracy.compute(predictions=predicted, references=references),
            **macro_f1.compute(predictions=predicted, references=references),
        }

    return compute_metrics


def class_weights(counts: np.ndarray) -> torch.Tensor:
    """"Balanced" inverse-frequency weights, clips / (classes present × clips of the class): every class
    weighs the same in the loss and the average weight per clip is 1. Absent classes get 1."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.ones_like(counts)
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


# --- the Trainer --------------------------------------------------------------------------------


def _balanced_trainer_class() -> type:
    from transformers import Trainer

    class BalancedTrainer(Trainer):
        """``Trainer`` with class-weighted loss or a balanced sampler.

        The loss is always a batch-mean cross-entropy computed here (never by the model from
        ``num_items_in_batch``), so the Trainer must divide it by the gradient-accumulation steps."""

        loss_is_scaled_for_ga = False

        def __init__(
            self, *args: Any, loss_weights: torch.Tensor | None = None,
            sample_weights: np.ndarray | None = None, **kwargs: Any,
        ) -> None:
            super().__init__(*args, **kwargs)
            self.loss_weights = loss_weights
            self.sample_weights = sample_weights

        def compute_loss(
            self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            weight = None if self.loss_weights is None else self.loss_weights.to(outputs.logits.device)
            loss = torch.nn.functional.cross_entropy(outputs.logits.float(), labels, weight=weight)
            return (loss, outputs) if return_outputs else loss

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            if self.sample_weights is None or self.args.world_size > 1:
                return super()._get_train_sampler(train_dataset)
            generator = torch.Generator().manual_seed(self.args.seed)
            return torch.utils.data.WeightedRandomSampler(
                [float(w) for w in self.sample_weights],
                num_samples=len(self.sample_weights), replacement=True, generator=generator,
            )

    return BalancedTrainer


def precision_flags(precision: str) -> dict[str, Any]:
    """fp16/bf16 only where a GPU is there; ``auto`` picks bf16 when the GPU supports it."""
    if not torch.cuda.is_available():
        if precision in ("fp16", "bf16"):
            log.warning("%s requested but no GPU is available: training in fp32", precision)
        return {"fp16": False, "bf16": False}
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {"fp16": precision == "fp16", "bf16": precision == "bf16"}


def training_arguments(settings: TrainingSettings) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=settings.output_dir,
        num_train_epochs=settings.num_train_epochs,
        max_steps=settings.max_steps,
        learning_rate=settings.learning_rate,
        warmup_steps=settings.warmup_ratio if settings.warmup_ratio > 0 else 0,
        weight_decay=settings.weight_decay,
        per_device_train_batch_size=settings.per_device_train_batch_size,
        per_device_eval_batch_size=settings.per_device_eval_batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        seed=settings.seed,
        eval_strategy=settings.eval_strategy,
        save_strategy=settings.eval_strategy,
        eval_steps=settings.eval_steps,
        save_steps=settings.eval_steps,
        logging_steps=settings.logging_steps,
        save_total_limit=settings.save_total_limit,
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        greater_is_better=True,
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_num_workers=settings.dataloader_num_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        report_to="none",
        push_to_hub=settings.push_to_hub,
        hub_model_id=settings.hub_model_id,
        **precision_flags(settings.precision),
    )


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


def reproducing_command(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(part) for part in ["python", "-m", "trainer", *argv])


def run_fit(settings: FitSettings, argv: Sequence[str] | None = None) -> FitResult:
    """Prepare data, train, evaluate, and write the model directory (main process only)."""
    from .report import write_model_card

    args = training_arguments(settings.training)
    source = settings.model.from_config or settings.model.base_model
    assert source is not None
    feature_extractor = load_feature_extractor(source)
    sampling_rate = int(feature_extractor.sampling_rate)
    with args.main_process_first(desc="dataset preparation"):
        prepared: PreparedData = load_splits(settings.data, sampling_rate, settings.training.seed)
    train, evaluation = prepared.splits["train"], prepared.splits.get("validation", prepared.splits["test"])
    limit = duration_limit(np.asarray(train["duration"]), settings.data)
    log.info(
        "training clips: %d, median %.2f s, longest %.2f s; duration limit %.2f s (%s), %d clip(s) truncated",
        len(train), limit.median, limit.longest, limit.seconds,
        f"p{limit.percentile:g} of the training clips" if limit.percentile is not None else "set by hand",
        limit.clips_truncated,
    )
    model, feature_extractor = load_base_model(settings.model, prepared.labels, settings.training.seed)
    counts = label_counts(train, prepared.label_column, len(prepared.labels))
    balance = settings.training.balance
    train_clips: Any = train.with_format("numpy", columns=[WAVEFORM, prepared.label_column])
    if settings.training.augment:
        train_clips = AugmentedClips(train_clips, load_augment(), sampling_rate, settings.training.seed)
    sample_weights = None
    if balance == "sampler":
        per_class = class_weights(counts).numpy()
        sample_weights = per_class[np.asarray(train[prepared.label_column], dtype=np.int64)]
    trainer = _balanced_trainer_class()(
        model=model,
        args=args,
        train_dataset=train_clips,
        eval_dataset=evaluation.with_format("numpy", columns=[WAVEFORM, prepared.label_column]),
        data_collator=AudioCollator(
            feature_extractor, max(1, round(limit.seconds * sampling_rate)), prepared.label_column
        ),
        processing_class=feature_extractor,
        compute_metrics=make_compute_metrics(),
        loss_weights=class_weights(counts) if balance == "weights" else None,
        sample_weights=sample_weights,
    )
    trainer.train()
    metrics = {k: float(v) for k, v in trainer.evaluate().items() if isinstance(v, (int, float))}
    output_dir = Path(settings.training.output_dir)
    trainer.save_model(str(output_dir))
    result = FitResult(
        output_dir=output_dir,
        settings=settings,
        labels=prepared.labels,
        split_sizes={name: len(ds) for name, ds in prepared.splits.items()},
        train_label_counts={prepared.labels[i]: int(c) for i, c in enumerate(counts) if c > 0},
        limit=limit,
        sampling_rate=sampling_rate,
        skipped=prepared.skipped,
        metrics=metrics,
        command=reproducing_command(argv if argv is not None else sys.argv[1:]),
        model_type=str(model.config.model_type),
        eval_split="validation" if "validation" in prepared.splits else "test",
    )
    if trainer.is_world_process_zero():
        feature_extractor.save_pretrained(str(output_dir))
        write_metrics(result)
        write_model_card(result)
    if settings.training.push_to_hub:
        trainer.push_to_hub()
    return result


def write_metrics(result: FitResult) -> Path:
    path = result.output_dir / "metrics.json"
    document = {
        "eval": result.metrics,
        "labels": list(result.labels),
        "split_sizes": result.split_sizes,
        "train_label_counts": result.train_label_counts,
        "duration_limit_s": result.limit.seconds,
        "duration_percentile": result.limit.percentile,
        "skipped_audio": list(result.skipped),
        "settings": as_dict(result.settings),
        "command": result.command,
        "metric_scripts": [str(METRICS_DIR / "accuracy.py"), str(METRICS_DIR / "macro_f1.py")],
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path
