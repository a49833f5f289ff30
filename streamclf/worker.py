"""The classifier worker: a bounded segment queue → batches → classifier → events.

The worker runs in its own thread so capture never waits for inference. ``submit`` never
blocks: when the queue is full the OLDEST waiting segment is dropped and counted (a live
microphone must not fall ever further behind). Segments that queue up while the model is
busy are classified together, grouped by similar length to limit padding. A batch that
fails is retried one segment at a time; a segment that still fails gets an ``error`` event
and the stream goes on.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from .classifier import Classifier
from .events import ErrorEvent, Event, Intent, UtteranceEvent, is_command

log = logging.getLogger(__name__)

IDLE_WAKE_S = 0.5
"""Longest sleep of an idle worker: ``last_progress`` stays fresh for the watchdog."""

MAX_LENGTH_RATIO = 1.5
"""Segments batched together differ in length by at most this factor (limits padding)."""


class SegmentLike(Protocol):
    """What the worker reads of a :class:`streamclf.segment.Segment`."""

    @property
    def id(self) -> int: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def audio(self) -> np.ndarray: ...
    @property
    def closed_at(self) -> float: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...


Outcome = tuple[Intent, ...] | Exception

OnDone = Callable[[SegmentLike, Event | None], None]
"""Called once per submitted segment: with its utterance or error event once published, with None
when the segment was dropped. Runs on the worker's or the submitter's thread; it must not block."""


def group_by_length(segments: Sequence[SegmentLike], ratio: float = MAX_LENGTH_RATIO) -> list[list[int]]:
    """Indices of ``segments`` split into groups whose longest is at most ``ratio`` × their shortest."""
    order = sorted(range(len(segments)), key=lambda i: len(segments[i].audio))
    groups: list[list[int]] = []
    shortest = 0
    for i in order:
        length = len(segments[i].audio)
        if groups and length <= max(shortest, 1) * ratio:
            groups[-1].append(i)
        else:
            groups.append([i])
            shortest = length
    return groups


class Worker:
    """Classifies segments in a thread of its own and publishes one event per segment."""

    def __init__(
        self,
        classifier: Classifier,
        publish: Callable[[Event], None],
        *,
        source: str,
        top_k: int,
        threshold: float,
        max_batch: int,
        queue_size: int,
        file: str | None = None,
        on_done: OnDone | None = None,
    ) -> None:
        """``source`` names the events' stream; a segment with a ``source`` attribute of its own
        (several streams sharing one worker) names it instead."""
        if max_batch < 1 or queue_size < 1:
            raise ValueError("max_batch and queue_size must be ≥ 1")
        _check_options(top_k, threshold)
        self._classifier = classifier
        self._next_classifier: Classifier | None = None
        self._publish = publish
        self._on_done = on_done
        self.source = source
        self.file = file
        self._top_k = top_k
        self._threshold = threshold
        self.max_batch = max_batch
        self.queue_size = queue_size
        self._queue: collections.deque[SegmentLike] = collections.deque()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._stopping = False
        self._started = False
        self._finished = False
        self._thread = threading.Thread(target=self._run, name="streamclf-worker", daemon=True)
        self.last_progress = time.monotonic()
        """time.monotonic() of the last loop turn (at least every IDLE_WAKE_S while running)."""
        self.classified = 0
        self.dropped_segments = 0
        self.errors = 0
        self.batches = 0
        self.failed: BaseException | None = None
        """Set when the loop itself died (never for a failing model: that is an error event)."""

    # --- control (any thread) -------------------------------------------------------------

    def start(self) -> None:
        with self._cond:
            self._started = True
        self._thread.start()

    @property
    def classifier(self) -> Classifier:
        return self._classifier

    @property
    def running(self) -> bool:
        """Started and its loop not yet ended (the loop ends after ``stop``)."""
        return self._started and not self._finished

    def submit(self, segment: SegmentLike) -> None:
        """Queue a segment; never blocks. A full queue drops its oldest segment (counted)."""
        with self._cond:
            if self._stopping and not self.running:
                log.warning("worker stopped: dropped segment %d", segment.id)
                self._drop([segment])
                return
            if len(self._queue) >= self.queue_size:
                dropped = self._queue.popleft()
                log.warning("worker queue full: dropped segment %d", dropped.id)
                self._drop([dropped])
            self._queue.append(segment)
            self._cond.notify_all()

    def wait_for_room(self, timeout: float | None = None) -> bool:
        """Block until ``submit`` would not drop (for sources that can wait, such as files).
        False on timeout; True at once when the worker is not running."""
        with self._cond:
            return self._cond.wait_for(
                lambda: len(self._queue) < self.queue_size or self._stopping or not self.running, timeout
            )

    def set_classifier(self, classifier: Classifier) -> None:
        """Use ``classifier`` from the next batch on (the batch in flight finishes on the old one)."""
        with self._cond:
            if self.running:
                self._next_classifier = classifier
                self._cond.notify_all()
            else:
                self._classifier = classifier

    def update(self, *, top_k: int | None = None, threshold: float | None = None) -> None:
        """Change top-k and threshold from the next batch on."""
        with self._cond:
            new_top_k = self._top_k if top_k is None else top_k
            new_threshold = self._threshold if threshold is None else threshold
            _check_options(new_top_k, new_threshold)
            self._top_k, self._threshold = new_top_k, new_threshold

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or in flight; False on timeout. True at once when
        the thread is not running (nothing will change)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: (not self._queue and self._in_flight == 0) or not self.running, timeout
            )

    def stop(self, drain: bool = True, timeout: float | None = None) -> bool:
        """Stop the thread; with ``drain``, classify what is queued first (else it is dropped
        and counted). True when the thread ended within ``timeout`` seconds; when it did not,
        what still waits is dropped (counted) and only the batch in flight finishes."""
        with self._cond:
            self._stopping = True
            if not drain or not self.running:
                self._drop_queued()
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        if self._thread.is_alive():
            with self._cond:
                self._drop_queued()
            return False
        return True

    @property
    def queued(self) -> int:
        """Segments waiting now (never more than ``queue_size``)."""
        with self._cond:
            return len(self._queue)

    def counters(self) -> dict[str, int]:
        return {
            "classified": self.classified,
            "dropped_segments": self.dropped_segments,
            "errors": self.errors,
            "batches": self.batches,
        }

    def _drop(self, segments: Sequence[SegmentLike]) -> None:
        """Count dropped segments and tell ``on_done`` (caller holds the lock)."""
        self.dropped_segments += len(segments)
        if self._on_done is not None:
            for segment in segments:
                self._on_done(segment, None)

    def _drop_queued(self) -> None:
        queued = list(self._queue)
        self._queue.clear()
        self._drop(queued)

    # --- the worker thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while self._turn():
                pass
        except Exception as exc:  # a bug in the loop itself: report, let the watchdog see it
            log.exception("classifier worker failed")
            self.failed = exc
        finally:
            with self._cond:
                self._in_flight = 0
                self._finished = True
                self._cond.notify_all()

    def _turn(self) -> bool:
        """One loop turn: take the waiting segments and classify them. False when done."""
        with self._cond:
            if not self._queue and not self._stopping:
                self._cond.wait(IDLE_WAKE_S)
            self.last_progress = time.monotonic()
            if self._next_classifier is not None:
                self._classifier, self._next_classifier = self._next_classifier, None
                log.info("worker now uses model %s", self._classifier.name)
            if not self._queue:
                if self._stopping:
                    self._finished = True  # under the lock: a later submit sees it and drops
                    return False
                return True
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            self._in_flight = len(batch)
            classifier, top_k, threshold = self._classifier, self._top_k, self._threshold
        try:
            outcomes = self._classify(classifier, batch, top_k)
            for segment, outcome in zip(batch, outcomes, strict=True):
                self._publish_outcome(classifier, segment, outcome, threshold)
        finally:
            with self._cond:
                self._in_flight = 0
                self.last_progress = time.monotonic()
                self._cond.notify_all()
        return True

    def _classify(self, classifier: Classifier, batch: list[SegmentLike], top_k: int) -> list[Outcome]:
        """An outcome per segment, in order: ranked intents, or the exception that stopped it."""
        audio = [_at_rate(s, classifier.sample_rate) for s in batch]
        outcomes: list[Outcome | None] = [None] * len(batch)
        for group in group_by_length(batch):
            self.batches += 1
            results: Sequence[Outcome]
            try:
                results = _checked(classifier.classify([audio[i] for i in group], top_k), len(group))
            except Exception as exc:  # any model failure: retry alone, then an error event
                if len(group) == 1:
                    outcomes[group[0]] = exc
                    continue
                log.warning("batch of %d segments failed (%s); retrying one by one", len(group), exc)
                results = [self._classify_one(classifier, audio[i], top_k) for i in group]
            for i, result in zip(group, results, strict=True):
                outcomes[i] = result
        return [o if o is not None else RuntimeError("not classified") for o in outcomes]

    @staticmethod
    def _classify_one(classifier: Classifier, audio: np.ndarray, top_k: int) -> Outcome:
        try:
            return _checked(classifier.classify([audio], top_k), 1)[0]
        except Exception as exc:  # reported as this segment's error event
            return exc

    def _publish_outcome(
        self, classifier: Classifier, segment: SegmentLike, outcome: Outcome, threshold: float
    ) -> None:
        if isinstance(outcome, Exception):
            self.errors += 1
            message = f"segment {segment.id}: {type(outcome).__name__}: {outcome}".splitlines()[0]
            log.error("inference failed: %s", message)
            self._done(segment, ErrorEvent("inference_failed", message, segment_id=segment.id))
            return
        top = outcome[0] if outcome else None
        accepted = top is not None and top.score >= threshold and is_command(top.label)
        self.classified += 1
        self._done(
            segment,
            UtteranceEvent(
                id=segment.id,
                source=_source_of(segment, self.source),
                start=segment.start,
                end=segment.end,
                intents=outcome,
                label=top.label if accepted and top is not None else None,
                accepted=accepted,
                latency_ms=(time.monotonic() - segment.closed_at) * 1000.0,
                model=classifier.name,
                file=self.file,
            ),
        )

    def _done(self, segment: SegmentLike, event: Event) -> None:
        self._publish(event)
        if self._on_done is not None:
            self._on_done(segment, event)


def _source_of(segment: SegmentLike, default: str) -> str:
    own = getattr(segment, "source", None)
    return own if isinstance(own, str) and own else default


def _check_options(top_k: int, threshold: float) -> None:
    if top_k < 1:
        raise ValueError("top_k must be ≥ 1")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError("threshold must be between 0 and 1")


def _checked(results: list[tuple[Intent, ...]], expected: int) -> list[tuple[Intent, ...]]:
    if len(results) != expected:
        raise RuntimeError(f"classifier returned {len(results)} results for {expected} inputs")
    return results


def _at_rate(segment: SegmentLike, rate: int) -> np.ndarray:
    """The segment's audio at the classifier's rate (after a reload to a model at another rate)."""
    audio = np.asarray(segment.audio, dtype=np.float32)
    if segment.sample_rate == rate or audio.size == 0:
        return audio
    import soxr

    return np.asarray(soxr.resample(audio, segment.sample_rate, rate), dtype=np.float32)
