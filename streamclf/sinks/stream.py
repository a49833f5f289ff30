"""A sink that writes events to a stream (stdout) from its own thread.

It reads its own bounded bus subscription, so a slow reader only makes this sink drop events
(counted by the subscription), never the pipeline. A reader that goes away (EPIPE, e.g.
``| head -n 1``) ends the sink quietly and sets ``closed_by_reader`` so the caller can stop
with exit code 0. Subclasses say how one event is written.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import IO, Any

from ..bus import Subscription
from ..events import Event

log = logging.getLogger(__name__)


def point_at_devnull(stream: IO[Any]) -> None:
    """Point a stream whose reader went away at /dev/null, so later writes and the
    interpreter's final flush neither fail nor print a BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class StreamSink:
    name = "stream-sink"

    def __init__(self, subscription: Subscription, stream: IO[Any]) -> None:
        self.subscription = subscription
        self._stream = stream
        self.written = 0
        self.closed_by_reader = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def write_event(self, event: Event) -> None:
        """Write one event to ``self._stream`` (without flushing)."""
        raise NotImplementedError

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
                self.write_event(event)
                self._stream.flush()
            except (BrokenPipeError, ConnectionResetError, ValueError):
                self.closed_by_reader.set()
                sub.close()
                point_at_devnull(self._stream)
                return
            self.written += 1

    def close(self, timeout: float = 1.0) -> None:
        """Write what is queued (within ``timeout``), then stop."""
        self.subscription.close()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("stdout reader is not reading: %d events left unwritten", self.subscription.pending())
