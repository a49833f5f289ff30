"""Human-readable sink for `classify` on a terminal: one line per utterance."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from ..bus import Subscription
from ..events import ErrorEvent, UtteranceEvent
from .jsonl import point_at_devnull


def format_utterance(event: UtteranceEvent) -> str:
    label = event.label if event.label is not None else "(rejected)"
    ranked = "  ".join(f"{i.label} {i.score:.2f}" for i in event.intents)
    where = f"{event.file}  " if event.file else ""
    return f"{where}{event.start:8.2f}–{event.end:<8.2f} {label:<14} {ranked}"


class PrettySink:
    def __init__(self, subscription: Subscription, stream: TextIO | None = None) -> None:
        self.subscription = subscription
        self._stream = stream if stream is not None else sys.stdout
        self.closed_by_reader = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pretty-sink", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        sub = self.subscription
        while True:
            event = sub.get(timeout=0.5)
            if event is None:
                if sub.closed and sub.pending() == 0:
                    return
                continue
            try:
                if isinstance(event, UtteranceEvent):
                    self._stream.write(format_utterance(event) + "\n")
                elif isinstance(event, ErrorEvent):
                    self._stream.write(f"error: {event.code}: {event.message}\n")
                self._stream.flush()
            except (BrokenPipeError, ConnectionResetError, ValueError):
                self._reader_gone()
                return

    def _reader_gone(self) -> None:
        """The reader closed the pipe (``| head``): stop, and keep the final flush at exit quiet."""
        self.closed_by_reader.set()
        self.subscription.close()
        point_at_devnull(self._stream)

    def close(self, timeout: float = 1.0) -> None:
        self.subscription.close()
        self._thread.join(timeout)
