"""End-of-speech latency: true end of a spoken word → its event, split into hangover and processing.

    .venv/bin/python -m benchmarks.end_of_speech [--quick] [--seconds S]

A generated stream (espeak-ng/flite voices, -32..-14 dBFS, pink noise at 25 dB SNR, gaps of
0.5-1.5 s) has known word boundaries (``trainer.streams``). For hangovers of 150, 240 and 300 ms
the segmenter is fed the stream in the daemon's capture blocks (``capture.block_ms``):

- *hangover part*: the stream position at which the segmenter closed the word's segment minus
  the true end of the word (audio time: what the speaker waits before the segment exists,
  including block quantisation);
- *processing*: each closed segment goes through a real :class:`streamclf.worker.Worker`
  (default model; torch and ONNX backends), whose ``latency_ms`` is close → event published;
- *total* = hangover part + processing, per word.

*Recall*: a word is found when exactly one segment overlaps it and that segment overlaps no
other word, so a hangover short enough to split a word, or long enough to merge two, loses it.
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
import time
from dataclasses import dataclass

import numpy as np

from benchmarks.common import command_stream, default_model_dir, emit, onnx_copy, percentile, table
from streamclf.classifier import Classifier
from streamclf.config import CaptureSettings, ModelSettings, VadSettings
from streamclf.events import Event, UtteranceEvent
from streamclf.segment import Segment, make_segmenter

HANGOVERS_MS = (150, 240, 300)


@dataclass(frozen=True)
class Closed:
    segment: Segment
    emitted_at: int
    """Stream sample count when the segmenter emitted the segment."""


def segment_stream(audio: np.ndarray, rate: int, settings: VadSettings, block: int) -> list[Closed]:
    segmenter = make_segmenter(settings, rate)
    closed: list[Closed] = []
    for pos in range(0, len(audio), block):
        for item in segmenter.push(audio[pos : pos + block]):
            if isinstance(item, Segment):
                closed.append(Closed(item, segmenter.samples_seen))
    closed += [Closed(i, segmenter.samples_seen) for i in segmenter.flush() if isinstance(i, Segment)]
    return closed


def found_words(closed: list[Closed], words, rate: int) -> dict[int, Closed]:
    """Word index → the one segment that found it (see the module docstring)."""
    found = {}
    for index, word in enumerate(words):
        start, end = round(word.start * rate), round(word.end * rate)
        overlapping = [c for c in closed if c.segment.start_sample < end and c.segment.end_sample > start]
        if len(overlapping) != 1:
            continue
        seg = overlapping[0].segment
        others = [w for j, w in enumerate(words) if j != index
                  and seg.start_sample < round(w.end * rate) and seg.end_sample > round(w.start * rate)]
        if not others:
            found[index] = overlapping[0]
    return found


def processing_ms(classifier: Classifier, segments: list[Segment]) -> list[float]:
    """``latency_ms`` of each segment through a real Worker, submitted one at a time as if live."""
    from streamclf.worker import Worker

    results: list[float] = []
    done = threading.Event()

    def publish(event: Event) -> None:
        if isinstance(event, UtteranceEvent):
            results.append(float(event.latency_ms))
            done.set()

    worker = Worker(classifier, publish, source="bench", top_k=3, threshold=0.5, max_batch=8, queue_size=32)
    worker.start()
    try:
        for segment in segments:
            done.clear()
            worker.submit(dataclasses.replace(segment, closed_at=time.monotonic()))
            done.wait(30.0)
            time.sleep(0.02)  # a live stream has silence between words: the worker is idle again
    finally:
        worker.stop(drain=True, timeout=30.0)
    return results


def classifiers() -> dict[str, Classifier]:
    from streamclf.classifier import load_classifier

    model_dir, _ = default_model_dir()
    chosen = {
        "torch": load_classifier(ModelSettings(model=str(model_dir), backend="torch", threads=1)),
        "onnx": load_classifier(ModelSettings(model=str(onnx_copy(model_dir, "default")), backend="onnx",
                                              threads=1)),
    }
    for classifier in chosen.values():
        classifier.warm_up()
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 30 s stream (smoke run)")
    parser.add_argument("--seconds", type=float, default=None, help="stream length (default 240)")
    args = parser.parse_args()
    seconds = args.seconds or (30.0 if args.quick else 240.0)
    stream = command_stream(seconds, seed=2, gap_range=(0.5, 1.5))
    rate = stream.sample_rate
    block = round(CaptureSettings().block_ms * rate / 1000)
    backends = classifiers()
    rows = []
    for hangover in HANGOVERS_MS:
        settings = dataclasses.replace(VadSettings(), hangover_ms=hangover)
        closed = segment_stream(stream.audio, rate, settings, block)
        found = found_words(closed, stream.words, rate)
        recall = len(found) / max(1, len(stream.words))
        waits = [(c.emitted_at / rate - stream.words[i].end) * 1000 for i, c in sorted(found.items())]
        segments = [c.segment for _, c in sorted(found.items())]
        for name, classifier in backends.items():
            processing = processing_ms(classifier, segments)
            totals = [w + p for w, p in zip(waits, processing, strict=False)]
            rows.append([
                hangover, f"{recall:.1%} ({len(found)}/{len(stream.words)})", name,
                f"{percentile(waits, 50):.0f} / {percentile(waits, 95):.0f}",
                f"{percentile(processing, 50):.1f} / {percentile(processing, 95):.1f}",
                f"{percentile(totals, 50):.0f} / {percentile(totals, 95):.0f}",
            ])
    header = ["hangover ms", "segment recall", "backend", "hangover part p50 / p95 ms",
              "processing p50 / p95 ms", "total p50 / p95 ms"]
    notes = [f"- {stream.duration:.0f} s stream, {len(stream.words)} words, {block}-sample capture blocks "
             f"({CaptureSettings().block_ms} ms), other VAD settings at their defaults, 1 inference thread."]
    emit("End-of-speech latency (true end of word → event)", table(header, rows), notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
