"""The `listen` daemon's life cycle: start-up, main loop, signals, shutdown.

Start-up fails fast (exit 3) on a bad config, model, device or publish address. The main
loop only watches: status events (and systemd ``STATUS=``), ``READY=1`` once the model is
warm and the source delivered audio, ``WATCHDOG=1`` while the pipeline makes progress.
SIGTERM/SIGINT stop capture, let the worker finish the utterance in flight and flush every
sink within :data:`SHUTDOWN_LIMIT_S`; a second SIGINT exits at once. SIGHUP asks the
:class:`~streamclf.reload.Reloader` (``reload.py``) for a reload, which the main loop starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import NoReturn

from .audio.sources import DEFAULT_STDIN_RATE, Source, StdinSource, open_source
from .bus import EventBus
from .classifier import Classifier, load_classifier
from .config import CaptureSettings, Settings
from .errors import EXIT_OK, EXIT_RUNTIME, StartupError
from .events import ErrorEvent, StatusEvent
from .keep.folder import KeepFolder
from .keep.keeper import CLOSE_WITHOUT_SIGNAL_S, Keeper
from .notify import Notifier, ProgressWatchdog
from .outputs import Sinks
from .pipeline import Pipeline
from .reload import Reloader, SettingsLoader, reread_config_file
from .segment import make_segmenter
from .sinks.jsonl import JsonlSink
from .sinks.socket import BrokerOptions, parse_any_publish_uri, start_any_publishers
from .worker import Worker

log = logging.getLogger(__name__)

SHUTDOWN_LIMIT_S = 1.8
"""Seconds from SIGTERM to exit: capture stops, the utterance in flight is classified, sinks flush."""
PIPELINE_SHARE_S = 1.2
"""Of that, the most the pipeline (read-and-segment thread and worker drain) may take."""
LOOP_TICK_S = 0.1
"""Longest sleep of the main loop (watchdog pings, READY, reload requests)."""

def _make_source(capture: CaptureSettings) -> Source:
    """The configured source. Stdin is read through an unbuffered duplicate of fd 0: a reader
    thread blocked in ``sys.stdin.buffer`` would hold its lock, and closing sys.stdin at
    interpreter exit would then stall for a second and abort (SIGTERM while a writer is idle)."""
    if capture.source != "-":
        return open_source(capture)
    try:
        stream = open(os.dup(sys.stdin.fileno()), "rb", buffering=0)  # noqa: SIM115 (lives as long as the process)
    except (OSError, ValueError, AttributeError) as exc:
        raise StartupError(f"--source -: cannot read standard input: {exc}") from None
    return StdinSource(rate=capture.sample_rate or DEFAULT_STDIN_RATE, channels=capture.channels,
                       stream=stream, block_ms=capture.block_ms)


def want_json(settings: Settings) -> bool:
    return settings.output.json if settings.output.json is not None else not sys.stdout.isatty()


class Daemon:
    def __init__(
        self,
        settings: Settings,
        config_path: Path | None = None,
        loader: SettingsLoader | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        """``loader`` re-reads the settings at SIGHUP (config file plus the command line's
        overrides); without one, the config file is re-read and the running capture, output
        mode and publish addresses are kept (they may have come from the command line)."""
        self.settings = settings
        self.config_path = config_path
        self.reloader = Reloader(self, loader or (lambda: reread_config_file(config_path, self.settings)),
                                 config_path)
        self.notifier = notifier or Notifier.from_env()
        self.bus = EventBus()
        self.stop_requested = threading.Event()
        self._wake = threading.Event()
        self._sigint_count = 0
        self.stop_signal: int | None = None
        """The signal that asked us to stop (SIGTERM/SIGINT), None when the source ended."""
        self.classifier: Classifier | None = None
        self.source: Source | None = None
        self.pipeline: Pipeline | None = None
        self.worker: Worker | None = None
        self.keeper: Keeper | None = None
        self.sinks = Sinks()
        self.ready = False
        self.watchdog: ProgressWatchdog | None = None

    # -- start-up -----------------------------------------------------------------------------
    def start(self) -> None:
        """Load and warm the model, open the source, start sinks and the pipeline (StartupError: exit 3)."""
        s = self.settings
        for uri in s.output.publish:  # a bad address fails before the slow model load
            parse_any_publish_uri(uri)
        keep_folder = KeepFolder.for_writing(s.keep.dir) if s.keep.dir else None  # before the model too
        self.notifier.status(f"loading model {s.model.model or '(bundled default)'}")
        classifier = load_classifier(s.model)
        classifier.warm_up()
        self.classifier = classifier
        self.source = _make_source(s.capture)
        self._start_sinks()  # first: events about a device we wait for must reach the sinks
        if not self._open_source(self.source):
            return  # stopped while waiting for the device
        if keep_folder is not None:
            self.keeper = Keeper(keep_folder, s.keep, wait=not self.source.live)
            self.keeper.start()
        self.worker = Worker(
            classifier,
            self.bus.publish,
            source=self.source.name,
            top_k=s.model.top_k,
            threshold=s.model.threshold,
            max_batch=s.model.max_batch,
            queue_size=s.model.queue_size,
            on_done=self.keeper.offer if self.keeper is not None else None,
        )
        self.worker.start()
        segmenter = make_segmenter(s.vad, classifier.sample_rate)
        self.pipeline = Pipeline(
            self.source,
            segmenter,
            self.worker,
            self.bus,
            speech_events=s.output.speech_events,
            reopen_max_backoff_s=s.capture.reopen_max_backoff_s,
        )
        pipeline = self.pipeline
        self.watchdog = ProgressWatchdog(self.notifier, lambda: asdict(pipeline.progress()))
        self.pipeline.start()
        self.notifier.status(f"waiting for audio from {self.source.name}")

    def _open_source(self, source: Source) -> bool:
        """Open the source; with ``wait_for_device``, wait for an absent device with backoff.
        False when a stop signal ended the wait."""
        backoff = 0.5
        while True:
            try:
                source.open()
                return True
            except StartupError as exc:
                if not self.settings.capture.wait_for_device or self.stop_requested.is_set():
                    raise
                log.warning("waiting for the audio device: %s", exc)
                self.bus.publish(ErrorEvent("device_absent", str(exc)))
                if self.stop_requested.wait(backoff):
                    return False
                backoff = min(self.settings.capture.reopen_max_backoff_s, backoff * 2)

    def _start_sinks(self) -> None:
        out = self.settings.output
        assert self.classifier is not None
        broker = BrokerOptions(self.settings.mqtt, tuple(self.classifier.labels), self.classifier.name)
        self.sinks.publishers = start_any_publishers(
            out.publish, self.bus, buffer_events=out.subscriber_buffer, allow_remote=out.allow_remote,
            broker=broker,
        )
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
            counters=self.counters,
        )
        thread = threading.Thread(target=view.run, args=(self.sinks.console_stop,), name="console",
                                  daemon=True)
        thread.start()
        self.sinks.console_thread = thread

    # -- signals ---------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_reload_signal)

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGINT:
            self._sigint_count += 1
            if self._sigint_count > 1:  # second Ctrl-C: no more waiting
                os.write(2, b"streamclf: interrupted again; exiting now\n")
                os._exit(130)
        self.stop_signal = signum
        self.stop_requested.set()
        self._wake.set()

    def _on_reload_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.reloader.requested.set()
        self._wake.set()

    # -- observation -----------------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        counters = self.pipeline.counters() if self.pipeline is not None else {}
        if self.keeper is not None:
            counters.update(self.keeper.counters())
        counters["subscribers"] = self.sinks.subscriber_count()
        counters["reloads"] = self.reloader.reloads
        counters["reload_failures"] = self.reloader.failures
        return counters

    def status_event(self, state: str) -> StatusEvent:
        assert self.source is not None and self.worker is not None
        return StatusEvent(self.source.name, self.worker.classifier.name, state, self.counters())

    def status_text(self, state: str, now: float) -> str:
        """The one line systemd shows in ``systemctl status``."""
        assert self.source is not None and self.worker is not None
        c = self.counters()
        stalled = self.watchdog.stalled_stages(now) if self.watchdog is not None and self.ready else ()
        if stalled:
            state = f"stalled (no progress from {', '.join(stalled)})"
        return (
            f"{state}: {self.source.name}, model {self.worker.classifier.name}; "
            f"{c.get('segments', 0)} segments, {c.get('classified', 0)} classified, "
            f"{c.get('dropped_events', 0)} events dropped, {c.get('overflows', 0)} overflows, "
            f"{c['subscribers']} subscribers ({c.get('disconnected_subscribers', 0)} cut off)"
        )

    # -- main loop -------------------------------------------------------------------------------
    def loop(self) -> None:
        assert self.pipeline is not None and self.watchdog is not None
        next_status = time.monotonic() + self.settings.output.status_interval_s
        jsonl = self.sinks.jsonl
        while not self.stop_requested.is_set():
            if self.pipeline.ended.is_set():
                break
            if jsonl is not None and jsonl.closed_by_reader.is_set():
                break
            now = time.monotonic()
            if not self.ready and self.pipeline.first_audio.is_set():
                self.ready = True
                self.notifier.ready()
                self.notifier.status(self.status_text("listening", now))
                log.info("ready: model warm, audio flowing from %s", self.pipeline.source.name)
            if self.ready:
                self.watchdog.tick(now)
            self.reloader.start_if_requested()
            if now >= next_status:
                self.bus.publish(self.status_event("listening"))
                if self.ready:
                    self.notifier.status(self.status_text("listening", now))
                next_status = now + self.settings.output.status_interval_s
            self._wake.wait(min(LOOP_TICK_S, max(0.01, next_status - now)))
            self._wake.clear()

    # -- shutdown ----------------------------------------------------------------------------------
    def shutdown(self) -> int:
        deadline = time.monotonic() + SHUTDOWN_LIMIT_S
        self.notifier.stopping()
        if self.pipeline is not None:
            self.notifier.status("stopping: finishing the utterance in flight")
            self.pipeline.stop(timeout=min(PIPELINE_SHARE_S, SHUTDOWN_LIMIT_S))
            self._close_keeper(deadline)
            self.bus.publish(self.status_event("stopped"))
        self.sinks.close(deadline)
        self.notifier.close()
        log.info("stopped in %.2f s", time.monotonic() - deadline + SHUTDOWN_LIMIT_S)
        if self.pipeline is not None and self.pipeline.failed is not None:
            return EXIT_RUNTIME
        return EXIT_OK

    def _close_keeper(self, deadline: float) -> None:
        """Write the kept utterances still queued: all of them when the source ended by itself, else
        within half of what is left of the stop deadline (the sinks need the rest)."""
        if self.keeper is None:
            return
        if self.stop_signal is None:
            self.keeper.close(CLOSE_WITHOUT_SIGNAL_S)
        else:
            self.keeper.close(max(0.05, (deadline - time.monotonic()) / 2))

    def run(self) -> int:
        self.install_signal_handlers()
        try:
            self.start()
            if self.pipeline is not None:
                self.loop()
        finally:
            code = self.shutdown()
        if self.stop_signal is not None:
            # A stop signal ends the process. Everything is flushed; skip the interpreter's
            # teardown of torch and transformers, which alone can take seconds on a busy
            # machine and would break the 2 s stop promise (systemd's TimeoutStopSec).
            exit_now(code)
        return code


def exit_now(code: int) -> NoReturn:
    """Flush logs and standard streams, then end the process with ``code`` at once."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    os._exit(code)
