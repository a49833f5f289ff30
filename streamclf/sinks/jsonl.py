"""JSON-lines sink: each event as one line on stdout (or any binary stream)."""

from __future__ import annotations

import sys
from typing import BinaryIO

from ..bus import Subscription
from ..events import Event, encode
from .stream import StreamSink


class JsonlSink(StreamSink):
    name = "jsonl-sink"

    def __init__(self, subscription: Subscription, stream: BinaryIO | None = None) -> None:
        super().__init__(subscription, stream if stream is not None else sys.stdout.buffer)

    def write_event(self, event: Event) -> None:
        self._stream.write(encode(event).encode("utf-8"))
