"""Pieces every architecture of the project shares: SpecAugment (random frame and band stripes zeroed
while training), masked averaging over time, and the transformers classification output.

Its own module, free of registration side effects, so every architecture's modeling module can import
it whatever is being imported first.
"""

from __future__ import annotations

from typing import Any

import torch


def spec_augment(features: torch.Tensor, config: Any) -> torch.Tensor:
    """Zero random frame and band stripes of (batch, frames, bands) features: ``config`` gives
    ``spec_time_masks``/``spec_time_width`` (frames) and ``spec_freq_masks``/``spec_freq_width`` (bands)."""
    batch, frames, bands = features.shape
    keep = torch.ones_like(features)
    device = features.device
    frame_index = torch.arange(frames, device=device)[None, :]
    band_index = torch.arange(bands, device=device)[None, :]
    for _ in range(config.spec_time_masks):
        width = torch.randint(0, config.spec_time_width + 1, (batch, 1), device=device)
        start = (torch.rand(batch, 1, device=device) * (frames - width).clamp(min=1)).long()
        stripe = (frame_index >= start) & (frame_index < start + width)
        keep = keep * (~stripe)[:, :, None]
    for _ in range(config.spec_freq_masks):
        width = torch.randint(0, config.spec_freq_width + 1, (batch, 1), device=device)
        start = (torch.rand(batch, 1, device=device) * (bands - width).clamp(min=1)).long()
        stripe = (band_index >= start) & (band_index < start + width)
        keep = keep * (~stripe)[:, None, :]
    return features * keep


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of (batch, channels, time) over time, counting only the steps where ``mask`` (batch, time)
    is 1 (all when None)."""
    if mask is None:
        return hidden.mean(dim=2)
    return (hidden * mask[:, None, :]).sum(dim=2) / mask.sum(dim=1, keepdim=True).clamp(min=1)


def classification_output(logits: torch.Tensor, labels: torch.Tensor | None, return_dict: bool | None) -> Any:
    """Logits and (with ``labels``) the cross-entropy loss, as transformers models return them."""
    from torch.nn import functional as F
    from transformers.modeling_outputs import SequenceClassifierOutput

    loss = F.cross_entropy(logits, labels) if labels is not None else None
    if return_dict is False:
        return (logits,) if loss is None else (loss, logits)
    return SequenceClassifierOutput(loss=loss, logits=logits)
