"""The classifier worker with a real tiny model: batching, drop-oldest, failures, threshold."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from streamclf.bus import EventBus, Subscription
from streamclf.classifier import Classifier, TorchClassifier
from streamclf.events import ErrorEvent, Event, Intent, UtteranceEvent
from streamclf.segment import Segment
from streamclf.worker import Worker, group_by_length
from tests.tiny_model import build_tiny_model, spoken_word

RATE = 16000


class Recording:
    """A real classifier that records each batch's size and fails on inputs of one length."""

    def __init__(self, inner: Classifier, fail_on_length: int | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.sample_rate = inner.sample_rate
        self.labels = inner.labels
        self.fail_on_length = fail_on_length
        self.batch_sizes: list[int] = []

    def classify(self, batch: Sequence[np.ndarray], top_k: int) -> list[tuple[Intent, ...]]:
        self.batch_sizes.append(len(batch))
        if any(len(x) == self.fail_on_length for x in batch):
            raise ValueError("this segment breaks the model")
        return self.inner.classify(batch, top_k)

    def warm_up(self) -> None:
        self.inner.warm_up()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TorchClassifier:
    return TorchClassifier.load(str(build_tiny_model(tmp_path_factory.mktemp("m") / "tiny")))


@pytest.fixture(scope="module")
def words() -> list[np.ndarray]:
    return [spoken_word(w) for w in ("yes", "no", "stop", "go", "left", "right", "up")]


def segment(seg_id: int, audio: np.ndarray, start_s: float = 0.0, rate: int = RATE) -> Segment:
    start = round(start_s * rate)
    return Segment(
        id=seg_id,
        start_sample=start,
        end_sample=start + len(audio),
        sample_rate=rate,
        audio=audio,
        reason="silence",
        closed_at=time.monotonic(),
    )


def make_worker(clf: Classifier, bus: EventBus, **options: float) -> Worker:
    settings: dict[str, float] = {"top_k": 3, "threshold": 0.0, "max_batch": 8, "queue_size": 32, **options}
    return Worker(
        clf,
        bus.publish,
        source="test",
        top_k=int(settings["top_k"]),
        threshold=settings["threshold"],
        max_batch=int(settings["max_batch"]),
        queue_size=int(settings["queue_size"]),
        file="words.wav",
    )


def run_queued(worker: Worker, segments: Sequence[Segment], sub: Subscription) -> list[Event]:
    """Queue everything before the thread starts (so it all waits), then drain."""
    for s in segments:
        worker.submit(s)
    worker.start()
    assert worker.stop(drain=True, timeout=60)
    return sub.drain()


def utterances(events: list[Event]) -> list[UtteranceEvent]:
    return [e for e in events if isinstance(e, UtteranceEvent)]


def test_group_by_length_limits_padding() -> None:
    lengths = [1000, 16000, 1200, 20000, 1400, 60000]
    segs = [segment(i, np.zeros(n, np.float32)) for i, n in enumerate(lengths)]
    groups = group_by_length(segs, ratio=1.5)
    assert sorted(i for g in groups for i in g) == list(range(6))
    for g in groups:
        lengths = [len(segs[i].audio) for i in g]
        assert max(lengths) <= 1.5 * min(lengths)
    assert len(groups) == 3


def test_waiting_segments_are_classified_in_batches(tiny: TorchClassifier, words: list[np.ndarray]) -> None:
    bus = EventBus()
    sub = bus.subscribe("t")
    clf = Recording(tiny)
    same_length = [np.resize(w, RATE) for w in words]
    worker = make_worker(clf, bus, max_batch=3)
    events = run_queued(worker, [segment(i, a, i * 2.0) for i, a in enumerate(same_length)], sub)
    assert clf.batch_sizes == [3, 3, 1]
    assert worker.batches == 3 and worker.classified == 7
    got = utterances(events)
    assert [u.id for u in got] == list(range(7))
    for u, audio in zip(got, same_length, strict=True):
        (alone,) = tiny.classify([audio], top_k=3)
        assert [i.label for i in u.intents] == [i.label for i in alone]
        assert u.start == pytest.approx(u.id * 2.0) and u.end == pytest.approx(u.id * 2.0 + 1.0)
        assert u.latency_ms >= 0 and u.model == "tiny" and u.source == "test" and u.file == "words.wav"


def test_a_lone_segment_is_not_held_back_for_a_batch(tiny: TorchClassifier, words: list[np.ndarray]) -> None:
    bus = EventBus()
    sub = bus.subscribe("t")
    clf = Recording(tiny)
    worker = make_worker(clf, bus)
    worker.start()
    try:
        for i, w in enumerate(words[:3]):
            worker.submit(segment(i, w))
            assert worker.wait_idle(timeout=60)
        assert [u.id for u in utterances(sub.drain())] == [0, 1, 2]
        assert clf.batch_sizes == [1, 1, 1]
    finally:
        worker.stop()


def test_very_different_lengths_go_in_separate_batches(
    tiny: TorchClassifier, words: list[np.ndarray]
) -> None:
    bus = EventBus()
    sub = bus.subscribe("t")
    clf = Recording(tiny)
    long_one = np.concatenate([words[0], np.zeros(RATE, np.float32), words[1], words[2]])
    segs = [segment(0, words[0]), segment(1, long_one), segment(2, words[3])]
    events = run_queued(make_worker(clf, bus), segs, sub)
    assert sorted(clf.batch_sizes) == [1, 2]
    assert [u.id for u in utterances(events)] == [0, 1, 2]


def test_full_queue_drops_the_oldest_and_counts(tiny: TorchClassifier, words: list[np.ndarray]) -> None:
    bus = EventBus()
    sub = bus.subscribe("t")
    worker = make_worker(tiny, bus, queue_size=3)
    events = run_queued(worker, [segment(i, w) for i, w in enumerate(words[:5])], sub)
    assert worker.dropped_segments == 2
    assert [u.id for u in utterances(events)] == [2, 3, 4]


def test_failing_segment_gives_an_error_event_and_the_rest_go_on(
    tiny: TorchClassifier, words: list[np.ndarray]
) -> None:
    bus = EventBus()
    sub = bus.subscribe("t")
    bad = np.resize(words[2], 12_345)
    clf = Recording(tiny, fail_on_length=len(bad))
    worker = make_worker(clf, bus)
    for i, audio in enumerate([np.resize(words[0], 12_000), bad, np.resize(words[1], 12_500)]):
        worker.submit(segment(i, audio))
    worker.start()
    try:
        assert worker.wait_idle(timeout=60)
        worker.submit(segment(3, words[3]))  # after the failure: still classified
        assert worker.wait_idle(timeout=60)
    finally:
        assert worker.stop(timeout=60)
    events = sub.drain()
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert [(e.code, e.segment_id) for e in errors] == [("inference_failed", 1)]
    assert "breaks the model" in errors[0].message
    assert [u.id for u in utterances(events)] == [0, 2, 3]
    assert clf.batch_sizes[0] == 3  # the batch failed, then one by one
    assert worker.errors == 1 and worker.classified == 3


def test_threshold_decides_label_and_accepted(tiny: TorchClassifier, words: list[np.ndarray]) -> None:
    bus = EventBus()
    sub = bus.subscribe("t")
    worker = make_worker(tiny, bus, threshold=1.0)
    worker.start()
    try:
        worker.submit(segment(0, words[0]))
        assert worker.wait_idle(timeout=60)
        worker.update(threshold=0.0, top_k=1)
        worker.submit(segment(1, words[0]))
        assert worker.wait_idle(timeout=60)
    finally:
        worker.stop()
    rejected, accepted = utterances(sub.drain())
    assert rejected.label is None and rejected.accepted is False and len(rejected.intents) == 3
    assert accepted.accepted is True and accepted.label == accepted.intents[0].label
    assert len(accepted.intents) == 1
    with pytest.raises(ValueError):
        worker.update(threshold=1.5)


def test_threshold_between_scores(tiny: TorchClassifier, words: list[np.ndarray]) -> None:
    (intents,) = tiny.classify([words[4]], top_k=1)
    top = intents[0].score
    bus = EventBus()
    sub = bus.subscribe("t")
    above = make_worker(tiny, bus, threshold=top - 1e-4)
    below = make_worker(tiny, bus, threshold=min(1.0, top + 1e-4))
    (passes,) = utterances(run_queued(above, [segment(0, words[4])], sub))
    (fails,) = utterances(run_queued(below, [segment(1, words[4])], sub))
    assert passes.accepted and passes.label == intents[0].label
    assert not fails.accepted and fails.label is None
    assert fails.intents[0].label == intents[0].label


def test_set_classifier_swaps_between_batches(
    tiny: TorchClassifier, words: list[np.ndarray], tmp_path: Path
) -> None:
    other = TorchClassifier.load(str(build_tiny_model(tmp_path / "other", labels=("left", "right"))))
    bus = EventBus()
    sub = bus.subscribe("t")
    worker = make_worker(tiny, bus)
    worker.start()
    try:
        worker.submit(segment(0, words[0]))
        assert worker.wait_idle(timeout=60)
        worker.set_classifier(other)
        worker.submit(segment(1, words[0]))
        assert worker.wait_idle(timeout=60)
    finally:
        worker.stop()
    first, second = utterances(sub.drain())
    assert first.model == "tiny" and {i.label for i in first.intents} <= {"yes", "no", "stop"}
    assert second.model == "other" and {i.label for i in second.intents} <= {"left", "right"}
    assert worker.classifier is other


def test_segment_at_another_rate_is_resampled(tiny: TorchClassifier) -> None:
    bus = EventBus()
    sub = bus.subscribe("t")
    audio_8k = spoken_word("stop", sample_rate=8000)
    events = run_queued(make_worker(tiny, bus), [segment(0, audio_8k, 1.0, rate=8000)], sub)
    (u,) = utterances(events)
    assert u.start == pytest.approx(1.0) and u.end == pytest.approx(1.0 + len(audio_8k) / 8000)


def test_stop_without_drain_drops_what_waits(tiny: TorchClassifier, words: list[np.ndarray]) -> None:
    bus = EventBus()
    sub = bus.subscribe("t")
    worker = make_worker(tiny, bus)
    for i, w in enumerate(words[:4]):
        worker.submit(segment(i, w))
    assert worker.stop(drain=False, timeout=5)
    assert worker.dropped_segments == 4 and sub.drain() == []


def test_idle_worker_keeps_reporting_progress(tiny: TorchClassifier) -> None:
    worker = make_worker(tiny, EventBus())
    worker.start()
    try:
        first = worker.last_progress
        deadline = time.monotonic() + 30
        while worker.last_progress == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.last_progress > first
        assert worker.running
    finally:
        assert worker.stop(timeout=5)
    assert not worker.running


def test_wait_for_room_lets_a_file_source_wait(tiny: TorchClassifier, words: list[np.ndarray]) -> None:
    bus = EventBus()
    sub = bus.subscribe("t")
    worker = make_worker(tiny, bus, queue_size=1)
    worker.start()
    try:
        for i, w in enumerate(words):
            assert worker.wait_for_room(timeout=60)
            worker.submit(segment(i, w))
        assert worker.wait_idle(timeout=60)
    finally:
        worker.stop()
    assert worker.dropped_segments == 0
    assert [u.id for u in utterances(sub.drain())] == list(range(len(words)))


def test_segments_submitted_after_stop_are_dropped_not_lost(
    tiny: TorchClassifier, words: list[np.ndarray]
) -> None:
    bus = EventBus()
    sub = bus.subscribe("t")
    worker = make_worker(tiny, bus)
    worker.start()
    assert worker.stop(timeout=10)
    worker.submit(segment(0, words[0]))
    assert worker.dropped_segments == 1 and sub.drain() == []


def test_other_speech_and_background_are_never_accepted(
    tmp_path: Path, words: list[np.ndarray]
) -> None:
    """A model whose every label is a non-command class (``_unknown_``, ``_background_``): whatever it
    ranks first, at threshold 0, the utterance carries its intents but no accepted label."""
    model_dir = build_tiny_model(tmp_path / "others", ("_unknown_", "_background_"))
    clf = TorchClassifier.load(str(model_dir))
    bus = EventBus()
    sub = bus.subscribe("t")
    worker = make_worker(clf, bus, threshold=0.0)
    worker.start()
    try:
        for index, word in enumerate(words[:3]):
            worker.submit(segment(index, word))
        assert worker.wait_idle(timeout=60)
    finally:
        worker.stop()
    found = utterances(sub.drain())
    assert len(found) == 3
    assert all(u.label is None and not u.accepted and u.intents for u in found)
    assert {u.intents[0].label for u in found} <= {"_unknown_", "_background_"}
