"""Audio classifiers: the ``Classifier`` protocol and the transformers (PyTorch) backend.

``load_classifier(settings)`` turns :class:`~streamclf.config.ModelSettings` into a ready
classifier: a local Hugging Face model directory, a hub id (from the local cache, or
downloaded when the hub is reachable), or the bundled default model. Only safetensors
weights are loaded and remote code never runs. Every refusal is a :class:`StartupError`
with a one-line message (exit code 3).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import socket
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .config import ModelSettings
from .errors import StartupError
from .events import Intent
from .models.files import ONNX_GRAPH, read_model_json

log = logging.getLogger(__name__)

MIN_INPUT_SECONDS = 0.1
"""Shorter inputs are zero-padded to this length so convolutional front ends always get a frame."""

WARM_UP_SECONDS = 1.0
"""Length of the quiet noise the warm-up classifies."""

_HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model"]
"""Files fetched for a hub model: configs, safetensors weights, vocabularies. Never pickles."""


@runtime_checkable
class Classifier(Protocol):
    """Ranks the labels of a batch of mono float32 waveforms at ``sample_rate``."""

    name: str
    sample_rate: int
    labels: tuple[str, ...]

    def classify(self, batch: Sequence[np.ndarray], top_k: int) -> list[tuple[Intent, ...]]:
        """For each waveform, the ``top_k`` labels with softmax scores, best first."""
        ...

    def warm_up(self) -> None:
        """Run one inference so the first real segment does not pay for lazy set-up."""
        ...


class TorchClassifier:
    """A transformers ``AutoModelForAudioClassification`` with its ``AutoFeatureExtractor``."""

    def __init__(self, model: Any, feature_extractor: Any, name: str) -> None:
        import torch

        self._torch = torch
        self.model = model.eval()
        self.feature_extractor = feature_extractor
        self.name = name
        self.sample_rate = int(feature_extractor.sampling_rate)
        id2label = model.config.id2label
        self.labels: tuple[str, ...] = tuple(str(id2label[i]) for i in sorted(id2label))
        self._min_samples = max(1, round(MIN_INPUT_SECONDS * self.sample_rate))

    @classmethod
    def load(cls, ref: str) -> TorchClassifier:
        """Load a model directory or hub id; raises :class:`StartupError` when it cannot."""
        directory, name = _resolve(ref)
        _check_model_dir(directory, shown=ref)
        model, extractor = _load_pretrained(directory, shown=ref)
        return cls(model, extractor, name)

    def _prepare(self, waveform: np.ndarray) -> np.ndarray:
        samples = np.asarray(waveform, dtype=np.float32).reshape(-1)
        if len(samples) < self._min_samples:
            samples = np.pad(samples, (0, self._min_samples - len(samples)))
        return samples

    def classify(self, batch: Sequence[np.ndarray], top_k: int) -> list[tuple[Intent, ...]]:
        if not batch:
            return []
        torch = self._torch
        inputs = self.feature_extractor(
            [self._prepare(w) for w in batch],
            sampling_rate=self.sample_rate,
            padding=True,
            return_tensors="pt",
        )
        with torch.inference_mode():
            logits = self.model(**inputs).logits
            probs = torch.softmax(logits.float(), dim=-1)
            k = max(1, min(top_k, probs.shape[-1]))
            scores, indices = torch.topk(probs, k, dim=-1)
        return [
            tuple(Intent(self.labels[i], float(s)) for s, i in zip(row_s, row_i, strict=True))
            for row_s, row_i in zip(scores.tolist(), indices.tolist(), strict=True)
        ]

    @property
    def parameters(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))

    def warm_up(self) -> None:
        rng = np.random.default_rng(0)
        quiet = (rng.standard_normal(round(WARM_UP_SECONDS * self.sample_rate)) * 1e-3).astype(np.float32)
        self.classify([quiet], top_k=1)


SMALL_MODEL_PARAMETERS = 5_000_000
"""With ``threads = 0``, models under this size run on one thread."""


def load_classifier(settings: ModelSettings) -> Classifier:
    """The classifier ``settings`` names (not yet warmed up); :class:`StartupError` when it cannot load.

    Backend "auto" is ONNX Runtime when the model is a local directory (or the bundled default) that
    holds ``model.onnx``, else torch."""
    if backend_for(settings) == "onnx":
        return _load_onnx(settings)
    ref = settings.model if settings.model is not None else _default_model_ref()
    classifier = TorchClassifier.load(ref)
    import torch

    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    elif classifier.parameters < SMALL_MODEL_PARAMETERS:
        # a small model's layers are too short to split: extra threads only add hand-offs
        # (benchmarks/throughput.py: the default model, 2 threads 67x real time, 1 thread 175x)
        torch.set_num_threads(1)
    log.info("model %s: %d labels at %d Hz", classifier.name, len(classifier.labels), classifier.sample_rate)
    return classifier


def backend_for(settings: ModelSettings) -> str:
    """"torch" or "onnx": the one named, or for "auto" the one the model directory supports."""
    if settings.backend != "auto":
        return settings.backend
    from .models import DEFAULT_MODEL_DIR

    directory = DEFAULT_MODEL_DIR if settings.model is None else Path(settings.model).expanduser()
    if directory.is_file() and directory.suffix == ".onnx":
        return "onnx"
    has_graph = directory.is_dir() and (directory / ONNX_GRAPH).is_file()
    if has_graph and importlib.util.find_spec("onnxruntime") is not None:
        return "onnx"
    return "torch"


def _default_model_ref() -> str:
    from .models import DEFAULT_MODEL_DIR

    if not (DEFAULT_MODEL_DIR / "config.json").is_file():
        raise StartupError(
            f"bundled default model not found at {DEFAULT_MODEL_DIR}; "
            "pass --model DIR or build it with scripts/build-default-model"
        )
    return str(DEFAULT_MODEL_DIR)


def _load_onnx(settings: ModelSettings) -> Classifier:
    try:
        backend = importlib.import_module("streamclf.onnx_backend")
    except ModuleNotFoundError as exc:
        if exc.name == "streamclf.onnx_backend":
            message = 'the ONNX backend is not available in this build; use backend = "torch"'
            raise StartupError(message) from None
        raise StartupError(f"the ONNX backend needs {exc.name}: pip install 'streamclf[onnx]'") from None
    classifier: Classifier = backend.load_onnx_classifier(settings)
    return classifier


def _looks_like_path(ref: str) -> bool:
    """A reference that can only be a filesystem path, never a hub id (``name`` or ``org/name``)."""
    return ref.startswith(("/", ".", "~")) or ref.endswith("/") or ref.count("/") > 1 or "\\" in ref


def _resolve(ref: str) -> tuple[Path, str]:
    """The local directory holding ``ref`` and the name events report for it."""
    if not ref.strip():
        raise StartupError("model: empty model reference")
    path = Path(ref).expanduser()
    if path.exists():
        if not path.is_dir():
            raise StartupError(f"model {ref}: is a file, not a model directory")
        return path, path.resolve().name
    if _looks_like_path(ref):
        raise StartupError(f"model directory not found: {ref}")
    return _fetch_from_hub(ref), ref


def _fetch_from_hub(repo_id: str) -> Path:
    """The hub model's snapshot directory: from the cache, else downloaded when the hub answers."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, allow_patterns=_HUB_FILES, local_files_only=True))
    except ValueError as exc:  # HFValidationError: not a valid repo id
        raise StartupError(f"model {repo_id}: no such directory, and not a valid hub id ({exc})") from None
    except OSError:
        log.debug("hub model %s is not in the local cache", repo_id)
    endpoint = _unreachable_hub_endpoint()
    if endpoint is not None:
        raise StartupError(
            f"model {repo_id}: no such directory; as a hub id it is not in the local cache "
            f"and {endpoint} is unreachable (offline?): pass a local model directory"
        )
    try:
        return Path(snapshot_download(repo_id, allow_patterns=_HUB_FILES))
    except (OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StartupError(f"model {repo_id}: cannot download from the hub: {first_line}") from None


def _unreachable_hub_endpoint(timeout_s: float = 3.0) -> str | None:
    """None when the hub endpoint accepts a TCP connection, else its address (or "offline mode")."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "the hub (HF_HUB_OFFLINE is set)"
    url = urllib.parse.urlsplit(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout_s):
            return None
    except OSError:
        return constants.ENDPOINT


def _check_model_dir(directory: Path, *, shown: str) -> None:
    """Refuse, with a clear message, anything that is not a safetensors audio-classification model."""
    if not (directory / "config.json").is_file():
        raise StartupError(f"model {shown}: no config.json: not a Hugging Face model directory")
    raw = read_model_json(directory / "config.json", shown)
    if not raw.get("id2label"):
        raise StartupError(f"model {shown}: not an audio-classification model (config.json has no id2label)")
    _check_architecture(directory, raw, shown=shown)
    if not any(directory.glob("*.safetensors")):
        if any(directory.glob("*.bin")) or any(directory.glob("*.pt")) or any(directory.glob("*.pth")):
            raise StartupError(f"model {shown}: refusing pickle weights; convert to safetensors")
        raise StartupError(f"model {shown}: no model.safetensors weights")
    if not (directory / "preprocessor_config.json").is_file():
        raise StartupError(f"model {shown}: no preprocessor_config.json (the feature extractor)")


def _check_architecture(directory: Path, raw: dict[str, Any], *, shown: str) -> None:
    from transformers import AutoConfig, AutoModelForAudioClassification

    try:
        config = AutoConfig.from_pretrained(directory, trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StartupError(f"model {shown}: unsupported config ({reason})") from None
    mapping = AutoModelForAudioClassification._model_mapping
    if type(config) not in mapping:
        raise StartupError(
            f"model {shown}: model type {raw.get('model_type')!r} is not an audio-classification architecture"
        )
    model_class: Any = mapping[type(config)]
    expected = model_class.__name__
    declared = raw.get("architectures") or []
    if declared and expected not in declared:
        raise StartupError(
            f"model {shown}: architecture {', '.join(map(str, declared))} is not an audio classifier "
            f"(expected {expected})"
        )


def _load_pretrained(directory: Path, *, shown: str) -> tuple[Any, Any]:
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # stderr carries our logs, not download/loading bars
    try:
        extractor = AutoFeatureExtractor.from_pretrained(directory, trust_remote_code=False)
        model = AutoModelForAudioClassification.from_pretrained(
            directory, use_safetensors=True, trust_remote_code=False
        )
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StartupError(f"model {shown}: cannot load ({reason})") from None
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()
    if not hasattr(extractor, "sampling_rate"):
        raise StartupError(f"model {shown}: the feature extractor has no sampling_rate: not an audio model")
    return model, extractor
