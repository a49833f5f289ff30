"""The outputs the daemon started: JSON lines on stdout or the Rich console, and the event sockets.

They are closed in order at shutdown, each within what is left of the stop deadline.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from .sinks.jsonl import JsonlSink
from .sinks.socket import Publisher


@dataclass
class Sinks:
    """The outputs the daemon started, closed in order at shutdown."""

    jsonl: JsonlSink | None = None
    console_stop: threading.Event = field(default_factory=threading.Event)
    console_thread: threading.Thread | None = None
    publishers: list[Publisher] = field(default_factory=list)

    def close(self, deadline: float) -> None:
        self.console_stop.set()
        if self.console_thread is not None:
            self.console_thread.join(max(0.05, min(0.5, deadline - time.monotonic())))
        if self.jsonl is not None:
            self.jsonl.close(timeout=max(0.05, deadline - time.monotonic()))
        for publisher in self.publishers:
            publisher.close(flush_timeout_s=max(0.0, deadline - time.monotonic()))

    def subscriber_count(self) -> int:
        """Clients connected to the event sockets now (those cut off: ``disconnected_subscribers``)."""
        return sum(p.clients for p in self.publishers)
