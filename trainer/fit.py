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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamclf.errors import StartupError

from . import frozen
from .common import (
    METRICS_DIR,
    AudioCollator,
    FitResult,
    ModelError,
    first_line,
    load_feature_extractor,
    load_metrics,
    register_project_models,
)
from .data import (
    SOURCE,
    WAVEFORM,
    DurationLimit,
    PreparedData,
    duration_limit,
    label_counts,
    load_splits,
    source_names,
)
from .sampling import clip_weights
from .settings import FitSettings, ModelSettings, TrainingSettings, as_dict

log = logging.getLogger(__name__)

Augment = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


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
            from .pretrained import initialise_front_end

            initialise_front_end(model)
        else:
            model = AutoModelForAudioClassification.from_pretrained(
                source,
                num_labels=len(labels),
                id2label=id2label,
                label2id=label2id,
                ignore_mismatched_sizes=True,
            )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelError(f"model: {source}: not an audio-classification model ({first_line(err)})") from err
    if settings.freeze_feature_encoder and hasattr(model, "freeze_feature_encoder"):
        if settings.from_config is None:
            model.freeze_feature_encoder()
            log.info("feature encoder frozen")
        else:
            log.info("random weights (--from-config): feature encoder left trainable")
    return model, feature_extractor


def base_model_labels(settings: ModelSettings) -> tuple[str, ...]:
    """The labels of a local model directory to start from, in its order (none for a hub id or a
    config: the head is new anyway)."""
    if settings.from_config is not None or settings.base_model is None:
        return ()
    config = Path(settings.base_model).expanduser() / "config.json"
    if not config.is_file():
        return ()
    try:
        id2label = json.loads(config.read_text(encoding="utf-8")).get("id2label") or {}
        return tuple(str(id2label[key]) for key in sorted(id2label, key=int))
    except (ValueError, KeyError, TypeError):
        return ()


# --- batches ------------------------------------------------------------------------------------


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
    """ "Balanced" inverse-frequency weights, clips / (classes present × clips of the class): every class
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
            self,
            *args: Any,
            loss_weights: torch.Tensor | None = None,
            sample_weights: np.ndarray | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(*args, **kwargs)
            self.loss_weights = loss_weights
            self.sample_weights = sample_weights

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
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
                num_samples=len(self.sample_weights),
                replacement=True,
                generator=generator,
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


def training_arguments(settings: TrainingSettings, selection_set: str | None = None) -> Any:
    """``selection_set``: with several evaluation sets, the one whose accuracy picks the best checkpoint."""
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
        metric_for_best_model="accuracy" if selection_set is None else f"{selection_set}_accuracy",
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


def reproducing_command(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(part) for part in ["python", "-m", "trainer", *argv])


def run_fit(settings: FitSettings, argv: Sequence[str] | None = None) -> FitResult:
    """Prepare data, train, evaluate, and write the model directory (main process only)."""
    from .report import write_model_card

    source = settings.model.from_config or settings.model.base_model
    assert source is not None
    feature_extractor = load_feature_extractor(source)
    sampling_rate = int(feature_extractor.sampling_rate)
    every_source = (*settings.data.dataset, *settings.data.unknown_data)
    selection_set = source_names(every_source)[0] if len(every_source) > 1 else None
    args = training_arguments(settings.training, selection_set)
    with args.main_process_first(desc="dataset preparation"):
        prepared: PreparedData = load_splits(
            settings.data, sampling_rate, settings.training.seed, base_model_labels(settings.model)
        )
    train = prepared.splits["train"]
    held_out = _held_out_sets(prepared, selection_set, settings.data.dataset[0])
    limit = duration_limit(np.asarray(train["duration"]), settings.data)
    log.info(
        "training clips: %d, median %.2f s, longest %.2f s; duration limit %.2f s (%s), %d clip(s) truncated",
        len(train),
        limit.median,
        limit.longest,
        limit.seconds,
        f"p{limit.percentile:g} of the training clips" if limit.percentile is not None else "set by hand",
        limit.clips_truncated,
    )
    model, feature_extractor = load_base_model(settings.model, prepared.labels, settings.training.seed)
    counts = label_counts(train, prepared.label_column, len(prepared.labels))
    inputs = _training_inputs(settings.training, model, feature_extractor, prepared, held_out, limit)
    balance = settings.training.balance
    sample_weights = None
    if balance == "sampler":
        weights = [info.weight for info in prepared.sources] or [1.0]
        sample_weights = clip_weights(inputs.labels, inputs.sources, weights)
    evaluation = inputs.evaluation
    trainer = _balanced_trainer_class()(
        model=model,
        args=args,
        train_dataset=inputs.train,
        eval_dataset=evaluation,
        data_collator=inputs.collator,
        processing_class=feature_extractor,
        compute_metrics=make_compute_metrics(),
        loss_weights=class_weights(counts) if balance == "weights" else None,
        sample_weights=sample_weights,
    )
    trainer.train()
    metrics = {
        k: float(v) for k, v in _final_metrics(trainer, evaluation).items() if isinstance(v, (int, float))
    }
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
        sources=prepared.sources,
        selection_set=selection_set,
    )
    if trainer.is_world_process_zero():
        feature_extractor.save_pretrained(str(output_dir))
        write_metrics(result)
        write_model_card(result)
    if settings.training.push_to_hub:
        trainer.push_to_hub()
    return result


def _held_out_sets(prepared: PreparedData, selection_set: str | None, first_source: str) -> Any:
    """The held-out clips the Trainer scores: one set, or each source's apart (several sources)."""
    if selection_set is None:
        return prepared.splits.get("validation", prepared.splits["test"])
    if selection_set not in prepared.eval_sets:
        raise StartupError(f"data: {first_source}: no held-out clips to select the model on")
    return dict(prepared.eval_sets)


