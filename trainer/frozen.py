"""A head over a frozen pretrained front end, trained on the front end's outputs computed once.

A frozen front end gives the same output for the same audio every epoch, and it costs far more than
the small head on top (the speech-embedding front end: about 10 ms per clip on one core, the head
well under 1 ms). So ``trainer fit --front-end-views N`` runs it once over N augmented views of
every training clip (view 0 as it is, the others through ``trainer.augment.train_time_augment``,
each with its own seed) and once over the held-out clips, keeps the outputs in memory, and trains
the head on them for as many epochs as asked. The saved model is the whole model: it takes
waveforms like any other.

A model supports this when it has ``embed(input_values)``, ``classify_embeddings(...)`` and a frozen
front end (``config.freeze_front_end``), and its ``forward`` accepts ``embeddings`` and
``embedding_mask`` (see ``SpeechEmbeddingForAudioClassification`` in
:mod:`streamclf.models.speech_embedding_modeling`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .data import SOURCE, WAVEFORM

log = logging.getLogger(__name__)

EMBEDDINGS = "embeddings"
BATCH = 32
"""Clips run through the front end at once."""

Augment = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def supports(model: Any) -> bool:
    return (
        hasattr(model, "embed")
        and hasattr(model, "classify_embeddings")
        and bool(getattr(model.config, "freeze_front_end", False))
    )


class CachedClips(torch.utils.data.Dataset):
    """Front-end outputs (positions × size, float16) with their labels and sources."""

    def __init__(self, embeddings: list[np.ndarray], labels: np.ndarray, sources: np.ndarray, column: str):
        self.embeddings = embeddings
        self.labels = labels
        self.sources = sources
        self.column = column

    def __len__(self) -> int:
        return len(self.embeddings)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {EMBEDDINGS: self.embeddings[index], self.column: int(self.labels[index])}


@dataclass(frozen=True)
class EmbeddingCollator:
    """Pads a batch of cached outputs to its longest and marks the real positions."""

    label_column: str

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(e[EMBEDDINGS]) for e in examples)
        size = examples[0][EMBEDDINGS].shape[1]
        batch = np.zeros((len(examples), longest, size), dtype=np.float32)
        mask = np.zeros((len(examples), longest), dtype=np.float32)
        for row, example in enumerate(examples):
            count = len(example[EMBEDDINGS])
            batch[row, :count] = example[EMBEDDINGS]
            mask[row, :count] = 1.0
        return {
            EMBEDDINGS: torch.from_numpy(batch),
            "embedding_mask": torch.from_numpy(mask),
            "labels": torch.tensor([int(e[self.label_column]) for e in examples], dtype=torch.long),
        }


def _embed_batch(model: Any, extractor: Any, waves: list[np.ndarray]) -> list[np.ndarray]:
    inputs = extractor(waves, sampling_rate=extractor.sampling_rate, padding=True, return_tensors="pt")
    embeddings = model.embed(inputs["input_values"].float())
    valid = model._valid_positions(inputs["attention_mask"], embeddings.shape[1])
    counts = valid.sum(dim=1).long().tolist()
    return [embeddings[i, : counts[i]].numpy().astype(np.float16) for i in range(len(waves))]


def cache(
    model: Any,
    extractor: Any,
    clips: Any,
    label_column: str,
    max_samples: int,
    views: int = 1,
    augment: Augment | None = None,
    seed: int = 0,
) -> CachedClips:
    """Run the frozen front end over ``views`` views of every clip (view 0 unchanged)."""
    rate = int(extractor.sampling_rate)
    labels = np.asarray(clips[label_column], dtype=np.int64)
    sources = (
        np.asarray(clips[SOURCE], dtype=np.int64) if SOURCE in clips.column_names else np.zeros_like(labels)
    )
    reader = clips.with_format("numpy", columns=[WAVEFORM])
    embeddings: list[np.ndarray] = []
    started = time.monotonic()
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, os.cpu_count() or 1))  # nothing else runs while the cache is built
    model.eval()
    try:
        with torch.no_grad():
            for view in range(views):
                for start in range(0, len(labels), BATCH):
                    waves = []
                    for index in range(start, min(start + BATCH, len(labels))):
                        wave = np.asarray(reader[index][WAVEFORM], dtype=np.float32)[:max_samples]
                        if view > 0 and augment is not None:
                            wave = augment(wave, rate, np.random.default_rng((seed, index, view)))
                        waves.append(wave)
                    embeddings.extend(_embed_batch(model, extractor, waves))
                log.info("front end: view %d of %d done (%d clips, %.0f s so far)",
                         view + 1, views, len(labels), time.monotonic() - started)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return CachedClips(embeddings, np.tile(labels, views), np.tile(sources, views), label_column)
