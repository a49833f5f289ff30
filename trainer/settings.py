"""Trainer settings: frozen dataclass groups, read from TOML and overridden by command-line flags.

Every field becomes a flag (``--learning-rate``, ``--freeze-feature-encoder/--no-freeze-feature-encoder``)
and a key in its TOML table (``[data]``, ``[model]``, ``[training]``).
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from streamclf.errors import ConfigError

Balance = Literal["none", "weights", "sampler"]
Precision = Literal["auto", "fp32", "fp16", "bf16"]


@dataclasses.dataclass(frozen=True)
class DataSettings:
    dataset: tuple[str, ...] = ("PolyAI/minds14",)
    """One or more sources (repeat ``--data``; a list in TOML): hub dataset ids, local audiofolders
    (metadata.csv) or datasets saved with ``save_to_disk``, all read by the same functions."""
    weights: tuple[float, ...] = ()
    """How much one training clip of each source counts, in ``dataset`` order (empty: 1 each). With
    ``balance = "sampler"``, every label gets the same share of the batches, and within a label each
    source's share follows its clips times its weight (see ``trainer.sampling``)."""
    vocab: str | None = None
    """Vocabulary TOML (``[labels]``): the model's labels. Clips of other labels become ``_unknown_``
    when the vocabulary has it, else they are left out. Unset: every label found in the data."""
    unknown_data: tuple[str, ...] = ()
    """Sources of other speech (repeat ``--unknown-data``): every clip becomes ``_unknown_`` (the
    vocabulary must have it), except clips of a word the vocabulary speaks, which are left out, and
    non-speech ``_labels_``. Read like ``dataset``; weight 1 each."""

    def __post_init__(self) -> None:
        for name in ("dataset", "unknown_data"):
            if isinstance(getattr(self, name), str):  # one source given as a plain string
                object.__setattr__(self, name, (getattr(self, name),))
    dataset_config: str | None = "en-US"
    """Hub dataset configuration name (ignored for local folders)."""
    split: str = "train"
    """Split to train on; when there is no held-out split, ``test_size`` of it is held out."""
    test_size: float = 0.2
    """Fraction held out for evaluation when the data has no validation/test split or split column."""
    label_column: str = "intent_class"
    """Column with the class label (``intent_class`` for MInDS-14, ``label`` for audiofolder)."""
    audio_column: str = "audio"
    """Column with the audio."""
    max_duration: float | None = None
    """Seconds; longer clips are truncated. Unset: the ``duration_percentile`` of the training clips."""
    duration_percentile: float = 95.0
    """Percentile (0–100) of the training durations used as the limit when ``max_duration`` is unset."""


@dataclasses.dataclass(frozen=True)
class ModelSettings:
    base_model: str | None = "facebook/wav2vec2-base"
    """Pretrained starting point: a hub id or a local model directory (``--init-from``: a model this
    project trained; its layers are kept and the head is replaced when the labels differ)."""
    from_config: str | None = None
    """Directory with config.json + preprocessor_config.json: that architecture with random weights."""
    freeze_feature_encoder: bool = True
    """Freeze the convolutional feature encoder (models that have one, e.g. wav2vec2)."""


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    output_dir: str = "runs/minds14"
    """Where the model directory, checkpoints, model card and metrics go."""
    num_train_epochs: float = 10.0
    """Epochs over the training split."""
    max_steps: int = -1
    """Optimizer steps; overrides ``num_train_epochs`` when > 0."""
    learning_rate: float = 3e-5
    """Peak learning rate (after warm-up)."""
    warmup_ratio: float = 0.1
    """Fraction of all steps spent warming the learning rate up linearly."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    per_device_train_batch_size: int = 16
    """Clips per device per forward pass while training."""
    per_device_eval_batch_size: int = 16
    """Clips per device per forward pass while evaluating."""
    gradient_accumulation_steps: int = 2
    """Forward passes per optimizer step (effective batch = batch size × this × devices)."""
    seed: int = 42
    """Seed for the held-out split, initial weights, shuffling and augmentation."""
    precision: Precision = "auto"
    """auto: bf16 on a GPU that supports it, else fp16 on a GPU, fp32 on CPU."""
    balance: Balance = "weights"
    """Skewed labels: ``weights`` (inverse-frequency loss), ``sampler`` (balanced batches), ``none``."""
    augment: bool = False
    """Apply ``trainer.augment.train_time_augment`` to training clips (noise, gain, …)."""
    front_end_views: int = 0
    """Models with a frozen pretrained front end: run it once over this many views of each training
    clip (the first as it is, the others augmented when ``augment`` is on) and train the head on its
    outputs (``trainer.frozen``). 0: the whole model runs on every read."""
    eval_strategy: Literal["epoch", "steps"] = "epoch"
    """Evaluate and save every epoch or every ``eval_steps`` steps."""
    eval_steps: int = 100
    """Steps between evaluations when ``eval_strategy`` is ``steps``."""
    logging_steps: int = 10
    """Steps between training-loss log lines."""
    save_total_limit: int = 2
    """Checkpoints kept (the best one is always kept)."""
    dataloader_num_workers: int = 0
    """Worker processes feeding batches."""
    push_to_hub: bool = False
    """Pass-through to the Trainer: upload the model directory to the hub."""
    hub_model_id: str | None = None
    """Repository name for ``push_to_hub``."""


ALIASES = {
    "dataset": ("--data",),
    "base_model": ("--model-name-or-path", "--init-from"),
    "weights": ("--data-weight",),
}

GROUPS: dict[str, type] = {"data": DataSettings, "model": ModelSettings, "training": TrainingSettings}


@dataclasses.dataclass(frozen=True)
class FitSettings:
    data: DataSettings
    model: ModelSettings
    training: TrainingSettings


def _field_type(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def _base_types(annotation: Any) -> tuple[Any, bool]:
    """(the non-None type, whether None is allowed)."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return members[0], len(members) < len(get_args(annotation))
    return annotation, False


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    base, optional = _base_types(annotation)
    if get_origin(base) is tuple:
        (item_type, _) = get_args(base)
        items = value if isinstance(value, (list, tuple)) else [value]
        return tuple(_coerce(key, item, item_type) for item in items)
    if value is None:
        if optional:
            return None
        raise ConfigError(key, "must not be empty")
    if get_origin(base) is Literal:
        if value not in get_args(base):
            raise ConfigError(key, f"must be one of {', '.join(map(str, get_args(base)))}, not {value!r}")
        return value
    if base is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, not {value!r}")
        return value
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, base) or (isinstance(value, bool) and base is not bool):
        raise ConfigError(key, f"must be {base.__name__}, not {value!r}")
    return value


