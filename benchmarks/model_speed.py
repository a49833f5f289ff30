"""How long the log-mel CNN takes to classify one 1 s segment on one CPU thread.

Usage: python -m benchmarks.model_speed [--model DIR] [--repeats N]
Without --model it uses the bundled model, or a randomly initialised one from
configs/models/logmel-cnn when the bundled model is absent. Prints milliseconds per segment
(feature extraction and model separately, median over the repeats).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core: numpy's BLAS must not spin up a thread pool
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

import streamclf
from streamclf.models import DEFAULT_MODEL_DIR

REPO = Path(__file__).resolve().parents[1]
BASE_CONFIG = REPO / "configs" / "models" / "logmel-cnn"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()

    import torch
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification

    torch.set_num_threads(1)
    model_dir = args.model or (DEFAULT_MODEL_DIR if (DEFAULT_MODEL_DIR / "config.json").exists() else None)
    if model_dir is not None:
        model = AutoModelForAudioClassification.from_pretrained(model_dir)
        extractor = AutoFeatureExtractor.from_pretrained(model_dir)
    else:
        model = AutoModelForAudioClassification.from_config(
            AutoConfig.from_pretrained(BASE_CONFIG, num_labels=36)
        )
        extractor = AutoFeatureExtractor.from_pretrained(BASE_CONFIG)
    model.eval()
    audio = (np.random.default_rng(0).standard_normal(16000) * 0.05).astype(np.float32)

    feature_ms: list[float] = []
    model_ms: list[float] = []
    with torch.inference_mode():
        for index in range(args.repeats + 10):
            started = time.perf_counter()
            inputs = extractor(audio, sampling_rate=16000, return_tensors="pt")
            extracted = time.perf_counter()
            model(**inputs)
            finished = time.perf_counter()
            if index >= 10:
                feature_ms.append((extracted - started) * 1000)
                model_ms.append((finished - extracted) * 1000)
    params = sum(p.numel() for p in model.parameters())
    feat, net = statistics.median(feature_ms), statistics.median(model_ms)
    source = model_dir or f"random init from {BASE_CONFIG}"
    print(f"model: {source} ({params} parameters, streamclf {streamclf.__version__})")
    print(
        f"1 s segment, 1 thread, median of {args.repeats}: "
        f"features {feat:.2f} ms + model {net:.2f} ms = {feat + net:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
