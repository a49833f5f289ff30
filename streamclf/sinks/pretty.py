"""Human-readable sink for `classify` on a terminal: one line per utterance."""

from __future__ import annotations

import sys
from typing import TextIO

from ..bus import Subscription
from ..events import ErrorEvent, Event, UtteranceEvent
from .stream import StreamSink


def format_utterance(event: UtteranceEvent) -> str:
    label = event.label if event.label is not None else "(rejected)"
    ranked = "  ".join(f"{i.label} {i.score:.2f}" for i in event.intents)
    where = f"{event.file}  " if event.file else ""
    return f"{where}{event.start:8.2f}–{event.end:<8.2f} {label:<14} {ranked}"


class PrettySink(StreamSink):
    name = "pretty-sink"

    def __init__(self, subscription: Subscription, stream: TextIO | None = None) -> None:
        super().__init__(subscription, stream if stream is not None else sys.stdout)

    def write_event(self, event: Event) -> None:
        if isinstance(event, UtteranceEvent):
            self._stream.write(format_utterance(event) + "\n")
        elif isinstance(event, ErrorEvent):
            self._stream.write(f"error: {event.code}: {event.message}\n")
