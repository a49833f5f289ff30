"""The `listen` daemon's life cycle: start-up, main loop, shutdown.

Start-up fails fast (exit 3) on a bad config, model or device. The main loop only
watches: it publishes status events and waits for a signal or the end of the source.
Shutdown stops capture, lets the worker finish the utterance in flight and flushes sinks.
"""

from __future__ import annotations

# HANDOVER: service helper owns this file now

import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from .audio.sources import Source, open_source
from .bus import EventBus
from .classifier import Classifier, load_classifier
from .config import Settings
from .errors import EXIT_OK, EXIT_RUNTIME, StartupError
from .events import ErrorEvent, StatusEvent
from .pipeline import Pipeline
from .segmenter import make_segmenter
from .sinks.jsonl import JsonlSink
from .worker import Worker

log = logging.getLogger(__name__)

SHUTDOWN_LIMIT_S = 1.5


@dataclass
class Sinks:
    """The outputs the daemon started, closed in order at shutdown."""

    jsonl: JsonlSink | None = None
    console_stop: threading.Event = field(default_factory=threading.Event)
    console_thread: threading.Thread | None = None

    def close(self) -> None:
        self.console_stop.set()
        if self.console_thread is not None:
            self.console_thread.join(0.5)
        if self.jsonl is not None:
            self.jsonl.close(timeout=0.5)


def want_json(settings: Settings) -> bool:
    return settings.output.json if settings.output.json is not None else not sys.stdout.isatty()


class Daemon:
    def __init__(self, settings: Settings, config_path: Path | None = None) -> None:
        self.settings = settings
        self.config_path = config_path
        self.bus = EventBus()
        self.stop_requested = threading.Event()
        self._sigint_count = 0
        self.classifier: Classifier | None = None
        self.source: Source | None = None
        self.pipeline: Pipeline | None = None
        self.sinks = Sinks()

    # -- start-up -----------------------------------------------------------------------------
    def start(self) -> None:
        """Load and warm the model, open the source, start sinks and the pipeline (StartupError: exit 3)."""
        s = self.settings
        classifier = load_classifier(s.model)
        classifier.warm_up()
        self.classifier = classifier
        self.source = open_source(s.capture)
        self._open_source(self.source)
        self._start_sinks()
        worker = Worker(
            classifier,
            self.bus.publish,
            source=self.source.name,
            top_k=s.model.top_k,
            threshold=s.model.threshold,
            max_batch=s.model.max_batch,
            queue_size=s.model.queue_size,
        )
        worker.start()
        segmenter = make_segmenter(s.vad, classifier.sample_rate)
        self.pipeline = Pipeline(
            self.source,
            segmenter,
            worker,
            self.bus,
            speech_events=s.output.speech_events,
            reopen_max_backoff_s=s.capture.reopen_max_backoff_s,
        )
        self.pipeline.start()

    def _open_source(self, source: Source) -> None:
        """Open the source; with ``wait_for_device``, wait for an absent device with backoff."""
        backoff = 0.5
        while True:
            try:
                source.open()
                return
            except StartupError as exc:
                if not self.settings.capture.wait_for_device or self.stop_requested.is_set():
                    raise
                log.warning("waiting for the audio device: %s", exc)
                self.bus.publish(ErrorEvent("device_absent", str(exc)))
                if self.stop_requested.wait(backoff):
                    raise
                backoff = min(self.settings.capture.reopen_max_backoff_s, backoff * 2)

    def _start_sinks(self) -> None:
        out = self.settings.output
        if want_json(self.settings):
            self.sinks.jsonl = JsonlSink(self.bus.subscribe("stdout", out.stdout_buffer, "drop"))
            self.sinks.jsonl.start()
        else:
            self._start_console()

    def _start_console(self) -> None:
        from .sinks.console import ConsoleView

        assert self.source is not None and self.classifier is not None
        view = ConsoleView(
            self.bus.subscribe("console", 256, "drop"),
            source=self.source.name,
            model=self.classifier.name,
            level=lambda: self.pipeline.level_dbfs if self.pipeline else -120.0,
            counters=lambda: self.pipeline.counters() if self.pipeline else {},
        )
        thread = threading.Thread(target=view.run, args=(self.sinks.console_stop,), name="console", daemon=True)
        thread.start()
        self.sinks.console_thread = thread

    # -- signals ---------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGINT:
            self._sigint_count += 1
            if self._sigint_count > 1:
                raise SystemExit(130)  # second Ctrl-C: force
        self.stop_requested.set()

    # -- main loop -------------------------------------------------------------------------------
    def status_event(self, state: str) -> StatusEvent:
        assert self.pipeline is not None and self.source is not None and self.classifier is not None
        return StatusEvent(self.source.name, self.classifier.name, state, self.pipeline.counters())

    def loop(self) -> None:
        assert self.pipeline is not None
        interval = self.settings.output.status_interval_s
        next_status = time.monotonic() + interval
        jsonl = self.sinks.jsonl
        while not self.stop_requested.is_set():
            if self.pipeline.ended.is_set():
                break
            if jsonl is not None and jsonl.closed_by_reader.is_set():
                break
            now = time.monotonic()
            if now >= next_status:
                self.bus.publish(self.status_event("listening"))
                next_status = now + interval
            self.stop_requested.wait(min(0.25, max(0.01, next_status - now)))

    # -- shutdown ----------------------------------------------------------------------------------
    def shutdown(self) -> int:
        if self.pipeline is not None:
            self.pipeline.stop(timeout=SHUTDOWN_LIMIT_S)
            self.bus.publish(self.status_event("stopped"))
        self.sinks.close()
        if self.pipeline is not None and self.pipeline.failed is not None:
            return EXIT_RUNTIME
        return EXIT_OK

    def run(self) -> int:
        self.install_signal_handlers()
        try:
            self.start()
            self.loop()
        finally:
            code = self.shutdown()
        return code
