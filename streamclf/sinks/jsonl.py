"""JSON-lines sink: writes each event as one line to stdout (or any binary stream).

It runs in its own thread and reads from its own bounded bus subscription, so a slow
reader only makes this sink drop events (counted by the subscription), never the pipeline.
A reader that goes away (EPIPE, e.g. ``| head -n 1``) ends the sink quietly and sets
``closed_by_reader`` so the daemon can stop with exit code 0.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import BinaryIO

from ..bus import Subscription
from ..events import encode

log = logging.getLogger(__name__)


def point_at_devnull(stream: object) -> None:
    """Point a stream whose reader went away at /dev/null, so later writes and the
    interpreter's final flush neither fail nor print a BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())  # type: ignore[attr-defined]
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class JsonlSink:
    def __init__(self, subscription: Subscription, stream: BinaryIO | None = None) -> None:
        self.subscription = subscription
        self._stream = stream if stream is not None else sys.stdout.buffer
        self.written = 0
        self.closed_by_reader = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jsonl-sink", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _write(self, line: str) -> bool:
        try:
            self._stream.write(line.encode("utf-8"))
            self._stream.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError):
            self._reader_gone()
            return False
        self.written += 1
        return True

    def _reader_gone(self) -> None:
        """The reader closed the pipe: stop writing and keep the interpreter's final flush quiet."""
        self.closed_by_reader.set()
        self.subscription.close()
        point_at_devnull(self._stream)

    def _run(self) -> None:
        sub = self.subscription
        while True:
            event = sub.get(timeout=0.5)
            if event is None:
                if sub.closed and sub.pending() == 0:
                    return
                continue
            if not self._write(encode(event)):
                return

    def close(self, timeout: float = 1.0) -> None:
        """Write what is queued (within ``timeout``), then stop."""
        self.subscription.close()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("stdout reader is not reading: %d events left unwritten", self.subscription.pending())
