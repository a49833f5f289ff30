"""Macro-averaged F1: the unweighted mean of per-class F1 over the classes that occur.

A class "occurs" when it appears among the references or the predictions (the usual
scikit-learn convention when no label list is given); pass ``labels`` to fix the class set.
Kept in this repository so that ``evaluate.load(path_to_this_file)`` works with no hub access.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Macro F1 = mean over classes of 2·precision·recall / (precision + recall)."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids.
    labels (list of int, optional): the classes to average over.
Returns:
    macro_f1 (float): in [0, 1]; a class with no true and no predicted positives scores 0.
"""


def per_class_f1(predicted: np.ndarray, truth: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """F1 for each class id in ``labels`` (0 where precision + recall is 0)."""
    scores = np.zeros(len(labels), dtype=np.float64)
    for i, label in enumerate(labels):
        true_pos = np.sum((predicted == label) & (truth == label))
        false_pos = np.sum((predicted == label) & (truth != label))
        false_neg = np.sum((predicted != label) & (truth == label))
        denominator = 2 * true_pos + false_pos + false_neg
        scores[i] = 2 * true_pos / denominator if denominator else 0.0
    return scores


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MacroF1(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(
        self, predictions: list[int], references: list[int], labels: list[int] | None = None
    ) -> dict[str, float]:
        predicted = np.asarray(predictions, dtype=np.int64)
        truth = np.asarray(references, dtype=np.int64)
        classes = np.asarray(labels, dtype=np.int64) if labels is not None else np.union1d(predicted, truth)
        if classes.size == 0:
            return {"macro_f1": 0.0}
        return {"macro_f1": float(np.mean(per_class_f1(predicted, truth, classes)))}
