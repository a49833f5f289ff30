"""ONNX Runtime inference backend: the same :class:`~streamclf.classifier.Classifier`, without torch.

``load_onnx_classifier(settings)`` loads an exported graph from a model directory (the one
``python -m trainer export --onnx [--int8] --model DIR`` writes into):

- ``--model DIR`` loads ``DIR/model.onnx`` (fp32), or ``DIR/model.int8.onnx`` when that is the
  only graph there;
- ``--model DIR/model.int8.onnx`` (any ``.onnx`` file inside a model directory) loads that graph.

Labels come from ``config.json`` (``id2label``) and the front end from ``preprocessor_config.json``,
both read with :mod:`json`. Features are computed with numpy: the project's log-mel front end
(:mod:`streamclf.models.logmel`) for ``LogMelFeatureExtractor``, and zero-mean/unit-variance
normalisation (as transformers' ``Wav2Vec2FeatureExtractor``) for waveform models. Neither torch
nor transformers is imported, so start-up and memory stay small.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import ModelSettings
from .errors import StartupError
from .events import Intent
from .models import DEFAULT_MODEL_DIR
from .models.files import ONNX_GRAPH, read_model_json
from .models.logmel import LogMelSpec, log_mel
from .models.waveform import pad_to_min_length

log = logging.getLogger(__name__)

FP32_FILE = ONNX_GRAPH
"""Graph the exporter writes (float32)."""
INT8_FILE = "model.int8.onnx"
"""Graph ``--int8`` writes beside it (MatMul/Gemm weights quantised to int8)."""

MIN_INPUT_SECONDS = 0.1
"""Shorter inputs are zero-padded to this length (as the torch backend does)."""
WARM_UP_SECONDS = 1.0
"""Length of the quiet noise the warm-up classifies."""
NORMALISE_EPSILON = 1e-7
"""Added to the variance before the square root (same constant as transformers)."""

LOGMEL_EXTRACTOR = "LogMelFeatureExtractor"
WAVEFORM_EXTRACTORS = frozenset({"Wav2Vec2FeatureExtractor", "WaveformFeatureExtractor"})
"""Front ends that pass the waveform on (``WaveformFeatureExtractor``: the project's, un-normalised,
each clip centred in zeros up to ``min_seconds``)."""


@dataclass(frozen=True)
class FrontEnd:
    """What turns raw waveforms into the graph's inputs."""

    kind: str
    """"logmel" (input_features, frames × mels) or "waveform" (input_values, samples)."""
    sample_rate: int
    """Input rate in Hz."""
    spec: LogMelSpec | None
    """Log-mel parameters (kind "logmel" only)."""
    normalise: bool
    """Zero-mean/unit-variance per utterance (kind "waveform" only)."""
    min_samples: int
    """Shorter clips are centred in zeros of this length (kind "waveform" only; 0: no minimum)."""
    padding_value: float
    """Value of padded positions in a batch."""


@dataclass(frozen=True)
class OnnxModelFiles:
    """The files of one ONNX model directory."""

    directory: Path
    graph: Path
    config: dict[str, Any]
    preprocessor: dict[str, Any]


