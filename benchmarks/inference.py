"""Per-segment inference: streamclf's classifier path vs ``transformers.pipeline`` on the same audio.

    .venv/bin/python -m benchmarks.inference [--quick] [--models default,w2v-base]

For the default model and a wav2vec2-base-sized model (random weights, ``Wav2Vec2Config()``
defaults with a classification head: 94.6M parameters), 1 s, 2 s and 4 s segments of speech
and 1 and 2 threads, times one segment through

- ``streamclf torch``: the worker's call, ``TorchClassifier.classify([audio], top_k=3)``
  (feature extraction, forward pass, softmax and top-k);
- ``pipeline``: ``transformers.pipeline("audio-classification", model=DIR)(audio, top_k=3)``;
- ``onnx fp32`` / ``onnx int8``: the ONNX Runtime backend on the exported graphs.

The paths take turns within each repeat, so load from other processes hits them alike. Prints
milliseconds (median and p25-p75) and the speed-up of each path over the pipeline.
"""

from __future__ import annotations

import argparse
import functools
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    RATE,
    WORK_DIR,
    command_clips,
    default_model_dir,
    emit,
    onnx_copy,
    summarise,
    table,
)

LENGTHS_S = (1.0, 2.0, 4.0)
THREADS = (1, 2)
W2V_LABELS = 12


@dataclass(frozen=True)
class ModelUnderTest:
    key: str
    title: str
    directory: Path
    onnx_directory: Path
    parameters: int


def wav2vec2_base_dir() -> Path:
    """A wav2vec2-base-sized classifier with random weights (cached in build/bench)."""
    path = WORK_DIR / "wav2vec2-base-random"
    if (path / "model.safetensors").is_file():
        return path
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    torch.manual_seed(0)
    labels = [f"cmd{i}" for i in range(W2V_LABELS)]
    config = Wav2Vec2Config(id2label=dict(enumerate(labels)), label2id={k: i for i, k in enumerate(labels)})
    model = Wav2Vec2ForSequenceClassification(config).eval()
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=RATE, padding_value=0.0,
                                         do_normalize=True, return_attention_mask=False)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    extractor.save_pretrained(path)
    return path


def _parameters(directory: Path) -> int:
    from safetensors import safe_open

    total = 0
    with safe_open(str(directory / "model.safetensors"), framework="numpy") as weights:
        for name in weights.keys():  # noqa: SIM118 - safe_open has no __iter__
            total += int(np.prod(weights.get_slice(name).get_shape()))
    return total


def models(keys: list[str]) -> list[ModelUnderTest]:
    chosen = []
    if "default" in keys:
        directory, title = default_model_dir()
        chosen.append(ModelUnderTest("default", f"default ({title})", directory,
                                     onnx_copy(directory, "default"), _parameters(directory)))
    if "w2v-base" in keys:
        directory = wav2vec2_base_dir()
        chosen.append(ModelUnderTest("w2v-base", "wav2vec2-base-sized (random weights)", directory,
                                     onnx_copy(directory, "w2v-base"), _parameters(directory)))
    return chosen


