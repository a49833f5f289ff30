"""Speech-embedding classifier: Google's pretrained speech_embedding front end and a small trainable head,
as a transformers ``PreTrainedModel`` (loads with ``AutoModelForAudioClassification`` and ``pipeline``).

The front end is written here layer by layer and holds the pretrained weights in the model's own
safetensors: a log-mel spectrogram (a DFT as two strided convolutions, 32 mel bands, dB within
``top_db`` of the clip's loudest value, scaled as ``dB / 10 + 2``) and a CNN of 1x3 / 3x1
convolutions with leaky ReLU (slope 0.2, floor -0.4) and max pooling. The CNN is convolutional in
time: run over a whole clip it gives one 96-value embedding every 8 frames (80 ms), each exactly the
one the original model gives for the 76-frame window starting there. The head sees those embeddings.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from streamclf.models.spec_augment import classification_output, masked_mean, spec_augment
from streamclf.models.speech_embedding_configuration import SpeechEmbeddingConfig

LEAK = 0.2
"""Negative slope of every front-end activation."""
FLOOR = -0.4
"""Every front-end activation is held at or above this value."""

# (output channels, kernel (time, band), max pooling after it (time, band) or None); input: 1 channel
EMBEDDING_LAYERS: tuple[tuple[int, tuple[int, int], tuple[int, int] | None], ...] = (
    (24, (3, 3), None), (24, (1, 3), None), (24, (3, 1), (2, 2)),
    (48, (1, 3), None), (48, (3, 1), None), (48, (1, 3), None), (48, (3, 1), (1, 2)),
    (72, (1, 3), None), (72, (3, 1), None), (72, (1, 3), None), (72, (3, 1), (2, 2)),
    (96, (1, 3), None), (96, (3, 1), None), (96, (1, 3), None), (96, (3, 1), (1, 2)),
    (96, (1, 3), None), (96, (3, 1), None), (96, (1, 3), None), (96, (3, 1), (2, 2)),
)  # fmt: skip
TIME_STRIDE = 8
"""Frames between two embeddings (three 2x poolings in time)."""


class LogMelFrontEnd(nn.Module):
    """Waveform (batch, samples) → mel frames (batch, frames, bands); frames are not centred."""

    def __init__(self, config: SpeechEmbeddingConfig) -> None:
        super().__init__()
        bins = config.n_fft // 2 + 1
        self.hop_length = config.hop_length
        self.top_db = config.top_db
        self.dft_real = nn.Conv1d(1, bins, config.n_fft, stride=config.hop_length, bias=False)
        self.dft_imag = nn.Conv1d(1, bins, config.n_fft, stride=config.hop_length, bias=False)
        self.mel = nn.Parameter(torch.zeros(bins, config.num_mel_bins))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = waveform[:, None, :]
        power = self.dft_real(x) ** 2 + self.dft_imag(x) ** 2  # (batch, bins, frames)
        mel = torch.matmul(power.transpose(1, 2), self.mel)
        db = 10.0 * torch.log10(mel.clamp(min=1e-10))
        loudest = db.amax(dim=(1, 2), keepdim=True)
        return torch.maximum(db, loudest - self.top_db) / 10.0 + 2.0


class EmbeddingCnn(nn.Module):
    """Mel frames (batch, frames, bands) → embeddings (batch, positions, embedding_size)."""

    def __init__(self, config: SpeechEmbeddingConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for out_channels, kernel, pool in EMBEDDING_LAYERS:
            padding = (0, 1) if kernel[1] == 3 else (0, 0)
            layers.append(nn.Conv2d(channels, out_channels, kernel, padding=padding))
            layers.append(_LeakyFloor())
            if pool is not None:
                layers.append(nn.MaxPool2d(pool, stride=pool))
            channels = out_channels
        self.layers = nn.Sequential(*layers)
        self.project = nn.Conv2d(channels, config.embedding_size, (3, 1), bias=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        hidden = self.project(self.layers(frames[:, None, :, :]))  # (batch, embedding, positions, 1)
        return hidden[:, :, :, 0].transpose(1, 2)


class _LeakyFloor(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, LEAK).clamp(min=FLOOR)


class SpeechEmbeddingPreTrainedModel(PreTrainedModel):
    config_class = SpeechEmbeddingConfig
    base_model_prefix = "speech_embedding"
    main_input_name = "input_values"

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv1d) and module.out_channels != self.config.n_fft // 2 + 1:
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class SpeechEmbeddingForAudioClassification(SpeechEmbeddingPreTrainedModel):
    """Front end (frozen unless ``config.freeze_front_end`` is false) → 1-D conv head over the
    embeddings → masked mean and max over time → linear classifier. ``attention_mask`` (samples)
    marks each clip's real samples in a padded batch; embeddings whose window reaches past them are
    ignored, so a clip scores the same alone and in a batch."""

    def __init__(self, config: SpeechEmbeddingConfig) -> None:
        super().__init__(config)
        self.front_end = LogMelFrontEnd(config)
        self.embedding = EmbeddingCnn(config)
        head: list[nn.Module] = []
        width = config.embedding_size
        for _ in range(config.head_layers):
            head += [
                nn.Conv1d(width, config.head_channels, 3, padding=1, bias=False),
                nn.BatchNorm1d(config.head_channels),
                nn.ReLU(),
            ]
            width = config.head_channels
        self.head = nn.Sequential(*head)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(2 * width, config.num_labels or 2)
        self.post_init()
        self.set_front_end_trainable(not config.freeze_front_end)

    def set_front_end_trainable(self, trainable: bool) -> None:
        for module in (self.front_end, self.embedding):
            for parameter in module.parameters():
                parameter.requires_grad = trainable

    def embed(self, input_values: torch.Tensor) -> torch.Tensor:
        """(batch, samples) → (batch, positions, embedding_size), SpecAugment on the mel frames while
        training."""
        frames = self.front_end(input_values)
        if self.training:
            frames = spec_augment(frames, self.config)
        return self.embedding(frames)

    def _valid_positions(self, attention_mask: torch.Tensor, positions: int) -> torch.Tensor:
        """(batch, positions) 1.0 where the embedding's window lies within the clip's real samples."""
        config = self.config
        samples = attention_mask.sum(dim=1)
        frames = torch.div(samples - config.n_fft, config.hop_length, rounding_mode="floor") + 1
        count = torch.div(frames - config.window_frames, TIME_STRIDE, rounding_mode="floor") + 1
        index = torch.arange(positions, device=attention_mask.device)[None, :]
        return (index < count.clamp(min=1)[:, None]).to(torch.float32)

    def classify_embeddings(self, embeddings: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        """Logits from embeddings (batch, positions, embedding_size); ``valid`` (batch, positions) marks
        the positions that count (None: all)."""
        hidden = self.head(embeddings.transpose(1, 2))  # (batch, channels, positions)
        if valid is None:
            mean, peak = hidden.mean(dim=2), hidden.amax(dim=2)
        else:
            weights = valid.to(hidden.dtype)
            mean = masked_mean(hidden, weights)
            peak = hidden.masked_fill(weights[:, None, :] == 0, float("-inf")).amax(dim=2)
        return self.classifier(self.dropout(torch.cat([mean, peak], dim=1)))

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        embeddings: torch.Tensor | None = None,
        embedding_mask: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput | tuple[torch.Tensor, ...]:
        """Waveforms (``input_values``, ``attention_mask``), or front-end outputs computed before
        (``embeddings``, ``embedding_mask``: a frozen front end's cached outputs while training)."""
        if embeddings is None:
            if input_values is None:
                raise ValueError("give input_values or embeddings")
            embeddings = self.embed(input_values.float())
            if attention_mask is not None:
                embedding_mask = self._valid_positions(attention_mask, embeddings.shape[1])
        logits = self.classify_embeddings(embeddings.float(), embedding_mask)
        return classification_output(logits, labels, return_dict)


def _register() -> None:
    from transformers import AutoModelForAudioClassification

    AutoModelForAudioClassification.register(
        SpeechEmbeddingConfig, SpeechEmbeddingForAudioClassification, exist_ok=True
    )

    from streamclf.models import registration

    registration.register(finished=__name__)


_register()  # self-registration: importing this module is enough (see streamclf.models.registration)