@dataclass(frozen=True)
class TrainingInputs:
    """What the Trainer is given: datasets and collator, and each training item's label and source."""

    train: Any
    evaluation: Any
    collator: Any
    labels: np.ndarray
    sources: np.ndarray


def _training_inputs(
    settings: TrainingSettings, model: Any, extractor: Any, prepared: PreparedData, held_out: Any,
    limit: DurationLimit,
) -> TrainingInputs:
    """Waveforms (augmented on every read with ``augment``), or with ``front_end_views`` the frozen
    front end's outputs of that many views of each clip, computed once (``trainer.frozen``)."""
    train, column = prepared.splits["train"], prepared.label_column
    rate = prepared.sampling_rate
    max_samples = max(1, round(limit.seconds * rate))
    augment = load_augment() if settings.augment else None
    if settings.front_end_views > 0:
        if not frozen.supports(model):
            raise ModelError(
                "--front-end-views needs a model with a frozen pretrained front end "
                "(configs/models/speech-embedding)"
            )
        cached = frozen.cache(model, extractor, train, column, max_samples, settings.front_end_views, augment,
                              settings.seed)  # fmt: skip

        def cache_held_out(ds: Any) -> Any:
            return frozen.cache(model, extractor, ds, column, max_samples)

        evaluation = (
            {name: cache_held_out(ds) for name, ds in held_out.items()}
            if isinstance(held_out, dict)
            else cache_held_out(held_out)
        )
        return TrainingInputs(cached, evaluation, frozen.EmbeddingCollator(column), cached.labels,
                              cached.sources)  # fmt: skip
    columns = [WAVEFORM, column]
    train_clips: Any = train.with_format("numpy", columns=columns)
    if augment is not None:
        train_clips = AugmentedClips(train_clips, augment, rate, settings.seed)
    evaluation = (
        {name: ds.with_format("numpy", columns=columns) for name, ds in held_out.items()}
        if isinstance(held_out, dict)
        else held_out.with_format("numpy", columns=columns)
    )
    labels = np.asarray(train[column], dtype=np.int64)
    sources = np.asarray(train[SOURCE], dtype=np.int64) if SOURCE in train.column_names else 0 * labels
    return TrainingInputs(train_clips, evaluation, AudioCollator(extractor, max_samples, column), labels,
                          sources)  # fmt: skip


def _final_metrics(trainer: Any, evaluation: Any) -> dict[str, Any]:
    """The best checkpoint's metrics on every evaluation set (``eval_<set>_accuracy``, …)."""
    if not isinstance(evaluation, dict):
        return dict(trainer.evaluate())
    metrics: dict[str, Any] = {}
    for name, dataset in evaluation.items():
        metrics.update(trainer.evaluate(dataset, metric_key_prefix=f"eval_{name}"))
    return metrics


def write_metrics(result: FitResult) -> Path:
    path = result.output_dir / "metrics.json"
    document = {
        "eval": result.metrics,
        "labels": list(result.labels),
        "split_sizes": result.split_sizes,
        "train_label_counts": result.train_label_counts,
        "sources": [asdict(info) for info in result.sources],
        "duration_limit_s": result.limit.seconds,
        "duration_percentile": result.limit.percentile,
        "skipped_audio": list(result.skipped),
        "settings": as_dict(result.settings),
        "command": result.command,
        "metric_scripts": [str(METRICS_DIR / "accuracy.py"), str(METRICS_DIR / "macro_f1.py")],
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path
