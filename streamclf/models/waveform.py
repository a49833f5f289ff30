"""Waveform helpers shared by the transformers feature extractor and the ONNX backend (numpy only)."""

from __future__ import annotations

import numpy as np


def pad_to_min_length(clip: np.ndarray, min_samples: int) -> np.ndarray:
    """``clip`` (float32) centred in zeros when it is shorter than ``min_samples``, else unchanged."""
    samples = np.asarray(clip, dtype=np.float32).reshape(-1)
    missing = min_samples - len(samples)
    if missing <= 0:
        return samples
    return np.pad(samples, (missing // 2, missing - missing // 2))