def speech_segment(seconds: float) -> np.ndarray:
    """``seconds`` of real speech: command words back to back with short pauses."""
    clips = command_clips(48)
    parts, total, i = [], 0, 0
    while total < seconds * RATE:
        audio = clips[i % len(clips)][1]
        parts += [audio, np.zeros(RATE // 10, np.float32)]
        total += len(audio) + RATE // 10
        i += 1
    return np.concatenate(parts)[: round(seconds * RATE)].astype(np.float32)


@functools.lru_cache(maxsize=1)
def _blas_controller() -> Any:
    """threadpoolctl's controller (built once: building it scans the loaded libraries)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


Run = Callable[[np.ndarray], object]


def blas_limited(run: Run, blas_threads: int | None) -> Run:
    """``run`` with numpy's BLAS pool limited to ``blas_threads`` (None: numpy's default)."""
    if blas_threads is None:
        return run
    controller = _blas_controller()
    if controller is None:
        return run

    def limited(audio: np.ndarray) -> object:
        with controller.limit(limits=blas_threads, user_api="blas"):
            return run(audio)

    return limited


def paths_for(model: ModelUnderTest, threads: int,
              streamclf_blas_threads: int | None = 1) -> dict[str, Callable[[np.ndarray], object]]:
    import torch
    from transformers import pipeline

    from streamclf.classifier import TorchClassifier
    from streamclf.config import ModelSettings
    from streamclf.onnx_backend import load_onnx_classifier

    torch.set_num_threads(threads)
    torch_clf = TorchClassifier.load(str(model.directory))
    pipe = pipeline("audio-classification", model=str(model.directory), device="cpu")
    fp32 = load_onnx_classifier(ModelSettings(model=str(model.onnx_directory), backend="onnx",
                                              threads=threads))
    int8 = load_onnx_classifier(ModelSettings(model=str(model.onnx_directory / "model.int8.onnx"),
                                              backend="onnx", threads=threads))
    blas = streamclf_blas_threads
    return {
        "streamclf torch": blas_limited(lambda audio: torch_clf.classify([audio], top_k=3), blas),
        "pipeline": lambda audio: pipe(audio.copy(), top_k=3),
        "onnx fp32": blas_limited(lambda audio: fp32.classify([audio], top_k=3), blas),
        "onnx int8": blas_limited(lambda audio: int8.classify([audio], top_k=3), blas),
    }


def log_mel_rows(repeats: int) -> list[list[object]]:
    """The numpy log-mel front end of a 1 s segment with numpy's default BLAS pool and with 1 thread."""
    from streamclf.models.logmel import log_mel

    audio = speech_segment(1.0)
    plain = blas_limited(log_mel, None)
    single = blas_limited(log_mel, 1)
    times = measure({"default": plain, "1": single}, audio, repeats, warm=5)
    base = summarise(times["default"]).median
    return [[f"BLAS threads: {name}", summarise(v).show(2), f"{base / summarise(v).median:.1f}×"]
            for name, v in times.items()]


def measure(paths: dict[str, Callable[[np.ndarray], object]], audio: np.ndarray, repeats: int,
            warm: int = 2) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in paths}
    for index in range(warm + repeats):
        for name, run in paths.items():
            started = time.perf_counter()
            run(audio)
            elapsed = (time.perf_counter() - started) * 1000
            if index >= warm:
                times[name].append(elapsed)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats, 1 s only (smoke run)")
    parser.add_argument("--models", default="default,w2v-base")
    parser.add_argument("--streamclf-blas-threads", type=int, default=1,
                        help="numpy BLAS threads for the streamclf paths (0: numpy's default)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    lengths = (1.0,) if args.quick else LENGTHS_S
    rows = []
    for model in models(args.models.split(",")):
        repeats = (5 if args.quick else 40) if model.key == "default" else (2 if args.quick else 8)
        for threads in THREADS:
            paths = paths_for(model, threads, args.streamclf_blas_threads or None)
            for seconds in lengths:
                times = measure(paths, speech_segment(seconds), repeats)
                base = summarise(times["pipeline"]).median
                for name, values in times.items():
                    s = summarise(values)
                    ratio = "1.0×" if name == "pipeline" else f"{base / s.median:.1f}×"
                    rows.append([model.key, f"{seconds:g} s", threads, name, s.show(2), ratio, s.count])
    header = ["model", "segment", "threads", "path", "ms per segment, median (p25–p75)",
              "speed-up vs pipeline", "n"]
    notes = [f"- {m.key}: {m.title}, {m.parameters / 1e6:.2f}M parameters, {m.directory}"
             for m in models(args.models.split(","))]
    blas = args.streamclf_blas_threads or "numpy's default"
    notes.append(f"- BLAS: the streamclf paths run with numpy's BLAS pool at {blas} thread(s), the pipeline "
                 "with numpy's default pool (OpenBLAS: one thread per core). The numpy log-mel front end:")
    notes.append(table(["1 s log-mel features", "ms, median (p25–p75)", "speed-up"],
                       log_mel_rows(50 if args.quick else 300)))
    emit("Per-segment inference (streamclf vs transformers pipeline)", table(header, rows), notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
