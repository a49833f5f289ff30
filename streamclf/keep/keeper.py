"""`listen --keep`: the thread that writes each classified utterance to the kept folder.

The worker hands each utterance over through :meth:`Keeper.offer` (its ``on_done``), which only
queues it: a live source never waits for the disk (a full queue drops the oldest, counted); files
and pipes wait for room, as they wait for the worker. Writing, pruning to ``keep.max_mb`` and the
free-space check happen here. When the disk runs low or a write fails, keeping stops with one
warning and the daemon goes on.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from ..audiofolder import encode_wav
from ..config import KeepSettings
from ..errors import StreamclfError
from ..events import Event, UtteranceEvent
from ..worker import SegmentLike
from .folder import Added, Bound, KeepFolder, LowDiskSpace, NewClip
from .rows import new_row

log = logging.getLogger(__name__)

CLOSE_WITHOUT_SIGNAL_S = 30.0
"""Longest wait at shutdown for queued clips when the source simply ended (no stop deadline)."""


@dataclass(frozen=True)
class Pending:
    """An utterance waiting to be written: its audio, its event and when it was handed over."""

    audio: np.ndarray
    rate: int
    event: UtteranceEvent
    when: datetime


def clip_name(when: datetime, event_id: int) -> str:
    """``YYYYmmdd-HHMMSS-mmm-ID.wav`` (UTC): names sort oldest first."""
    return f"{when:%Y%m%d-%H%M%S}-{when.microsecond // 1000:03d}-{event_id}.wav"


def to_clip(item: Pending) -> NewClip:
    duration = item.audio.size / item.rate if item.rate else 0.0
    row = new_row(item.event, clip_name(item.when, item.event.id), duration, item.when)
    return NewClip(encode_wav(item.audio, item.rate), row)


class Keeper:
    """Writes kept utterances to a :class:`KeepFolder` from a thread of its own."""

    def __init__(self, folder: KeepFolder, settings: KeepSettings, *, wait: bool) -> None:
        """``wait``: ``offer`` waits for room (files, pipes) instead of dropping the oldest (a mic)."""
        self.folder = folder
        self.bound = Bound(round(settings.max_mb * 1e6), round(settings.min_free_mb * 1e6))
        self.capacity = settings.queue
        self.wait = wait
        self._queue: collections.deque[Pending] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="keep", daemon=True)
        self.kept = 0
        self.dropped = 0
        self.pruned = 0

    def start(self) -> None:
        self._thread.start()

    def offer(self, segment: SegmentLike, event: Event | None) -> None:
        """The worker's ``on_done``: queue a classified utterance (others are ignored)."""
        if not isinstance(event, UtteranceEvent):
            return
        item = Pending(np.asarray(segment.audio, dtype=np.float32), segment.sample_rate, event,
                       datetime.now(UTC))
        with self._cond:
            if self.wait:
                self._cond.wait_for(lambda: len(self._queue) < self.capacity or self._done())
            if self._done():
                if not self._stopped:  # stopped: keeping is off, nothing is lost by accident
                    self.dropped += 1
                return
            if len(self._queue) >= self.capacity:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(item)
            self._cond.notify_all()

    def close(self, timeout: float | None) -> None:
        """Write what is queued (within ``timeout`` seconds), then stop; what is left is dropped."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._cond:
            if self._queue:
                log.warning("keep: %d utterances not written before shutdown", len(self._queue))
                self.dropped += len(self._queue)
                self._queue.clear()

    def counters(self) -> dict[str, int]:
        return {"kept": self.kept, "keep_dropped": self.dropped, "keep_pruned": self.pruned}

    def _done(self) -> bool:
        return self._closing or self._stopped

    def _run(self) -> None:
        try:
            while self._write_next():
                pass
        except Exception:  # a bug here must not leave a waiting worker stuck: stop keeping, say so
            log.exception("keep: the writer failed; utterances are no longer kept")
        finally:
            with self._cond:
                self._stopped = True
                self._queue.clear()
                self._cond.notify_all()

    def _write_next(self) -> bool:
        """Write everything waiting; False once closed and drained, or when keeping must stop."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._queue) or self._closing)
            if not self._queue:
                return False
            batch = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        return self._write(batch)

    def _write(self, batch: list[Pending]) -> bool:
        """Write a batch; False when keeping must stop (logged once)."""
        try:
            added = self.folder.add([to_clip(item) for item in batch], self.bound)
        except LowDiskSpace as exc:
            log.warning("keep: stopped keeping utterances: %s on %s, under keep.min_free_mb (%.0f MB)",
                        exc, self.folder.path, self.bound.min_free_bytes / 1e6)
            return False
        except (OSError, StreamclfError) as exc:
            log.warning("keep: stopped keeping utterances: cannot write to %s: %s", self.folder.path, exc)
            return False
        self._count(added)
        return True

    def _count(self, added: Added) -> None:
        self.kept += len(added.written)
        self.pruned += len(added.pruned)
        if added.too_big:
            log.warning("keep: %d utterances larger than keep.max_mb (%.2f MB) not kept",
                        added.too_big, self.bound.max_bytes / 1e6)
