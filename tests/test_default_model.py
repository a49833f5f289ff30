"""The bundled default commands model: loads through the Auto classes and pipeline, hears real
espeak-ng speech as the right word and generated noise as ``_background_``."""

from __future__ import annotations

import json

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
    assert config["model_type"] == "streamclf-logmel-cnn"
    assert len(config["id2label"]) == 36 and "_background_" in config["id2label"].values()
    assert "scripts/build-default-model" in (DEFAULT_MODEL_DIR / "README.md").read_text(encoding="utf-8")


def test_espeak_stop_is_stop(classify) -> None:
    from trainer import tts

    speech = tts.synthesize("stop", tts.Voice("espeak-ng", "en-us", rate=160))
    audio = np.pad(speech, (3200, 4800)) * 0.3
    assert classify(audio.astype(np.float32), top_k=1)[0]["label"] == "stop"


def test_generated_noise_is_background(classify) -> None:
    from trainer import noise

    rng = np.random.default_rng(4)
    for kind in ("pink", "white", "brown", "hum"):
        clip = noise.set_level_dbfs(noise.make_noise(kind, 16000, rng), -30.0)
        assert classify(clip, top_k=1)[0]["label"] == "_background_", kind
