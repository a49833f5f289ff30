"""Which training clip to draw: every label an equal share, and within a label the sources by weight.

A label's share of the batches is the same for every label present. Within a label, source ``s``
gets ``weight_s × clips_s,label`` of it (clips of one source and label are drawn alike). With real
recordings weighted above synthetic speech, a word with thousands of real clips is drawn almost
only from them, and a word with a dozen from synthetic speech with its few real clips mixed in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def clip_weights(labels: np.ndarray, sources: np.ndarray, source_weights: Sequence[float]) -> np.ndarray:
    """Per-clip drawing weights (they sum to 1) for clips with these label and source indices."""
    labels = np.asarray(labels, dtype=np.int64)
    sources = np.asarray(sources, dtype=np.int64)
    weight_of_source = np.asarray(source_weights, dtype=np.float64)[sources]
    weights = np.zeros(len(labels), dtype=np.float64)
    present = np.unique(labels)
    for label in present:
        members = labels == label
        weights[members] = weight_of_source[members] / weight_of_source[members].sum()
    return weights / len(present)


def label_shares(weights: np.ndarray, labels: np.ndarray, num_labels: int) -> np.ndarray:
    """Expected share of the batches of each label under ``weights``."""
    return np.bincount(np.asarray(labels, dtype=np.int64), weights=weights, minlength=num_labels)


def source_shares(
    weights: np.ndarray, labels: np.ndarray, sources: np.ndarray, label: int
) -> dict[int, float]:
    """Within ``label``, each source's share of the draws."""
    members = np.asarray(labels) == label
    total = float(weights[members].sum())
    return {
        int(s): float(weights[members & (np.asarray(sources) == s)].sum()) / total
        for s in np.unique(np.asarray(sources)[members])
    }
