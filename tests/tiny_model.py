"""Tiny random-weight audio-classification models that tests build and save themselves.

``build_tiny_model(path)`` writes a standard Hugging Face model directory (``config.json``
with ``id2label``/``label2id``, ``model.safetensors``, ``preprocessor_config.json``) through
public transformers APIs, so the daemon loads it with exactly the code users run. A few
hundred thousand parameters: building takes well under a second.

``spoken_word(word)`` is real speech to feed them: espeak-ng output at the model's rate.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
import torch
from transformers import (
    HubertConfig,
    HubertForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForSequenceClassification,
)
from transformers.utils.logging import disable_progress_bar

KINDS = ("wav2vec2", "wav2vec2-nomask", "hubert", "logmel")
"""``wav2vec2``: layer-norm feature encoder, uses an attention mask (batching is exact).
``wav2vec2-nomask``: group-norm encoder like wav2vec2-base, no attention mask.
``hubert``: a second architecture from the audio-classification mapping.
``logmel``: the project's own log-mel CNN (registered with the Auto classes by ``import streamclf``)."""

HEAD_GAIN = 400.0
"""Scale of the random classification head: makes the scores of different inputs differ visibly."""


def _encoder_args(labels: Sequence[str]) -> dict[str, Any]:
    return {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "conv_dim": (32, 32, 32),
        "conv_stride": (5, 4, 4),
        "conv_kernel": (10, 8, 8),
        "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 2,
        "classifier_proj_size": 16,
        "hidden_dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "feat_proj_dropout": 0.0,
        "layerdrop": 0.0,
        "mask_time_prob": 0.0,
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }


def build_tiny_model(
    path: Path | str,
    labels: Sequence[str] = ("yes", "no", "stop"),
    kind: str = "wav2vec2",
    seed: int = 0,
) -> Path:
    """Build and save a tiny random-weight audio classifier in ``path``; returns ``path``."""
    if kind not in KINDS:
        raise ValueError(f"unknown tiny model kind {kind!r} (known: {', '.join(KINDS)})")
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ValueError("need at least two distinct labels")
    path = Path(path)
    if kind == "logmel":
        return _build_logmel(path, labels, seed)
    uses_mask = kind != "wav2vec2-nomask"
    args = _encoder_args(labels)
    config: PretrainedConfig
    model: PreTrainedModel
    torch.manual_seed(seed)
    if kind == "hubert":
        config = HubertConfig(feat_extract_norm="layer", do_stable_layer_norm=True, **args)
        model = HubertForSequenceClassification(config)
    else:
        norm = "layer" if uses_mask else "group"
        config = Wav2Vec2Config(feat_extract_norm=norm, do_stable_layer_norm=uses_mask, **args)
        model = Wav2Vec2ForSequenceClassification(config)
    with torch.no_grad():  # spread the random logits so the top label is clear, not ~1/n each
        model.classifier.weight.mul_(HEAD_GAIN)
    model.eval()
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=uses_mask,
    )
    path.mkdir(parents=True, exist_ok=True)
    disable_progress_bar()
    model.save_pretrained(path, safe_serialization=True)
    extractor.save_pretrained(path)
    return path


def _build_logmel(path: Path, labels: Sequence[str], seed: int) -> Path:
    from streamclf.models.configuration import LogMelCnnConfig
    from streamclf.models.feature_extraction import LogMelFeatureExtractor
    from streamclf.models.modeling import LogMelCnnForAudioClassification

    torch.manual_seed(seed)
    config = LogMelCnnConfig(
        channels=(8, 16),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    model = LogMelCnnForAudioClassification(config).eval()
    path.mkdir(parents=True, exist_ok=True)
    disable_progress_bar()
    model.save_pretrained(path, safe_serialization=True)
    LogMelFeatureExtractor().save_pretrained(path)
    return path


def spoken_word(word: str, sample_rate: int = 16000, voice: str = "en", speed_wpm: int = 160) -> np.ndarray:
    """``word`` spoken by espeak-ng, as mono float32 at ``sample_rate`` (real speech for tests)."""
    result = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed_wpm), "--stdout", word],
        check=True,
        capture_output=True,
    )
    audio, rate = sf.read(io.BytesIO(result.stdout), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)
