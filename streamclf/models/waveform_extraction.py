"""transformers feature extractor for models that take the raw waveform (``input_values``).

Each clip shorter than ``min_seconds`` is centred in zeros of that length (a model whose front end
needs a whole window always gets one); a batch is padded on the right with zeros and the attention
mask marks the samples of each padded clip. No normalisation: the model's front end sees the level
as it came. ``streamclf.onnx_backend`` does the same in numpy (:func:`pad_to_min_length`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature

from streamclf.models.feature_extraction import checked_batch, padded_batch
from streamclf.models.waveform import pad_to_min_length


class WaveformFeatureExtractor(SequenceFeatureExtractor):
    model_input_names = ["input_values", "attention_mask"]  # noqa: RUF012 - transformers API

    def __init__(
        self,
        feature_size: int = 1,
        sampling_rate: int = 16000,
        min_seconds: float = 1.0,
        padding_value: float = 0.0,
        return_attention_mask: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            feature_size=feature_size,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        self.min_seconds = min_seconds

    def __call__(
        self,
        raw_speech: np.ndarray | Sequence[np.ndarray] | Sequence[float],
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        padding: bool | str = True,
        max_length: int | None = None,
        truncation: bool = False,
        return_attention_mask: bool | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """``max_length`` is in samples and only applies with ``truncation``."""
        batch = checked_batch(self, raw_speech, sampling_rate, max_length if truncation else None)
        min_samples = round(self.min_seconds * self.sampling_rate)
        clips = [pad_to_min_length(clip, min_samples) for clip in batch]
        return padded_batch(self, "input_values", clips, padding, return_attention_mask, return_tensors)


def _register() -> None:
    from transformers import AutoFeatureExtractor

    from streamclf.models.speech_embedding_configuration import SpeechEmbeddingConfig

    AutoFeatureExtractor.register(SpeechEmbeddingConfig, WaveformFeatureExtractor, exist_ok=True)

    from streamclf.models import registration

    registration.register(finished=__name__)


_register()  # self-registration: importing this module is enough (see streamclf.models.registration)
