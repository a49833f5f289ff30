"""Labelled audio in, decoded training/evaluation splits out.

One entry point, :func:`load_splits`, serves a hub dataset id, a local audiofolder and a dataset saved
with ``save_to_disk``: :func:`pick_loader` chooses the loader, everything after it is shared.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from datasets import Audio, ClassLabel, Dataset, DatasetDict

from streamclf.errors import StartupError

from .settings import DataSettings

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aiff", ".aif", ".au", ".caf", ".w64", ".webm"}
)
METADATA_NAMES = ("metadata.csv", "metadata.jsonl", "metadata.parquet")
SPLIT_NAMES = ("train", "validation", "test")
WAVEFORM = "waveform"
DURATION = "duration"
SOURCE = "source_index"
"""Column of decoded clips: the index of the source they came from (``--data`` order)."""
_DECODE_ERRORS = (RuntimeError, ValueError, OSError, IndexError)


class DataError(StartupError):
    """Data that cannot be used: the message names the dataset, column or file (exit 3)."""


Loader = Callable[[str, DataSettings], DatasetDict]
"""(source, settings) → the raw splits of one source."""


@dataclass(frozen=True)
class DurationLimit:
    """How long a clip may be, measured from the training split."""

    seconds: float
    percentile: float | None
    """The percentile it came from, None when set by hand."""
    median: float
    longest: float
    clips_truncated: int


@dataclass(frozen=True)
class PreparedData:
    """Decoded splits (columns ``waveform``, ``duration`` and the label) plus what was learnt on the way."""

    splits: DatasetDict
    labels: tuple[str, ...]
    label_column: str
    sampling_rate: int
    skipped: tuple[str, ...]
    """Audio that could not be decoded (paths or row descriptions)."""
    sources: tuple[SourceInfo, ...] = ()
    eval_sets: dict[str, Dataset] = field(default_factory=dict)
    """Each source's held-out clips (validation, else test), by source name: scored apart."""


# --- choosing the loader ------------------------------------------------------------------------


def _looks_like_path(source: str) -> bool:
    return source.startswith((".", "/", "~")) or source.count("/") > 1


def is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def pick_loader(source: str) -> Loader:
    """The loader for ``source``: a saved dataset, a local audio folder, or a hub dataset id."""
    path = Path(source).expanduser()
    if path.is_dir():
        return load_saved_dataset if is_saved_dataset(path) else load_audio_folder
    if path.exists():
        raise DataError(f"data: {source}: expected a directory (an audiofolder or a saved dataset)")
    if _looks_like_path(source):
        raise DataError(f"data: {source}: no such directory")
    return load_hub_dataset


