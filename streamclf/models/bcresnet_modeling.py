"""BC-ResNet as a transformers ``PreTrainedModel`` over the log-mel features (see
:mod:`streamclf.models.bcresnet_configuration`).

Input ``input_features`` (batch, frames, bands) with ``attention_mask`` (batch, frames), as the
log-mel CNN. Padded frames are zeroed before every temporal convolution and left out of the final
average, so a clip scores the same alone and in a padded batch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from streamclf.models.bcresnet_configuration import BcResNetConfig
from streamclf.models.spec_augment import classification_output, masked_mean, spec_augment

STAGE_CHANNELS = (8, 12, 16, 20)
"""Channels of each stage, times the width τ."""
STAGE_FREQ_STRIDE = (1, 2, 2, 1)
"""Frequency stride of each stage's first block."""
STAGE_DILATION = (1, 2, 4, 8)
"""Time dilation of each stage's temporal convolutions."""


class SubSpectralNorm(nn.Module):
    """Batch norm with separate statistics for each of ``sub_bands`` frequency groups."""

    def __init__(self, channels: int, sub_bands: int) -> None:
        super().__init__()
        self.sub_bands = sub_bands
        self.norm = nn.BatchNorm2d(channels * sub_bands)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, bands, frames = x.shape
        if bands % self.sub_bands:
            return self.norm(x.repeat(1, self.sub_bands, 1, 1))[:, :channels]
        grouped = x.reshape(batch, channels * self.sub_bands, bands // self.sub_bands, frames)
        return self.norm(grouped).reshape(batch, channels, bands, frames)


class BroadcastBlock(nn.Module):
    """One BC-ResBlock: frequency-depthwise conv (f2), then a temporal branch (f1) on the band
    average, broadcast back and added; an identity shortcut unless the block changes the shape."""

    def __init__(self, config: BcResNetConfig, in_ch: int, out_ch: int, stride: int, dilation: int) -> None:
        super().__init__()
        self.transition = in_ch != out_ch or stride != 1
        self.expand = (
            nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU())
            if in_ch != out_ch
            else nn.Identity()
        )
        self.frequency = nn.Sequential(
            nn.Conv2d(out_ch, out_ch, (3, 1), stride=(stride, 1), padding=(1, 0), groups=out_ch, bias=False),
            SubSpectralNorm(out_ch, config.sub_bands),
        )
        self.temporal = nn.Conv1d(out_ch, out_ch, 3, padding=dilation, dilation=dilation, groups=out_ch,
                                  bias=False)  # fmt: skip
        self.temporal_norm = nn.BatchNorm1d(out_ch)
        self.pointwise = nn.Conv1d(out_ch, out_ch, 1, bias=False)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        shortcut = x
        x = self.frequency(self.expand(x))
        average = x.mean(dim=2)  # (batch, channels, frames)
        if mask is not None:
            average = average * mask[:, None, :]
        branch = self.dropout(self.pointwise(F.silu(self.temporal_norm(self.temporal(average)))))
        out = x + branch[:, :, None, :]
        if not self.transition:
            out = out + shortcut
        return F.relu(out)


class BcResNetPreTrainedModel(PreTrainedModel):
    config_class = BcResNetConfig
    base_model_prefix = "bc_resnet"
    main_input_name = "input_features"

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class BcResNetForAudioClassification(BcResNetPreTrainedModel):
    def __init__(self, config: BcResNetConfig) -> None:
        super().__init__(config)
        tau = config.width
        first = 16 * tau
        self.stem = nn.Sequential(
            nn.Conv2d(1, first, 5, stride=(2, 1), padding=2, bias=False), nn.BatchNorm2d(first), nn.ReLU()
        )
        blocks: list[BroadcastBlock] = []
        channels = first
        for stage, repeats in enumerate(config.blocks):
            out_ch = STAGE_CHANNELS[stage] * tau
            for index in range(repeats):
                stride = STAGE_FREQ_STRIDE[stage] if index == 0 else 1
                blocks.append(BroadcastBlock(config, channels, out_ch, stride, STAGE_DILATION[stage]))
                channels = out_ch
        self.blocks = nn.ModuleList(blocks)
        bands = -(-config.num_mel_bins // 2)
        for stride in STAGE_FREQ_STRIDE:
            bands = -(-bands // stride)
        self.head = nn.Sequential(
            nn.Conv2d(channels, channels, (bands, 5), padding=(0, 2), groups=channels, bias=False),
            nn.Conv2d(channels, 32 * tau, 1, bias=False),
            nn.BatchNorm2d(32 * tau),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(32 * tau, config.num_labels or 2)
        self.post_init()

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
        hidden = self.stem(features.transpose(1, 2)[:, None, :, :])  # (batch, channels, bands, frames)
        for block in self.blocks:
            if mask is not None:
                hidden = hidden * mask[:, None, None, :]
            hidden = block(hidden, mask)
        if mask is not None:
            hidden = hidden * mask[:, None, None, :]
        hidden = self.head(hidden)[:, :, 0, :]  # (batch, channels, frames)
        logits = self.classifier(masked_mean(hidden, mask))
        return classification_output(logits, labels, return_dict)


def _register() -> None:
    from transformers import AutoModelForAudioClassification

    AutoModelForAudioClassification.register(BcResNetConfig, BcResNetForAudioClassification, exist_ok=True)

    from streamclf.models import registration

    registration.register(finished=__name__)


_register()  # self-registration: importing this module is enough (see streamclf.models.registration)