class OnnxClassifier:
    """Runs an exported audio-classification graph with ONNX Runtime."""

    def __init__(self, session: Any, front_end: FrontEnd, labels: tuple[str, ...], name: str) -> None:
        self._session = session
        self._front_end = front_end
        self.name = name
        self.sample_rate = front_end.sample_rate
        self.labels = labels
        inputs = {meta.name: meta for meta in session.get_inputs()}
        self._feature_input = "input_features" if front_end.kind == "logmel" else "input_values"
        if self._feature_input not in inputs:
            raise StartupError(
                f"model {name}: the ONNX graph has no input {self._feature_input!r} "
                f"(inputs: {', '.join(inputs)}); re-export it with python -m trainer export --onnx"
            )
        mask = inputs.get("attention_mask")
        self._mask_dtype = _numpy_dtype(mask.type) if mask is not None else None
        self._min_samples = max(1, round(MIN_INPUT_SECONDS * self.sample_rate))

    @property
    def uses_attention_mask(self) -> bool:
        return self._mask_dtype is not None

    def classify(self, batch: Sequence[np.ndarray], top_k: int) -> list[tuple[Intent, ...]]:
        if not batch:
            return []
        clips = [self._prepare(w) for w in batch]
        if self.uses_attention_mask:
            probabilities = self._run(clips)
        else:  # no mask: zero padding would change the result, so one clip per run
            probabilities = np.concatenate([self._run([clip]) for clip in clips])
        k = max(1, min(top_k, probabilities.shape[-1]))
        ranked = np.argsort(-probabilities, axis=-1, kind="stable")[:, :k]
        return [
            tuple(Intent(self.labels[int(i)], float(row[i])) for i in order)
            for row, order in zip(probabilities, ranked, strict=True)
        ]

    def warm_up(self) -> None:
        rng = np.random.default_rng(0)
        quiet = (rng.standard_normal(round(WARM_UP_SECONDS * self.sample_rate)) * 1e-3).astype(np.float32)
        self.classify([quiet], top_k=1)

    def _prepare(self, waveform: np.ndarray) -> np.ndarray:
        samples = np.asarray(waveform, dtype=np.float32).reshape(-1)
        if len(samples) < self._min_samples:
            samples = np.pad(samples, (0, self._min_samples - len(samples)))
        return samples

    def _run(self, clips: list[np.ndarray]) -> np.ndarray:
        features, mask = extract_features(clips, self._front_end)
        feeds: dict[str, np.ndarray] = {self._feature_input: features}
        if self._mask_dtype is not None:
            feeds["attention_mask"] = mask.astype(self._mask_dtype)
        (logits,) = self._session.run(["logits"], feeds)
        return softmax(np.asarray(logits, dtype=np.float32))


def extract_features(clips: Sequence[np.ndarray], front_end: FrontEnd) -> tuple[np.ndarray, np.ndarray]:
    """The batch's padded features and attention mask (1 for real frames/samples, 0 for padding)."""
    if front_end.kind == "logmel":
        assert front_end.spec is not None
        per_clip = [log_mel(clip, front_end.spec) for clip in clips]
    else:
        per_clip = [
            pad_to_min_length(normalise(clip) if front_end.normalise else clip, front_end.min_samples)
            for clip in clips
        ]
    longest = max(len(item) for item in per_clip)
    shape = (len(per_clip), longest, *per_clip[0].shape[1:])
    features = np.full(shape, front_end.padding_value, dtype=np.float32)
    mask = np.zeros((len(per_clip), longest), dtype=np.int64)
    for row, item in enumerate(per_clip):
        features[row, : len(item)] = item
        mask[row, : len(item)] = 1
    return features, mask


