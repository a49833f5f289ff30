"""trainer.data and trainer.settings: loaders, splits, labels, decoding, duration limit, collator."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("datasets")

from datasets import load_from_disk

from streamclf.errors import ConfigError
from tests import trainer_data
from trainer.common import AudioCollator, load_feature_extractor
from trainer.data import (
    DataError,
    duration_limit,
    load_audio_folder,
    load_hub_dataset,
    load_saved_dataset,
    load_splits,
    pick_loader,
)
from trainer.fit import AugmentedClips, class_weights
from trainer.settings import DataSettings, add_flags, resolve

REPO = Path(__file__).resolve().parents[1]
TINY_W2V2 = str(REPO / "configs" / "models" / "wav2vec2-tiny")
OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("minds14-like")
    return {
        "saved": trainer_data.build_saved_dataset(root),
        "folder": trainer_data.build_audiofolder(root),
        "split_folder": trainer_data.build_audiofolder(root, splits=True),
    }


def settings_for(path: Path, **overrides: object) -> DataSettings:
    values: dict[str, object] = {"dataset": str(path), "test_size": 0.25, **overrides}
    return DataSettings(**values)  # type: ignore[arg-type]


# --- which loader ------------------------------------------------------------------------------


def test_hub_id_goes_to_load_dataset_and_folders_to_local_loaders(built: dict[str, Path]) -> None:
    assert pick_loader("PolyAI/minds14") is load_hub_dataset
    assert pick_loader("superb") is load_hub_dataset
    assert pick_loader(str(built["folder"])) is load_audio_folder
    assert pick_loader(str(built["split_folder"])) is load_audio_folder
    assert pick_loader(str(built["saved"])) is load_saved_dataset
    with pytest.raises(DataError, match="no such directory"):
        pick_loader("./not/here")


def test_hub_loader_passes_id_and_config_to_load_dataset() -> None:
    """Offline, the real ``datasets.load_dataset(id, config)`` fails, naming the request."""
    code = (
        "from trainer.data import load_hub_dataset, DataError\n"
        "from trainer.settings import DataSettings\n"
        "try:\n"
        "    load_hub_dataset('PolyAI/minds14', DataSettings())\n"
        "except DataError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=OFFLINE, capture_output=True, text=True, timeout=120, check=True
    )
    assert "'PolyAI/minds14'" in done.stdout
    assert "config 'en-US'" in done.stdout


# --- splits and labels -------------------------------------------------------------------------


def test_saved_minds14_shape_is_held_out_stratified_with_all_14_intents(built: dict[str, Path]) -> None:
    prepared = load_splits(settings_for(built["saved"]), sampling_rate=16000, seed=42)
    assert prepared.labels == trainer_data.INTENTS
    train, test = prepared.splits["train"], prepared.splits["test"]
    assert (len(train), len(test)) == (12, 4)
    present = sorted(trainer_data.INTENTS.index(i) for i in trainer_data.PHRASES)
    assert sorted(test["intent_class"]) == present  # stratified: one clip per intent
    source = load_from_disk(str(built["saved"]))
    seconds_8k = sorted(len(a["array"]) / 8000 for a in source["audio"])
    seconds_16k = sorted(np.concatenate([train["duration"], test["duration"]]))
    np.testing.assert_allclose(seconds_16k, seconds_8k, atol=0.01)  # resampled 8 kHz → 16 kHz
    assert not prepared.skipped


def test_audiofolder_string_labels_become_class_labels(built: dict[str, Path]) -> None:
    prepared = load_splits(settings_for(built["folder"], label_column="label"), 16000, seed=1)
    assert prepared.labels == tuple(sorted(trainer_data.PHRASES))
    assert len(prepared.splits["train"]) + len(prepared.splits["test"]) == 16


def test_audiofolder_split_subfolders_are_used_instead_of_a_random_split(built: dict[str, Path]) -> None:
    prepared = load_splits(settings_for(built["split_folder"], label_column="label"), 16000, seed=1)
    test = prepared.splits["test"]
    assert len(test) == len(list((built["split_folder"] / "test").glob("*.wav"))) == 4
    assert len(prepared.splits["train"]) == 12


def test_split_column_is_used(built: dict[str, Path], tmp_path: Path) -> None:
    dataset = load_from_disk(str(built["saved"]))
    marks = ["validation" if i % 4 == 1 else "test" if i % 4 == 2 else "train" for i in range(len(dataset))]
    dataset.add_column("split", marks).save_to_disk(str(tmp_path / "with-split"))
    prepared = load_splits(settings_for(tmp_path / "with-split"), 16000, seed=1)
    sizes = {name: len(ds) for name, ds in prepared.splits.items()}
    assert sizes == {"train": 8, "validation": 4, "test": 4}


# --- bad input ---------------------------------------------------------------------------------


def test_missing_label_column_names_it(built: dict[str, Path]) -> None:
    with pytest.raises(DataError, match=r"label column 'intent' not found.*--label-column"):
        load_splits(settings_for(built["saved"], label_column="intent"), 16000, seed=1)


def test_folder_without_audio_is_refused(tmp_path: Path) -> None:
    (tmp_path / "metadata.csv").write_text("file_name,label\n", encoding="utf-8")
    with pytest.raises(DataError, match="no audio files"):
        load_splits(settings_for(tmp_path, label_column="label"), 16000, seed=1)


def test_undecodable_audio_is_skipped_counted_and_named(built: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "with-broken"
    shutil.copytree(built["folder"], folder)
    (folder / "clips" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 4)
    with open(folder / "metadata.csv", "a", encoding="utf-8") as handle:
        handle.write("clips/broken.wav,balance,nothing\n")
    prepared = load_splits(settings_for(folder, label_column="label"), 16000, seed=1)
    assert len(prepared.skipped) == 1
    assert prepared.skipped[0].endswith("broken.wav")
    assert len(prepared.splits["train"]) + len(prepared.splits["test"]) == 16


# --- duration limit, collator, balance ---------------------------------------------------------


def test_duration_limit_is_the_95th_percentile_unless_set() -> None:
    durations = np.arange(1, 101, dtype=np.float64) / 10  # 0.1 … 10.0 s
    limit = duration_limit(durations, DataSettings())
    assert limit.seconds == pytest.approx(np.percentile(durations, 95))
    assert limit.clips_truncated == 5
    assert limit.percentile == 95.0
    fixed = duration_limit(durations, DataSettings(max_duration=2.0))
    assert (fixed.seconds, fixed.percentile, fixed.clips_truncated) == (2.0, None, 80)


def test_collator_truncates_and_pads_to_the_longest_clip_in_the_batch() -> None:
    extractor = load_feature_extractor(TINY_W2V2)
    collate = AudioCollator(extractor, max_samples=16000, label_column="label")
    rng = np.random.default_rng(0)
    batch = collate(
        [{"waveform": rng.standard_normal(n).astype(np.float32), "label": i}
         for i, n in enumerate((4000, 9000))]
    )
    assert tuple(batch["input_values"].shape) == (2, 9000)
    assert batch["attention_mask"].sum(dim=1).tolist() == [4000, 9000]
    assert batch["labels"].tolist() == [0, 1]
    long = collate([{"waveform": np.ones(40000, dtype=np.float32), "label": 0}])
    assert tuple(long["input_values"].shape) == (1, 16000)


def test_augmentation_applies_to_training_reads_only() -> None:
    base: list[dict[str, Any]] = [{"waveform": np.zeros(100, dtype=np.float32), "label": 0}]

    def add_noise(audio: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        return audio + rng.standard_normal(audio.shape).astype(np.float32)

    augmented = AugmentedClips(base, add_noise, 16000, seed=3)
    first, second = augmented[0]["waveform"], augmented[0]["waveform"]
    assert np.any(first != 0) and not np.array_equal(first, second)  # fresh noise on every read
    assert not np.any(base[0]["waveform"])  # the underlying clips are untouched


def test_class_weights_make_every_class_weigh_the_same() -> None:
    counts = np.array([30, 10, 0, 20])
    weights = class_weights(counts).numpy()
    assert weights[2] == 1.0  # absent class
    totals = counts * weights
    assert totals[0] == pytest.approx(totals[1]) and totals[1] == pytest.approx(totals[3])
    assert totals.sum() == pytest.approx(counts.sum())  # average weight per clip is 1


# --- settings ----------------------------------------------------------------------------------


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_flags(parser, ("data", "training"))
    return parser.parse_args(argv)


def test_flags_override_the_toml_file(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text('[data]\ndataset = "x/y"\ntest_size = 0.3\n[training]\nlearning_rate = 1\n', "utf-8")
    groups = resolve(_parse(["--test-size", "0.5", "--no-augment"]), config, ("data", "training"))
    assert groups["data"].dataset == ("x/y",)
    assert groups["data"].test_size == 0.5
    assert groups["training"].learning_rate == 1.0
    assert groups["training"].augment is False


def test_shipped_minds14_config_is_the_guide_recipe() -> None:
    groups = resolve(_parse([]), REPO / "configs" / "minds14.toml", ("data", "training"))
    assert (groups["data"].dataset, groups["data"].dataset_config) == (("PolyAI/minds14",), "en-US")
    assert groups["data"].label_column == "intent_class"


@pytest.mark.parametrize(
    ("toml", "key"),
    [('[data]\nlabel_colum = "x"\n', "data.label_colum"), ("[training]\nseed = 'one'\n", "training.seed"),
     ("[nope]\n", "nope")],
)
def test_bad_config_names_the_key(tmp_path: Path, toml: str, key: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        resolve(_parse([]), config, ("data", "training"))
    assert caught.value.key == key
