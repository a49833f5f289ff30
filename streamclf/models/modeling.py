"""A small log-mel CNN for spoken-command classification, as a transformers ``PreTrainedModel``."""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from streamclf.models.configuration import LogMelCnnConfig
from streamclf.models.spec_augment import classification_output, masked_mean, spec_augment


class ConvBlock(nn.Module):
    """3x3 conv, batch norm, ReLU, then 2x2 max pooling (halves bands and frames)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.pool = nn.MaxPool2d(kernel_size=2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(self.norm(self.conv(x))))


class LogMelCnnPreTrainedModel(PreTrainedModel):
    config_class = LogMelCnnConfig
    base_model_prefix = "logmel_cnn"
    main_input_name = "input_features"

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class LogMelCnnForAudioClassification(LogMelCnnPreTrainedModel):
    """Conv blocks over (bands, frames), bands flattened into channels, masked mean+max pooling over
    time, a linear classifier. Any number of frames works; padding frames are ignored via
    ``attention_mask``."""

    def __init__(self, config: LogMelCnnConfig) -> None:
        super().__init__(config)
        widths = [1, *config.channels]
        self.blocks = nn.Sequential(*(ConvBlock(a, b) for a, b in itertools.pairwise(widths)))
        bands = config.num_mel_bins
        for _ in config.channels:
            bands = -(-bands // 2)
        self.pooled_size = 2 * config.channels[-1] * bands
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(self.pooled_size, config.num_labels or 2)
        self.post_init()

    @staticmethod
    def _halve_mask(mask: torch.Tensor) -> torch.Tensor:
        """(batch, frames) mask after one 2x pooling (ceil): a pooled frame is real if either input is."""
        return F.max_pool1d(mask[:, None, :], kernel_size=2, ceil_mode=True)[:, 0, :]

    def forward(
        self,
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput | tuple[torch.Tensor, ...]:
        features = input_features
        mask = None if attention_mask is None else attention_mask.to(features.dtype)
        if mask is not None:
            features = features * mask[:, :, None]
        if self.training:
            features = spec_augment(features, self.config)
        hidden = features.transpose(1, 2)[:, None, :, :]  # (batch, 1, bands, frames)
        for block in self.blocks:
            hidden = block(hidden)
            if mask is not None:  # padded frames back to zero, exactly like the conv's own padding
                mask = self._halve_mask(mask)
                hidden = hidden * mask[:, None, None, :]
        batch, channels, bands, frames = hidden.shape
        hidden = hidden.reshape(batch, channels * bands, frames)
        if mask is None:
            mean = hidden.mean(dim=2)
            peak = hidden.amax(dim=2)
        else:
            real = mask[:, None, :] > 0
            mean = masked_mean(hidden, mask)
            peak = hidden.masked_fill(~real, float("-inf")).amax(dim=2)
        logits = self.classifier(self.dropout(torch.cat([mean, peak], dim=1)))
        return classification_output(logits, labels, return_dict)


def _register() -> None:
    from transformers import AutoModelForAudioClassification

    AutoModelForAudioClassification.register(LogMelCnnConfig, LogMelCnnForAudioClassification, exist_ok=True)

    from streamclf.models import registration

    registration.register(finished=__name__)


_register()  # self-registration: importing this module is enough (see streamclf.models.registration)