def _build(cls: type, table: dict[str, Any], section: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    for key in table:
        if key not in names:
            raise ConfigError(f"{section}.{key}", "unknown key")
    values = {key: _coerce(f"{section}.{key}", value, _field_type(cls, key)) for key, value in table.items()}
    return cls(**values)


def read_toml(path: Path) -> dict[str, dict[str, Any]]:
    """The TOML file's tables; unknown tables fail with their name."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(str(path), "file not found") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(str(path), f"not valid TOML: {err}") from err
    for section, table in document.items():
        if section not in GROUPS:
            raise ConfigError(section, f"unknown table (expected {', '.join(GROUPS)})")
        if not isinstance(table, dict):
            raise ConfigError(section, "must be a table")
    return document


def add_flags(
    parser: argparse.ArgumentParser, groups: tuple[str, ...], exclude: frozenset[str] = frozenset()
) -> None:
    """One flag per settings field (except ``exclude``: ``section.field``); defaults are ``None`` so
    only given flags override the file."""
    for section in groups:
        cls = GROUPS[section]
        arg_group = parser.add_argument_group(section)
        for field in dataclasses.fields(cls):
            if f"{section}.{field.name}" in exclude:
                continue
            flags = ["--" + field.name.replace("_", "-"), *ALIASES.get(field.name, ())]
            base, _ = _base_types(_field_type(cls, field.name))
            help_text = f"(default: {field.default})"
            if get_origin(base) is tuple:
                item_type = get_args(base)[0]
                arg_group.add_argument(
                    *flags, dest=f"{section}.{field.name}", type=item_type, action="append", default=None,
                    metavar=item_type.__name__.upper(), help=f"repeatable {help_text}",
                )
            elif base is bool:
                arg_group.add_argument(
                    *flags, dest=f"{section}.{field.name}", action=argparse.BooleanOptionalAction,
                    default=None, help=help_text,
                )
            elif get_origin(base) is Literal:
                arg_group.add_argument(
                    *flags, dest=f"{section}.{field.name}", choices=get_args(base), default=None,
                    help=help_text,
                )
            else:
                arg_group.add_argument(
                    *flags, dest=f"{section}.{field.name}", type=base, default=None,
                    metavar=base.__name__.upper(), help=help_text,
                )


def resolve(args: argparse.Namespace, config: Path | None, groups: tuple[str, ...]) -> dict[str, Any]:
    """Settings objects per group: dataclass defaults < TOML file < flags."""
    document = read_toml(config) if config is not None else {}
    resolved: dict[str, Any] = {}
    for section in groups:
        table = dict(document.get(section, {}))
        for field in dataclasses.fields(GROUPS[section]):
            value = getattr(args, f"{section}.{field.name}", None)
            if value is not None:
                table[field.name] = value
        resolved[section] = _build(GROUPS[section], table, section)
    return resolved


def fit_settings(args: argparse.Namespace, config: Path | None) -> FitSettings:
    groups = resolve(args, config, ("data", "model", "training"))
    settings = FitSettings(data=groups["data"], model=groups["model"], training=groups["training"])
    if settings.model.from_config is None and settings.model.base_model is None:
        raise ConfigError("model.base_model", "set a base model or --from-config")
    if not settings.data.dataset:
        raise ConfigError("data.dataset", "name at least one data source")
    if settings.data.unknown_data and settings.data.vocab is None:
        raise ConfigError("data.unknown_data", "needs a vocabulary (--vocab) with _unknown_")
    if settings.data.weights and len(settings.data.weights) != len(settings.data.dataset):
        raise ConfigError(
            "data.weights",
            f"{len(settings.data.weights)} weight(s) for {len(settings.data.dataset)} data source(s)",
        )
    if any(weight <= 0 for weight in settings.data.weights):
        raise ConfigError("data.weights", "every weight must be positive")
    if settings.training.front_end_views < 0:
        raise ConfigError("training.front_end_views", "must not be negative")
    if not 0.0 < settings.data.test_size < 1.0:
        raise ConfigError("data.test_size", "must be between 0 and 1")
    if not 0.0 < settings.data.duration_percentile <= 100.0:
        raise ConfigError("data.duration_percentile", "must be in (0, 100]")
    return settings


def as_dict(settings: Any) -> dict[str, Any]:
    return dataclasses.asdict(settings)
