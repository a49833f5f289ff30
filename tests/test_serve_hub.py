"""The stream hub: segments of different streams share the worker's batches, and each result goes back
to the stream it came from (real speech through real segmenters; a classifier that records batches)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np

from streamclf.bus import EventBus
from streamclf.config import VadSettings
from streamclf.events import Intent, UtteranceEvent
from streamclf.segment import make_segmenter
from streamclf.serve.hub import StreamHub
from streamclf.serve.pcm import AudioFormat
from streamclf.worker import Worker
from tests.audio import needs_espeak, spoken_words


class GatedClassifier:
    """Holds its first batch until released, so the other streams' segments queue up meanwhile."""

    name = "gated"
    sample_rate = 16000
    labels = ("yes", "no")

    def __init__(self) -> None:
        self.release = threading.Event()
        self.batches: list[int] = []

    def classify(self, batch: Sequence[np.ndarray], top_k: int) -> list[tuple[Intent, ...]]:
        self.release.wait(30)
        self.batches.append(len(batch))
        return [(Intent("yes", 0.9), Intent("no", 0.1))[:top_k] for _ in batch]

    def warm_up(self) -> None:
        pass


@needs_espeak
def test_streams_share_batches_and_get_their_own_results() -> None:
    words = spoken_words(("yes", "stop", "go", "left"))
    quiet = np.zeros(16000, dtype=np.float32)
    classifier = GatedClassifier()

    async def scenario() -> tuple[dict[str, list[UtteranceEvent]], dict[str, dict[str, int]]]:
        hub = StreamHub(EventBus(), lambda: make_segmenter(VadSettings(), 16000), max_streams=8,
                        stream_segments=2)
        worker = Worker(classifier, lambda _e: None, source="serve", top_k=2, threshold=0.5, max_batch=8,
                        queue_size=16, on_done=hub.on_done)
        hub.worker = worker
        worker.start()
        replies: dict[str, list[UtteranceEvent]] = {}
        streams = []
        for i, word in enumerate(words):
            stream = hub.attach(f"10.0.0.{i % 2}", lambda e, i=i: replies.setdefault(f"{i}", []).append(e))
            assert stream is not None
            fmt = AudioFormat(16000, 2, 1)
            stream.start(fmt)
            hub.emit(stream, stream.push(np.concatenate([quiet, word, quiet])[:, None], fmt))
            hub.emit(stream, stream.finish())
            streams.append(stream)
        classifier.release.set()
        for stream in streams:
            await asyncio.wait_for(hub.settled(stream), timeout=30)
        worker.stop()
        return replies, hub.stream_counters()

    replies, counters = asyncio.run(scenario())
    in_order = ["wyoming:10.0.0.0", "wyoming:10.0.0.1", "wyoming:10.0.0.0#2", "wyoming:10.0.0.1#2"]
    assert sorted(counters) == sorted(in_order)
    for i, name in enumerate(in_order):
        assert [e.source for e in replies[str(i)]] == [name]  # its own result, and only that
        assert counters[name]["classified"] == 1 and counters[name]["waiting"] == 0
    assert max(classifier.batches) >= 2 and sum(classifier.batches) == len(words)  # batched across streams
