"""The streaming pipeline: source → resampler → segmenter → worker → event bus.

One thread reads the source, resamples to the model's rate, feeds the segmenter and hands
closed segments to the worker (its own thread). The daemon's main thread only watches.
Live sources (a microphone) never wait for the worker: its queue drops the oldest segment.
Other sources (files, pipes) wait for room, so nothing is lost when running faster than real time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .audio.resample import StreamResampler
from .audio.sources import Source
from .bus import EventBus
from .errors import SourceLost, StartupError
from .events import ErrorEvent, SpeechEvent
from .segment import Segment, Segmenter, SegmentEvent, SpeechEnd, SpeechStart
from .worker import Worker

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.25


@dataclass(frozen=True)
class Progress:
    """Monotonic times of the last sign of life of each stage (for the systemd watchdog)."""

    capture: float
    worker: float


def announce(items: Iterable[SegmentEvent], rate: int, source: str,
             bus: EventBus | None) -> Iterator[Segment]:
    """The segments among ``items``, in order, after publishing the speech events before each on
    ``bus`` (None: no speech events): a start, an end with no segment (announced, then dropped), and
    each segment's end. `listen`'s pipeline and `serve`'s streams both hand segments on through it."""
    for item in items:
        if isinstance(item, (SpeechStart, SpeechEnd)):
            if bus is not None:
                state: Literal["start", "end"] = "start" if isinstance(item, SpeechStart) else "end"
                bus.publish(SpeechEvent(state, item.sample / rate, source))
            continue
        if bus is not None:
            bus.publish(SpeechEvent("end", item.end, source))
        yield item


class Pipeline:
    def __init__(
        self,
        source: Source,
        segmenter: Segmenter,
        worker: Worker,
        bus: EventBus,
        *,
        speech_events: bool = True,
        reopen_max_backoff_s: float = 5.0,
    ) -> None:
        self.source = source
        self.segmenter = segmenter
        self.worker = worker
        self.bus = bus
        self.speech_events = speech_events
        self.reopen_max_backoff_s = reopen_max_backoff_s
        self.live = source.live
        self.first_audio = threading.Event()
        self.ended = threading.Event()
        self.failed: BaseException | None = None
        self._stop = threading.Event()
        self._resampler = StreamResampler(source.sample_rate, segmenter.sample_rate)
        self._thread = threading.Thread(target=self._read_and_segment, name="read-and-segment", daemon=True)
        self._last_capture = time.monotonic()
        self._level_dbfs = -120.0
        self.blocks = 0
        self.segments = 0
        self.device_losses = 0
        self.gap_ms = 0

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 1.5) -> None:
        """Stop reading, close the utterance in flight, and let the worker finish it."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self.worker.stop(drain=True, timeout=max(0.05, deadline - time.monotonic()))

    def wait(self, timeout: float | None = None) -> bool:
        """True once the source ended and every segment was classified."""
        if not self.ended.wait(timeout):
            return False
        self._thread.join()
        return True

    # -- observation ------------------------------------------------------------------------
    @property
    def level_dbfs(self) -> float:
        return self._level_dbfs

    def progress(self) -> Progress:
        return Progress(capture=self._last_capture, worker=self.worker.last_progress)

    def counters(self) -> dict[str, int]:
        src = self.source.counters
        return {
            "blocks": self.blocks,
            "samples": self.segmenter.samples_seen,
            "overflows": int(src.get("overflows", 0)),
            "overflow_samples": int(src.get("overflow_samples", 0)),
            "segments": self.segments,
            "classified": self.worker.classified,
            "dropped_segments": self.worker.dropped_segments,
            "errors": self.worker.errors,
            "dropped_events": self.bus.dropped,
            "disconnected_subscribers": self.bus.disconnected,
            "device_losses": self.device_losses,
            "gap_ms": self.gap_ms,
        }

    # -- the read-and-segment thread: source → resampler → segmenter → worker --------------------------
    def _read_and_segment(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    block = self.source.read(READ_TIMEOUT_S)
                except SourceLost as exc:
                    self._handle_loss(exc)
                    continue
                if block is None:
                    break
                if block.size:
                    self._consume(block)
            self._emit(self.segmenter.flush())
        except Exception as exc:  # the daemon reports it and exits 1
            log.exception("read-and-segment thread failed")
            self.failed = exc
        finally:
            self.source.close()
            if not self._stop.is_set():
                self.worker.stop(drain=True, timeout=None)
            self.ended.set()

    def _consume(self, block: np.ndarray) -> None:
        self.blocks += 1
        self._last_capture = time.monotonic()
        self.first_audio.set()
        energy = float(np.dot(block, block)) / max(1, block.size)
        self._level_dbfs = 10.0 * math.log10(energy + 1e-12)
        self._emit(self.segmenter.push(self._resampler.process(block)))

    def _emit(self, items: list[SegmentEvent]) -> None:
        speech_bus = self.bus if self.speech_events else None
        for segment in announce(items, self.segmenter.sample_rate, self.source.name, speech_bus):
            self.segments += 1
            if not self.live:
                self.worker.wait_for_room()
            self.worker.submit(segment)

    def _reopen_source(self) -> None:
        self.source.reopen()
        # the device may come back at another rate
        self._resampler = StreamResampler(self.source.sample_rate, self.segmenter.sample_rate)

    def _handle_loss(self, exc: SourceLost) -> None:
        """Report the loss, close the utterance in flight, and reopen with backoff."""
        self.device_losses += 1
        lost_at = time.monotonic()
        self.bus.publish(ErrorEvent("device_lost", f"{self.source.name}: {exc}"))
        self._emit(self.segmenter.flush())
        backoff = 0.25
        while not self._stop.is_set():
            self._last_capture = time.monotonic()  # reconnecting is progress: keep the watchdog fed
            self._stop.wait(backoff)
            if self._stop.is_set():
                return
            try:
                self._reopen_source()
            except (StartupError, SourceLost) as retry_exc:
                log.info("waiting for %s: %s", self.source.name, retry_exc)
                backoff = min(self.reopen_max_backoff_s, backoff * 2)
                continue
            gap = time.monotonic() - lost_at
            self.gap_ms += int(gap * 1000)
            self.bus.publish(ErrorEvent("device_back", f"{self.source.name}: reopened after {gap:.1f} s"))
            log.info("%s reopened after %.1f s", self.source.name, gap)
            return