def normalise(clip: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance (the waveform front end of wav2vec2-style models)."""
    samples = clip.astype(np.float32)
    return ((samples - samples.mean()) / np.sqrt(samples.var() + NORMALISE_EPSILON)).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    result: np.ndarray = exp / exp.sum(axis=-1, keepdims=True)
    return result


def load_onnx_classifier(settings: ModelSettings) -> OnnxClassifier:
    """The ONNX classifier ``settings.model`` names (not warmed up); :class:`StartupError` if it cannot."""
    files = find_model_files(settings.model)
    front_end = front_end_from(files.preprocessor, shown=str(files.directory))
    labels = labels_from(files.config, shown=str(files.directory))
    session = open_session(files.graph, settings.threads)
    name = files.directory.resolve().name
    classifier = OnnxClassifier(session, front_end, labels, name)
    log.info(
        "onnx model %s (%s): %d labels at %d Hz", name, files.graph.name, len(labels), classifier.sample_rate
    )
    return classifier


def find_model_files(ref: str | None) -> OnnxModelFiles:
    """Locate the graph, config.json and preprocessor_config.json for ``ref`` (None: the default model)."""
    shown = ref if ref is not None else str(DEFAULT_MODEL_DIR)
    path = Path(ref).expanduser() if ref is not None else DEFAULT_MODEL_DIR
    if path.is_file():
        if path.suffix != ".onnx":
            raise StartupError(f"model {shown}: a file that is not an .onnx graph")
        directory, graph = path.parent, path
    elif path.is_dir():
        directory = path
        candidates = [path / FP32_FILE, path / INT8_FILE]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise StartupError(
                f"model {shown}: no {FP32_FILE} or {INT8_FILE}: "
                f"export it with python -m trainer export --onnx --model {shown}"
            )
        graph = found
    else:
        raise StartupError(f"model {shown}: no such model directory (the ONNX backend loads local ones only)")
    return OnnxModelFiles(
        directory=directory,
        graph=graph,
        config=read_model_json(directory / "config.json", shown),
        preprocessor=read_model_json(directory / "preprocessor_config.json", shown),
    )


def labels_from(config: dict[str, Any], *, shown: str) -> tuple[str, ...]:
    """Labels in index order from ``config.json``'s ``id2label``."""
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise StartupError(f"model {shown}: not an audio-classification model (config.json has no id2label)")
    try:
        by_index = {int(key): str(value) for key, value in id2label.items()}
    except ValueError:
        raise StartupError(f"model {shown}: config.json id2label keys must be integers") from None
    if sorted(by_index) != list(range(len(by_index))):
        raise StartupError(f"model {shown}: config.json id2label must number labels 0..{len(by_index) - 1}")
    return tuple(by_index[i] for i in range(len(by_index)))


def front_end_from(preprocessor: dict[str, Any], *, shown: str) -> FrontEnd:
    """The numpy front end matching ``preprocessor_config.json``."""
    kind = preprocessor.get("feature_extractor_type")
    try:
        rate = int(preprocessor.get("sampling_rate", 16000))
        padding = float(preprocessor.get("padding_value", 0.0))
        if kind == LOGMEL_EXTRACTOR:
            defaults = LogMelSpec()
            spec = LogMelSpec(
                sample_rate=rate,
                n_fft=int(preprocessor.get("n_fft", defaults.n_fft)),
                win_length=int(preprocessor.get("win_length", defaults.win_length)),
                hop_length=int(preprocessor.get("hop_length", defaults.hop_length)),
                n_mels=int(preprocessor.get("feature_size", defaults.n_mels)),
                f_min=float(preprocessor.get("f_min", defaults.f_min)),
                f_max=float(preprocessor.get("f_max", defaults.f_max)),
                top_db=float(preprocessor.get("top_db", defaults.top_db)),
            )
            return FrontEnd("logmel", rate, spec, normalise=False, min_samples=0, padding_value=padding)
        min_samples = round(float(preprocessor.get("min_seconds", 0.0)) * rate)
    except (TypeError, ValueError) as exc:
        raise StartupError(f"model {shown}: bad value in preprocessor_config.json ({exc})") from None
    if kind in WAVEFORM_EXTRACTORS:
        if int(preprocessor.get("feature_size", 1)) != 1:
            raise StartupError(f"model {shown}: waveform feature extractor must have feature_size 1")
        normalise_flag = bool(preprocessor.get("do_normalize", kind != "WaveformFeatureExtractor"))
        return FrontEnd("waveform", rate, None, normalise_flag, min_samples, padding_value=padding)
    known = ", ".join(sorted({LOGMEL_EXTRACTOR, *WAVEFORM_EXTRACTORS}))
    raise StartupError(f"model {shown}: the ONNX backend has no front end for {kind!r} (known: {known})")


def open_session(graph: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session; ``threads`` > 0 sets the intra-op thread count."""
    try:
        import onnxruntime as ort
    except ModuleNotFoundError:
        raise StartupError("the ONNX backend needs onnxruntime: pip install 'streamclf[onnx]'") from None
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads > 0:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only: stderr carries our logs
    # idle worker threads block instead of spinning: an idle daemon should cost ~0 % CPU
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(graph), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped exceptions (Fail, InvalidGraph, ...)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StartupError(f"model {graph}: cannot load the ONNX graph ({reason})") from None


def _numpy_dtype(onnx_type: str) -> type[np.generic]:
    table: dict[str, type[np.generic]] = {
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(float)": np.float32,
        "tensor(bool)": np.bool_,
    }
    return table.get(onnx_type, np.int64)
