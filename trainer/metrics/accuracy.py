"""Accuracy: the fraction of predictions that equal the reference label.

Kept in this repository so that ``evaluate.load(path_to_this_file)`` works with no hub access.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Accuracy = correct predictions / all predictions."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids.
Returns:
    accuracy (float): in [0, 1]; 0.0 for empty input.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions: list[int], references: list[int]) -> dict[str, float]:
        predicted = np.asarray(predictions, dtype=np.int64)
        truth = np.asarray(references, dtype=np.int64)
        if truth.size == 0:
            return {"accuracy": 0.0}
        return {"accuracy": float(np.mean(predicted == truth))}
