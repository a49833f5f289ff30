"""`streamclf classify`: the streaming pipeline run over files as fast as possible.

Each file goes through the same source → resampler → segmenter → worker path as `listen`
(or, with ``--no-vad``, is classified whole). A file that cannot be read gets one line on
stderr naming it and why; the others are still classified, and the exit code says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .audio.resample import StreamResampler
from .audio.sources import FileSource
from .bus import EventBus
from .classifier import Classifier
from .config import Settings
from .errors import InputError
from .pipeline import Pipeline
from .segment import Segment, make_segmenter
from .worker import Worker

log = logging.getLogger(__name__)

STOP_POLL_S = 0.1
"""How often, in seconds, a running file checks whether the run should stop."""


@dataclass(frozen=True)
class BatchResult:
    files: int
    failed: tuple[tuple[str, str], ...]  # (path, why)
    utterances: int


def _worker(classifier: Classifier, bus: EventBus, settings: Settings, name: str, path: str) -> Worker:
    m = settings.model
    return Worker(
        classifier,
        bus.publish,
        source=name,
        top_k=m.top_k,
        threshold=m.threshold,
        max_batch=m.max_batch,
        queue_size=m.queue_size,
        file=path,
    )


def _whole_file_segment(source: FileSource, sample_rate: int) -> Segment | None:
    """Read the whole file, resampled: one segment (``--no-vad``)."""
    resampler = StreamResampler(source.sample_rate, sample_rate)
    parts: list[np.ndarray] = []
    while (block := source.read(0.0)) is not None:
        parts.append(resampler.process(block))
    parts.append(resampler.flush())
    audio = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    if audio.size == 0:
        return None
    return Segment(0, 0, audio.size, sample_rate, audio, "flush", time.monotonic())


def _never() -> bool:
    return False


def classify_file(
    path: str,
    classifier: Classifier,
    bus: EventBus,
    settings: Settings,
    no_vad: bool,
    should_stop: Callable[[], bool] = _never,
) -> None:
    """Classify one file; raises InputError when it cannot be read as audio. ``should_stop``
    (polled) ends the file early, e.g. when the reader of the output went away."""
    source = FileSource(Path(path), speed=0.0)
    source.open()
    worker = _worker(classifier, bus, settings, source.name, path)
    worker.start()
    if no_vad:
        try:
            segment = _whole_file_segment(source, classifier.sample_rate)
        finally:
            source.close()
        if segment is not None:
            worker.submit(segment)
        worker.stop(drain=True, timeout=None)
        return
    segmenter = make_segmenter(settings.vad, classifier.sample_rate)
    pipeline = Pipeline(source, segmenter, worker, bus, speech_events=False)
    pipeline.start()
    while not pipeline.wait(STOP_POLL_S):
        if should_stop():
            pipeline.stop(timeout=STOP_POLL_S)
            return
    if pipeline.failed is not None:
        raise InputError(f"{path}: {pipeline.failed}")


def classify_files(
    paths: Sequence[str],
    classifier: Classifier,
    bus: EventBus,
    settings: Settings,
    *,
    no_vad: bool,
    on_error: Callable[[str, str], None],
    should_stop: Callable[[], bool] = _never,
) -> BatchResult:
    """Classify each file in turn; ``should_stop`` (polled) ends the run early."""
    failed: list[tuple[str, str]] = []
    before = bus.published
    settings = replace(settings, capture=replace(settings.capture, speed=0.0))
    for path in paths:
        if should_stop():
            break
        try:
            classify_file(path, classifier, bus, settings, no_vad, should_stop)
        except InputError as exc:
            failed.append((path, str(exc)))
            on_error(path, str(exc))
    return BatchResult(len(paths), tuple(failed), bus.published - before)
