"""Configuration of the project's BC-ResNet (``model_type = "streamclf-bc-resnet"``).

BC-ResNet (Kim et al., "Broadcasted Residual Learning for Efficient Keyword Spotting", Interspeech
2021) over the project's log-mel features: frequency-depthwise convolutions per band, a temporal
convolution on the band average broadcast back over the bands. Written here from the paper's
description; ``width`` is its τ.
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

MODEL_TYPE = "streamclf-bc-resnet"


class BcResNetConfig(PretrainedConfig):
    """``width``: channel multiplier τ (stages have 8τ, 12τ, 16τ, 20τ channels); ``blocks``: blocks
    per stage; ``sub_bands``: SubSpectralNorm groups; ``num_mel_bins``: mel bands of the input;
    ``dropout``: in each block's temporal branch; ``spec_*``: SpecAugment masks while training."""

    model_type = MODEL_TYPE

    def __init__(
        self,
        num_mel_bins: int = 40,
        width: int = 3,
        blocks: list[int] | tuple[int, ...] = (2, 2, 4, 4),
        sub_bands: int = 5,
        dropout: float = 0.1,
        spec_time_masks: int = 2,
        spec_time_width: int = 12,
        spec_freq_masks: int = 2,
        spec_freq_width: int = 6,
        **kwargs: Any,
    ) -> None:
        self.num_mel_bins = num_mel_bins
        self.width = width
        self.blocks = list(blocks)
        self.sub_bands = sub_bands
        self.dropout = dropout
        self.spec_time_masks = spec_time_masks
        self.spec_time_width = spec_time_width
        self.spec_freq_masks = spec_freq_masks
        self.spec_freq_width = spec_freq_width
        super().__init__(**kwargs)


def _register() -> None:
    from transformers import AutoConfig, AutoFeatureExtractor

    from streamclf.models import registration
    from streamclf.models.feature_extraction import LogMelFeatureExtractor

    AutoConfig.register(MODEL_TYPE, BcResNetConfig, exist_ok=True)
    AutoFeatureExtractor.register(BcResNetConfig, LogMelFeatureExtractor, exist_ok=True)  # same front end
    registration.register(finished=__name__)


_register()  # self-registration: importing this module is enough (see streamclf.models.registration)
