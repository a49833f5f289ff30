"""The bundled default commands model: loads through the Auto classes and pipeline, hears real people
(Speech Commands validation speakers, never trained on) and espeak-ng speech as the right word,
and generated noise as ``_background_``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from streamclf.models import DEFAULT_MODEL_DIR

pytestmark = pytest.mark.skipif(
    not (DEFAULT_MODEL_DIR / "model.safetensors").exists(), reason="bundled model not built yet"
)


@pytest.fixture(scope="module")
def classify():
    from transformers import pipeline

    import streamclf  # noqa: F401 - registers the architecture

    return pipeline("audio-classification", model=str(DEFAULT_MODEL_DIR))


def test_bundle_is_small_and_complete() -> None:
    names = {p.name for p in DEFAULT_MODEL_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= names
    assert sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir() if p.is_file()) <= 10 * 1024 * 1024
    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text(encoding="utf-8"))
    labels = set(config["id2label"].values())
    assert len(labels) == 37 and {"_unknown_", "_background_", "yes", "marvin"} <= labels
    assert {"model.onnx", "model.int8.onnx"} <= names  # the daemon runs ONNX by default
    card = (DEFAULT_MODEL_DIR / "README.md").read_text(encoding="utf-8")
    assert "scripts/build-default-model" in card and "make model" in card
    assert "Speech Commands" in card and "CC BY 4.0" in card and "Warden" in card  # attribution
    assert "/work/" not in card and "/root/" not in card  # commands relative to the repository


def test_espeak_stop_is_stop(classify) -> None:
    from trainer import tts

    speech = tts.synthesize("stop", tts.Voice("espeak-ng", "en-us", rate=160))
    audio = np.pad(speech, (3200, 4800)) * 0.3
    assert classify(audio.astype(np.float32), top_k=1)[0]["label"] == "stop"


SPEECH_COMMANDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech_commands"
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def first_validation_clips() -> list[tuple[str, Path]]:
    """Per command word, the validation clip whose file name (speaker id, then take) sorts first:
    chosen by speaker and file name, never by what the model says."""
    with (SPEECH_COMMANDS / "metadata.csv").open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == "validation" and r["label"] in COMMANDS]
    first = {word: min(r["file_name"] for r in rows if r["label"] == word) for word in COMMANDS}
    return [(word, SPEECH_COMMANDS / name) for word, name in first.items()]


@pytest.mark.skipif(
    not (SPEECH_COMMANDS / "metadata.csv").is_file(), reason="no ../shared/data/speech_commands"
)
def test_real_people_saying_the_ten_commands_are_understood(classify) -> None:
    import soundfile as sf

    heard = []
    for word, path in first_validation_clips():
        audio, rate = sf.read(path, dtype="float32")
        assert rate == 16000
        heard.append((word, classify(audio, top_k=1)[0]["label"]))
    assert sum(word == label for word, label in heard) >= 9, heard


def test_generated_noise_is_background(classify) -> None:
    from trainer import noise

    rng = np.random.default_rng(4)
    for kind in ("pink", "white", "brown", "hum"):
        clip = noise.set_level_dbfs(noise.make_noise(kind, 16000, rng), -30.0)
        assert classify(clip, top_k=1)[0]["label"] == "_background_", kind
