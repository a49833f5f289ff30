"""Configuration of the project's log-mel CNN (``model_type = "streamclf-logmel-cnn"``)."""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

MODEL_TYPE = "streamclf-logmel-cnn"


class LogMelCnnConfig(PretrainedConfig):
    """Hyper-parameters of :class:`~streamclf.models.modeling.LogMelCnnForAudioClassification`.

    ``channels``: output channels of each conv block (each block halves frequency and time);
    ``num_mel_bins``: mel bands of the input features; ``dropout``: before the classifier;
    ``spec_*``: SpecAugment masks applied in ``forward`` while training (counts and maximum widths
    in frames / bands).
    """

    model_type = MODEL_TYPE

    def __init__(
        self,
        num_mel_bins: int = 40,
        channels: list[int] | tuple[int, ...] = (16, 32, 64, 128),
        dropout: float = 0.2,
        spec_time_masks: int = 2,
        spec_time_width: int = 12,
        spec_freq_masks: int = 2,
        spec_freq_width: int = 6,
        **kwargs: Any,
    ) -> None:
        self.num_mel_bins = num_mel_bins
        self.channels = list(channels)
        self.dropout = dropout
        self.spec_time_masks = spec_time_masks
        self.spec_time_width = spec_time_width
        self.spec_freq_masks = spec_freq_masks
        self.spec_freq_width = spec_freq_width
        super().__init__(**kwargs)


def _register() -> None:
    from transformers import AutoConfig

    from streamclf.models import registration

    AutoConfig.register(MODEL_TYPE, LogMelCnnConfig, exist_ok=True)
    registration.register(finished=__name__)


_register()  # self-registration: importing this module is enough (see streamclf.models.registration)