def load_hub_dataset(source: str, settings: DataSettings) -> DatasetDict:
    """``datasets.load_dataset(id, config)``: every split the hub has (validation and test included),
    or ``settings.split`` alone when the dataset cannot list its splits."""
    try:
        loaded = datasets.load_dataset(source, settings.dataset_config)
    except (OSError, ValueError, ConnectionError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(
            f"data: cannot load hub dataset {source!r} (config {settings.dataset_config!r}): {first_line}"
        ) from err
    if isinstance(loaded, Dataset):
        return DatasetDict({settings.split: loaded})
    if not isinstance(loaded, DatasetDict):
        raise DataError(f"data: {source}: expected a map-style dataset")
    return loaded


def load_saved_dataset(source: str, settings: DataSettings) -> DatasetDict:
    """A dataset written by ``save_to_disk`` (a single dataset becomes the ``train`` split)."""
    try:
        loaded = datasets.load_from_disk(str(Path(source).expanduser()))
    except (OSError, ValueError) as err:
        raise DataError(f"data: {source}: cannot read saved dataset: {err}") from err
    if isinstance(loaded, Dataset):
        return DatasetDict({"train": loaded})
    if isinstance(loaded, DatasetDict):
        return loaded
    raise DataError(f"data: {source}: not a map-style dataset")


def _audio_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def _metadata_in(folder: Path) -> Path | None:
    return next((folder / name for name in METADATA_NAMES if (folder / name).is_file()), None)


def load_audio_folder(source: str, settings: DataSettings) -> DatasetDict:
    """An ``audiofolder``: per-split metadata in train/validation/test subfolders, one metadata file at
    the top (its ``file_name`` may point into split subfolders, which then give each row its split), or
    no metadata (labels from folder names)."""
    root = Path(source).expanduser()
    audio_files = _audio_files(root)
    if not audio_files:
        raise DataError(f"data: {root}: no audio files (looked for {', '.join(sorted(AUDIO_EXTENSIONS))})")
    top_metadata = _metadata_in(root)
    split_metadata = [name for name in SPLIT_NAMES if _metadata_in(root / name) is not None]
    try:
        if top_metadata is not None and not split_metadata:
            extensions = sorted({p.suffix.lower() for p in audio_files})
            files = [str(top_metadata)] + [str(root / "**" / f"*{ext}") for ext in extensions]
            loaded = datasets.load_dataset("audiofolder", data_files={"train": files}, drop_labels=True)
            with_splits = _split_from_subfolders(loaded["train"], root, settings.audio_column)
            loaded = DatasetDict({"train": with_splits})
        else:
            loaded = datasets.load_dataset("audiofolder", data_dir=str(root))
    except (OSError, ValueError, IndexError, datasets.exceptions.DatasetsError) as err:
        raise DataError(f"data: {root}: cannot read as an audiofolder: {err}") from err
    if not isinstance(loaded, DatasetDict):
        raise DataError(f"data: {root}: cannot read as an audiofolder")
    return loaded


def _split_from_subfolders(dataset: Dataset, root: Path, audio_column: str) -> Dataset:
    """Add a ``split`` column when every file lies in a train/validation/test subfolder."""
    if "split" in dataset.column_names or audio_column not in dataset.column_names:
        return dataset
    paths = dataset.cast_column(audio_column, Audio(decode=False))[audio_column]
    splits: list[str] = []
    for item in paths:
        parts = Path(item["path"] or "").resolve().relative_to(root.resolve()).parts
        if len(parts) < 2 or parts[0] not in SPLIT_NAMES:
            return dataset
        splits.append(parts[0])
    return dataset.add_column("split", splits)


# --- labels and splits --------------------------------------------------------------------------


def check_columns(raw: DatasetDict, settings: DataSettings) -> None:
    for name, dataset in raw.items():
        for column, what in ((settings.label_column, "label"), (settings.audio_column, "audio")):
            if column not in dataset.column_names:
                flag = "--label-column" if what == "label" else "--audio-column"
                raise DataError(
                    f"data: {what} column {column!r} not found in split {name!r} "
                    f"(columns: {', '.join(dataset.column_names)}; set {flag})"
                )


def ensure_class_labels(raw: DatasetDict, label_column: str) -> DatasetDict:
    """Make the label column a ``ClassLabel`` with the same names in every split."""
    features = [dataset.features[label_column] for dataset in raw.values()]
    if all(isinstance(f, ClassLabel) for f in features):
        return raw
    values: set[Any] = set()
    for dataset in raw.values():
        values.update(v for v in dataset.unique(label_column) if v is not None)
    if all(isinstance(v, str) for v in values):
        names = sorted(values)
    elif all(isinstance(v, int) for v in values):
        names = [str(i) for i in range(max(values) + 1)] if values else []
    else:
        raise DataError(f"data: label column {label_column!r} must hold strings or integers")
    if not names:
        raise DataError(f"data: label column {label_column!r} has no labels")
    class_label = ClassLabel(names=names)
    return DatasetDict({n: d.cast_column(label_column, class_label) for n, d in raw.items()})


def split_dataset(raw: DatasetDict, settings: DataSettings, seed: int, hold_out: bool = True) -> DatasetDict:
    """``train`` and ``test`` (and ``validation`` when the data has one).

    Existing splits win: train/validation/test splits, then a ``split`` column; otherwise
    ``test_size`` of ``settings.split`` is held out (stratified by label when possible), or nothing
    when ``hold_out`` is false (the data is ``train`` only)."""
    if len(raw) == 1:
        (only,) = raw.values()
        if "split" in only.column_names:
            by_column = {
                name: only.filter(lambda value, name=name: value == name, input_columns="split")
                for name in SPLIT_NAMES
            }
            raw = DatasetDict({name: ds for name, ds in by_column.items() if len(ds) > 0})
    if settings.split not in raw:
        raise DataError(f"data: split {settings.split!r} not found (splits: {', '.join(raw)})")
    if "test" in raw or "validation" in raw:
        result = {"train": raw[settings.split]}
        result.update({name: raw[name] for name in ("validation", "test") if name in raw})
        if "test" not in result:
            result["test"] = result["validation"]
        return DatasetDict(result)
    source = raw[settings.split]
    if not hold_out:
        return DatasetDict({"train": source})
    try:
        held_out = source.train_test_split(
            test_size=settings.test_size, seed=seed, stratify_by_column=settings.label_column
        )
    except ValueError as err:
        log.info("stratified split impossible (%s); splitting at random", err)
        held_out = source.train_test_split(test_size=settings.test_size, seed=seed)
    return DatasetDict({"train": held_out["train"], "test": held_out["test"]})


# --- decoding -----------------------------------------------------------------------------------


def decode_audio(
    dataset: Dataset, settings: DataSettings, sampling_rate: int, desc: str
) -> tuple[Dataset, list[str]]:
    """Decode and resample every clip to mono float32 at ``sampling_rate``.

    Returns the dataset with columns ``waveform``, ``duration`` (seconds), the label and ``source``
    (when present), and the names of clips that could not be decoded (they are dropped)."""
    decoder = Audio(sampling_rate=sampling_rate)
    label = settings.label_column
    undecoded = dataset.cast_column(settings.audio_column, Audio(decode=False))
    kept = [label, *([SOURCE] if SOURCE in dataset.column_names else [])]

    def decode(example: dict[str, Any], index: int) -> dict[str, Any]:
        value = example[settings.audio_column]
        name = (value or {}).get("path") or f"row {index}"
        try:
            samples = np.asarray(decoder.decode_example(value)["array"], dtype=np.float32)
        except _DECODE_ERRORS as err:
            log.debug("cannot decode %s: %s", name, err)
            samples = np.zeros(0, dtype=np.float32)
        duration = len(samples) / sampling_rate
        return {WAVEFORM: samples, DURATION: duration, "_name": name, **{c: example[c] for c in kept}}

    features = datasets.Features(
        {
            WAVEFORM: datasets.List(datasets.Value("float32")),
            DURATION: datasets.Value("float32"),
            "_name": datasets.Value("string"),
            **{column: dataset.features[column] for column in kept},
        }
    )
    decoded = undecoded.map(
        decode, with_indices=True, remove_columns=undecoded.column_names, features=features, desc=desc
    )
    bad = [i for i, duration in enumerate(decoded[DURATION]) if duration <= 0.0]
    skipped = [decoded[i]["_name"] for i in bad]
    if bad:
        keep = sorted(set(range(len(decoded))) - set(bad))
        decoded = decoded.select(keep)
    return decoded.remove_columns("_name"), skipped


# --- several sources ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceInfo:
    """One data source of a run, as the model card and the sampler see it."""

    index: int
    name: str
    """Short name: the folder's or hub id's last part (made unique with its position)."""
    source: str
    """As given: a hub id or a path."""
    weight: float
    clips: dict[str, int]
    """Decoded clips per split."""


def source_names(sources: Sequence[str]) -> tuple[str, ...]:
    names: list[str] = []
    for position, source in enumerate(sources):
        name = Path(source.rstrip("/")).name or f"source{position}"
        names.append(name if name not in names else f"{name}{position}")
    return tuple(names)


@dataclass(frozen=True)
class LabelPlan:
    labels: tuple[str, ...]
    """The model's labels."""
    other: str | None
    """The label clips of other words become (``_unknown_`` when the vocabulary has it)."""
    spoken: frozenset[str]
    """The vocabulary's labels and phrases, normalised (``vocab.spoken_forms``)."""


def final_labels(
    raws: Sequence[DatasetDict], settings: DataSettings, model_labels: Sequence[str] = ()
) -> LabelPlan:
    """The vocabulary's labels; else ``model_labels`` (a model to start from) when they hold every
    label of the data, so its head carries over; else every label of every source, sorted."""
    if settings.vocab is not None:
        from .vocab import UNKNOWN, load_vocabulary, spoken_forms

        vocabulary = load_vocabulary(Path(settings.vocab))
        other = UNKNOWN if UNKNOWN in vocabulary.labels else None
        if settings.unknown_data and other is None:
            raise DataError(f"data: --unknown-data needs {UNKNOWN} in the vocabulary {settings.vocab}")
        return LabelPlan(vocabulary.labels, other, spoken_forms(vocabulary))
    found: set[str] = set()
    for raw in raws:
        feature = next(iter(raw.values())).features[settings.label_column]
        found.update(str(name) for name in feature.names)
    if model_labels and found <= set(model_labels):
        return LabelPlan(tuple(model_labels), None, frozenset())
    return LabelPlan(tuple(sorted(found)), None, frozenset())


def relabel(
    dataset: Dataset, label_column: str, labels: Sequence[str], other: str | None,
    other_speech: frozenset[str] | None = None,
) -> Dataset:
    """The label column as indices into ``labels``; labels not among them become ``other`` (or the
    clip is left out when ``other`` is None). With ``other_speech`` (the vocabulary's spoken forms)
    the source is other speech: see :func:`other_speech_mapping`."""
    names = dataset.features[label_column].names
    index = {name: i for i, name in enumerate(labels)}
    fallback = index[other] if other is not None else -1
    if other_speech is not None:
        mapping = other_speech_mapping(names, fallback, other_speech)
    else:
        mapping = [index.get(str(name), fallback) for name in names]
    if mapping == list(range(len(names))) and tuple(names) == tuple(labels):
        return dataset
    mapped = dataset.map(
        lambda values: {label_column: [mapping[v] for v in values]},
        input_columns=label_column, batched=True,
        features=datasets.Features({**dataset.features, label_column: datasets.Value("int64")}),
        desc="mapping labels",
    )  # fmt: skip
    mapped = mapped.filter(lambda values: [v >= 0 for v in values], input_columns=label_column, batched=True)
    return mapped.cast_column(label_column, ClassLabel(names=list(labels)))


def drop_unlabelled(raw: DatasetDict, label_column: str) -> DatasetDict:
    """Rows with an empty label (a kept utterance nobody reviewed yet) are left out."""
    if all(isinstance(d.features[label_column], ClassLabel) for d in raw.values()):
        return raw

    def labelled(values: list[Any]) -> list[bool]:  # an all-empty column reads as float NaN
        return [not (v is None or v != v or str(v).strip() == "") for v in values]

    return DatasetDict(
        {name: d.filter(labelled, input_columns=label_column, batched=True) for name, d in raw.items()}
    )


def _read_raw(source: str, settings: DataSettings) -> DatasetDict:
    raw = pick_loader(source)(source, settings)
    check_columns(raw, settings)
    return ensure_class_labels(drop_unlabelled(raw, settings.label_column), settings.label_column)


def other_speech_mapping(names: Sequence[str], unknown: int, spoken: frozenset[str]) -> list[int]:
    """For a source of other speech: every label → ``unknown``, except words the vocabulary speaks and
    non-speech ``_labels_`` (-1: left out)."""
    from .vocab import normalise

    def left_out(name: str) -> bool:
        return normalise(name) in spoken or (name.startswith("_") and name.endswith("_"))

    return [-1 if left_out(str(name)) else unknown for name in names]


def _decode_source(
    raw: DatasetDict, info: tuple[int, str], settings: DataSettings, sampling_rate: int, seed: int
) -> tuple[dict[str, Dataset], list[str]]:
    """The first source without a split of its own gives ``test_size`` to the test split; any other
    such source (a handful of enrolled clips, say) trains whole."""
    index, name = info
    splits = split_dataset(raw, settings, seed, hold_out=index == 0)
    decoded: dict[str, Dataset] = {}
    skipped: list[str] = []
    for split, dataset in splits.items():
        if split == "test" and "validation" in splits and dataset is splits["validation"]:
            continue
        tagged = dataset.add_column(SOURCE, [index] * len(dataset))
        clips, bad = decode_audio(tagged, settings, sampling_rate, desc=f"decoding {name} {split} audio")
        skipped.extend(bad)
        decoded[split] = clips
    if "test" not in decoded and "validation" in decoded:
        decoded["test"] = decoded["validation"]
    return decoded, skipped


def load_splits(
    settings: DataSettings, sampling_rate: int, seed: int, model_labels: Sequence[str] = ()
) -> PreparedData:
    """Load every source (hub, folder or saved dataset), check columns, give all one label set
    (:func:`final_labels`), split and decode; the splits of all sources are concatenated, each clip
    tagged with its source."""
    every_source = (*settings.dataset, *settings.unknown_data)
    raws = [_read_raw(source, settings) for source in every_source]
    plan = final_labels(raws, settings, model_labels)
    if len(plan.labels) < 2:
        column = settings.label_column
        raise DataError(f"data: label column {column!r} has {len(plan.labels)} label(s); need 2+")
    labels = plan.labels
    names = source_names(every_source)
    weights = (*(settings.weights or (1.0,) * len(settings.dataset)), *(1.0,) * len(settings.unknown_data))
    per_source: list[dict[str, Dataset]] = []
    skipped: list[str] = []
    for index, raw in enumerate(raws):
        speech = plan.spoken if index >= len(settings.dataset) else None
        mapped = DatasetDict(
            {k: relabel(v, settings.label_column, labels, plan.other, speech) for k, v in raw.items()}
        )
        decoded, bad = _decode_source(mapped, (index, names[index]), settings, sampling_rate, seed)
        per_source.append(decoded)
        skipped.extend(bad)
    if skipped:
        shown = ", ".join(skipped[:10]) + (f", … ({len(skipped) - 10} more)" if len(skipped) > 10 else "")
        log.warning("skipped %d clip(s) that could not be decoded: %s", len(skipped), shown)
    splits: dict[str, Dataset] = {}
    for split in SPLIT_NAMES:
        parts = [decoded[split] for decoded in per_source if split in decoded and len(decoded[split])]
        if parts:
            splits[split] = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    for split in ("train", "test"):
        if split not in splits:
            raise DataError(f"data: {', '.join(every_source)}: no decodable audio in the {split} split")
    sources = tuple(
        SourceInfo(i, names[i], every_source[i], float(weights[i]),
                   {split: len(ds) for split, ds in per_source[i].items()})
        for i in range(len(per_source))
    )  # fmt: skip
    held_out = "validation" if all("validation" in d for d in per_source if "test" in d) else "test"
    return PreparedData(
        splits=DatasetDict(splits),
        labels=tuple(labels),
        label_column=settings.label_column,
        sampling_rate=sampling_rate,
        skipped=tuple(skipped),
        sources=sources,
        eval_sets={names[i]: d[held_out] for i, d in enumerate(per_source) if len(d.get(held_out, ()))},
    )


def duration_limit(durations: np.ndarray, settings: DataSettings) -> DurationLimit:
    """The truncation length: set by hand, or the chosen percentile of the training durations."""
    durations = np.asarray(durations, dtype=np.float64)
    if settings.max_duration is not None:
        seconds, percentile = float(settings.max_duration), None
    else:
        percentile = settings.duration_percentile
        seconds = float(np.percentile(durations, percentile))
    return DurationLimit(
        seconds=seconds,
        percentile=percentile,
        median=float(np.median(durations)),
        longest=float(durations.max()),
        clips_truncated=int(np.sum(durations > seconds)),
    )


def label_counts(dataset: Dataset, label_column: str, num_labels: int) -> np.ndarray:
    return np.bincount(np.asarray(dataset[label_column], dtype=np.int64), minlength=num_labels)
