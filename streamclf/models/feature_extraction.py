"""transformers feature extractor wrapping the numpy log-mel front end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature

from streamclf.models.logmel import LogMelSpec, log_mel


class LogMelFeatureExtractor(SequenceFeatureExtractor):
    """Turns mono float audio into ``input_features`` (batch, frames, n_mels) plus ``attention_mask``.

    Each utterance is normalised on its own; a batch is padded with zeros (the normalised mean)
    and the mask tells the model which frames are real.
    """

    model_input_names = ["input_features", "attention_mask"]  # noqa: RUF012 - transformers API

    def __init__(
        self,
        feature_size: int = 40,
        sampling_rate: int = 16000,
        n_fft: int = 512,
        win_length: int = 400,
        hop_length: int = 160,
        f_min: float = 20.0,
        f_max: float = 8000.0,
        top_db: float = 80.0,
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
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.f_min = f_min
        self.f_max = f_max
        self.top_db = top_db

    @property
    def spec(self) -> LogMelSpec:
        return LogMelSpec(
            sample_rate=self.sampling_rate,
            n_fft=self.n_fft,
            win_length=self.win_length,
            hop_length=self.hop_length,
            n_mels=self.feature_size,
            f_min=self.f_min,
            f_max=self.f_max,
            top_db=self.top_db,
        )

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
        """``max_length`` is in samples (as for waveform extractors) and only applies with ``truncation``."""
        batch = checked_batch(self, raw_speech, sampling_rate, max_length if truncation else None)
        spec = self.spec
        features = [log_mel(clip, spec) for clip in batch]
        return padded_batch(self, "input_features", features, padding, return_attention_mask, return_tensors)


def checked_batch(
    extractor: SequenceFeatureExtractor,
    raw_speech: np.ndarray | Sequence[np.ndarray] | Sequence[float],
    sampling_rate: int | None,
    max_samples: int | None,
) -> list[np.ndarray]:
    """The clips of ``raw_speech`` as float32 arrays, cut to ``max_samples``; audio at another rate than
    the extractor's is a ValueError."""
    if sampling_rate is not None and sampling_rate != extractor.sampling_rate:
        raise ValueError(
            f"audio at {sampling_rate} Hz given to a feature extractor for {extractor.sampling_rate} Hz; "
            "resample first"
        )
    batch = _as_batch(raw_speech)
    return batch if max_samples is None else [clip[:max_samples] for clip in batch]


def padded_batch(
    extractor: SequenceFeatureExtractor,
    name: str,
    items: list[np.ndarray],
    padding: bool | str,
    return_attention_mask: bool | None,
    return_tensors: str | None,
) -> BatchFeature:
    """``items`` under ``name``, padded to the longest (``padding=True``) with the attention mask."""
    want_mask = extractor.return_attention_mask if return_attention_mask is None else return_attention_mask
    return extractor.pad(
        BatchFeature({name: items}),
        padding="longest" if padding is True else padding,
        return_attention_mask=want_mask,
        return_tensors=return_tensors,
    )


def _as_batch(raw_speech: np.ndarray | Sequence[np.ndarray] | Sequence[float]) -> list[np.ndarray]:
    if isinstance(raw_speech, np.ndarray):
        if raw_speech.ndim == 1:
            return [raw_speech.astype(np.float32)]
        if raw_speech.ndim == 2:
            return [row.astype(np.float32) for row in raw_speech]
        raise ValueError(f"expected mono audio (1-D) or a batch (2-D), got shape {raw_speech.shape}")
    items = list(raw_speech)
    if items and np.isscalar(items[0]):
        return [np.asarray(items, dtype=np.float32)]
    return [np.asarray(item, dtype=np.float32).reshape(-1) for item in items]


def _register() -> None:
    from transformers import AutoFeatureExtractor

    from streamclf.models.configuration import LogMelCnnConfig

    AutoFeatureExtractor.register(LogMelCnnConfig, LogMelFeatureExtractor, exist_ok=True)

    from streamclf.models import registration

    registration.register(finished=__name__)


_register()  # self-registration: importing this module is enough (see streamclf.models.registration)
