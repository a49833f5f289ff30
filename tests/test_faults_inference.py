"""Fault injection, inference: the model raises on one segment, through the real CLI.

The model is a real transformers checkpoint whose first convolution is wider (0.5 s) than a
short word: PyTorch itself raises ("kernel size can't be greater than actual input size") on
any segment shorter than that, and classifies longer ones. No wrapper, no hook: the failure
comes from the model, as a broken or mismatched checkpoint would make it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

from tests.tiny_model import _encoder_args
from trainer.streams import build_stream
from trainer.tts import Voice, synthesize

RATE = 16000
KERNEL = RATE // 2
"""First convolution width in samples: inputs shorter than about this raise inside the model."""


def build_short_input_intolerant_model(path: Path) -> Path:
    args = _encoder_args(("yes", "stop", "go"))
    args.update(conv_dim=(8, 8, 8), conv_kernel=(KERNEL, 8, 8), conv_stride=(5, 4, 4))
    config = Wav2Vec2Config(feat_extract_norm="layer", do_stable_layer_norm=True, **args)
    torch.manual_seed(0)
    model = Wav2Vec2ForSequenceClassification(config).eval()
    model.save_pretrained(path, safe_serialization=True)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=RATE, padding_value=0.0, do_normalize=True, return_attention_mask=True
    ).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_short_input_intolerant_model(tmp_path_factory.mktemp("model") / "narrow-eyed")


@pytest.fixture(scope="module")
def long_short_long(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A long phrase, a short word (the model fails on it), two long phrases."""
    texts = ["seventeen hundred", "go", "seventeen hundred", "twenty seven"]
    words = [synthesize(t, Voice("espeak-ng", "en-us", 170, 50), RATE) for t in texts]
    assert len(words[1]) < KERNEL * 0.7 < KERNEL * 1.5 < min(len(words[0]), len(words[3]))
    rng = np.random.default_rng(1)
    stream = build_stream(words, texts, [1.0, 1.0, 1.0], rng)
    path = tmp_path_factory.mktemp("audio") / "long-short-long.wav"
    sf.write(path, stream.audio, RATE, subtype="PCM_16")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamclf", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("command", ["listen", "classify"])
def test_a_segment_the_model_fails_on_gets_an_error_event_and_the_next_are_classified(
    model_dir: Path, long_short_long: Path, command: str
) -> None:
    if command == "listen":
        proc = run(
            "listen", "--json", "--model", str(model_dir), "--source", str(long_short_long), "--speed", "0"
        )
    else:
        proc = run("classify", "--json", "--model", str(model_dir), str(long_short_long))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    outcomes = [e for e in events if e["type"] in ("utterance", "error")]
    assert [e["type"] for e in outcomes] == ["utterance", "error", "utterance", "utterance"], outcomes
    error = outcomes[1]
    assert error["code"] == "inference_failed"
    assert error["segment_id"] == 1
    assert "kernel size" in error["message"].lower()
    assert "\n" not in error["message"]
    assert [e["id"] for e in outcomes if e["type"] == "utterance"] == [0, 2, 3]
    # the failure is also in the log, once
    assert sum("inference failed" in line for line in proc.stderr.splitlines()) == 1
    if command == "listen":
        final = [e for e in events if e["type"] == "status"][-1]
        assert final["counters"]["errors"] == 1
        assert final["counters"]["classified"] == 3
