"""Fault injection, input overflow: audio keeps arriving faster than it is consumed.

Everything is real: the PulseAudio virtual microphone, PortAudio, the ring buffer, the
segmenter, the worker thread and a tiny transformers model. The only change is speed: the
classifier is wrapped so that every batch also sleeps (a model far too slow for the machine),
and in the second test the consumer of the ring buffer stops reading for a while (a capture
thread starved of CPU).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import psutil
import pytest
import soundfile as sf

from streamclf.audio import MicSource
from streamclf.bus import EventBus
from streamclf.classifier import TorchClassifier
from streamclf.config import VadSettings
from streamclf.events import Intent, UtteranceEvent
from streamclf.pipeline import Pipeline
from streamclf.segment import make_segmenter
from streamclf.worker import Worker
from tests.pulse import PulseServer, pulse_in_process, pulse_server
from tests.tiny_model import build_tiny_model
from trainer.streams import build_stream
from trainer.tts import Voice, synthesize

__all__ = ["pulse_in_process", "pulse_server"]  # fixtures used below
pytestmark = [pytest.mark.mic, pytest.mark.slow]

RATE = 16000
QUEUE_SIZE = 2
SLEEP_PER_BATCH_S = 1.5
VOICE = Voice("espeak-ng", "en-us", 170, 50)


class SleepingClassifier:
    """A real classifier that also sleeps on every batch: a model too slow for the stream."""

    def __init__(self, inner: TorchClassifier, sleep_s: float) -> None:
        self.inner = inner
        self.name = inner.name
        self.sample_rate = inner.sample_rate
        self.labels = inner.labels
        self.sleep_s = sleep_s
        self.calls = 0

    def classify(self, batch: Sequence[np.ndarray], top_k: int) -> list[tuple[Intent, ...]]:
        self.calls += 1
        time.sleep(self.sleep_s)
        return self.inner.classify(batch, top_k)

    def warm_up(self) -> None:
        self.inner.warm_up()


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> TorchClassifier:
    return TorchClassifier.load(str(build_tiny_model(tmp_path_factory.mktemp("model") / "tiny")))


def words_wav(folder: Path, texts: list[str], gap_s: float) -> Path:
    rng = np.random.default_rng(11)
    stream = build_stream(
        [synthesize(t, VOICE) for t in texts], texts, [gap_s] * (len(texts) - 1), rng, lead_s=0.3, tail_s=0.6
    )
    path = folder / f"{len(texts)}-words.wav"
    sf.write(path, stream.audio, RATE, subtype="PCM_16")
    return path


class Sampler(threading.Thread):
    """Samples the worker's queue length and this process's RSS until stopped."""

    def __init__(self, worker: Worker) -> None:
        super().__init__(daemon=True)
        self.worker = worker
        self.stop_flag = threading.Event()
        self.queue_lengths: list[int] = []
        self.rss: list[int] = []

    def run(self) -> None:
        process = psutil.Process()
        while not self.stop_flag.wait(0.02):
            self.queue_lengths.append(self.worker.queued)
            self.rss.append(process.memory_info().rss)


def test_slow_worker_drops_oldest_segments_stays_bounded_and_recovers(
    pulse_in_process: PulseServer, classifier: TorchClassifier, tmp_path: Path
) -> None:
    slow = SleepingClassifier(classifier, SLEEP_PER_BATCH_S)
    bus = EventBus()
    events = bus.subscribe("test", 10_000)
    worker = Worker(
        slow, bus.publish, source="mic", top_k=2, threshold=0.0, max_batch=1, queue_size=QUEUE_SIZE
    )
    mic = MicSource(device="pulse", sample_rate=RATE, ring_seconds=2.0)
    mic.open()
    pipeline = Pipeline(mic, make_segmenter(VadSettings(), RATE), worker, bus, speech_events=False)
    worker.start()
    pipeline.start()
    # warm up first: torch's first inference on 8 s of audio allocates its working memory
    classifier.classify([np.zeros(8 * RATE, np.float32)], 2)
    sampler = Sampler(worker)
    sampler.start()
    burst = words_wav(
        tmp_path, ["yes", "stop", "go", "left", "down", "seven", "up", "nine", "off", "zero"], 0.5
    )
    one_more = words_wav(tmp_path, ["marvin", "happy"], 0.6)
    try:
        assert mic.first_audio.wait(20)
        assert pulse_in_process.play(burst).wait(60) == 0
        # ten words in ~8 s against 1.5 s per segment: the queue fills, the oldest are dropped
        deadline = time.monotonic() + 60
        while pipeline.segments < 8 or not worker.wait_idle(0.1):
            assert time.monotonic() < deadline, pipeline.counters()
        busy = pipeline.counters()
        assert busy["dropped_segments"] > 0
        assert busy["classified"] + busy["dropped_segments"] + busy["errors"] == busy["segments"]
        assert max(sampler.queue_lengths) <= QUEUE_SIZE
        # the worker caught up: new speech is classified again, none dropped
        assert pulse_in_process.play(one_more).wait(60) == 0
        deadline = time.monotonic() + 60
        while pipeline.segments < busy["segments"] + 2 or not worker.wait_idle(0.1):
            assert time.monotonic() < deadline, pipeline.counters()
        after = pipeline.counters()
        assert after["classified"] == busy["classified"] + 2
        assert after["dropped_segments"] == busy["dropped_segments"]
    finally:
        sampler.stop_flag.set()
        pipeline.stop(timeout=5.0)
        mic.close()
    utterances = [e for e in events.drain() if isinstance(e, UtteranceEvent)]
    ids = [u.id for u in utterances]
    assert ids == sorted(ids) and len(ids) == after["classified"]
    # the newest segments survive: the last two are the two words after the catch-up
    assert ids[-2:] == [after["segments"] - 2, after["segments"] - 1]
    # memory flat: no growth with the backlog (10 MB covers allocator noise)
    assert max(sampler.rss) - sampler.rss[0] < 10 * 2**20


def test_stalled_reader_makes_the_ring_drop_the_oldest_audio_counted_and_capture_recovers(
    pulse_in_process: PulseServer, tmp_path: Path
) -> None:
    ring_s = 0.5
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)).astype(np.float32)
    wav = tmp_path / "tone-then-silence.wav"
    sf.write(wav, np.concatenate([tone, np.zeros(2 * RATE, np.float32)]), RATE, subtype="PCM_16")
    mic = MicSource(device="pulse", sample_rate=RATE, ring_seconds=ring_s)
    mic.open()
    try:
        assert mic.first_audio.wait(20)
        mic.read(0.05)  # drained: one read takes everything waiting
        before = mic.counters
        assert pulse_in_process.play(wav).wait(30) == 0  # the tone, then 2 s of silence
        time.sleep(0.5)  # the reader stalls the whole time: ~3.5 s of audio into a 0.5 s ring
        stalled = mic.counters
        kept = mic.read(0.1)
        assert kept is not None
        assert stalled["overflows"] > before["overflows"]
        lost = stalled["overflow_samples"] - before["overflow_samples"]
        arrived = stalled["frames"] - before["frames"]
        assert lost >= arrived - len(kept) - 0.1 * RATE  # what did not fit was counted
        assert len(kept) <= int(ring_s * RATE)
        # the newest half second is kept: silence; the tone (oldest) was dropped
        assert float(np.abs(kept).max()) < 0.01
        # recovery: reading again keeps up, no more overflows
        settled = mic.counters["overflows"]
        got = 0
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            block = mic.read(0.1)
            assert block is not None
            got += len(block)
        assert got > 0.5 * RATE
        assert mic.counters["overflows"] == settled
    finally:
        mic.close()
