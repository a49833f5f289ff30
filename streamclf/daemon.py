"""The `listen` daemon's life cycle: start-up, main loop, shutdown, signals, reload.

Start-up fails fast (exit 3) on a bad config, model, device or publish address. The main
loop only watches: status events (and systemd ``STATUS=``), ``READY=1`` once the model is
warm and the source delivered audio, ``WATCHDOG=1`` while the pipeline makes progress.
SIGTERM/SIGINT stop capture, let the worker finish the utterance in flight and flush every
sink within :data:`SHUTDOWN_LIMIT_S`; a second SIGINT exits at once. SIGHUP re-reads the
config in a background thread, loads a changed model beside the running one and swaps it
in between segments; when anything fails the old settings stay and an ``error`` event says why.
"""

# HANDOVER: service helper owns this file now
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import NoReturn

from .audio.sources import DEFAULT_STDIN_RATE, Source, StdinSource, open_source
from .bus import EventBus
from .classifier import Classifier, load_classifier
from .config import CaptureSettings, ModelSettings, Settings, load_settings
from .errors import EXIT_OK, EXIT_RUNTIME, StartupError, StreamclfError
from .events import ErrorEvent, StatusEvent
from .notify import Notifier, ProgressWatchdog
from .pipeline import Pipeline
from .segmenter import make_segmenter
from .sinks.jsonl import JsonlSink
from .sinks.socket import SocketPublisher, parse_publish_uri, start_publishers
from .worker import Worker

log = logging.getLogger(__name__)

SHUTDOWN_LIMIT_S = 1.8
"""Seconds from SIGTERM to exit: capture stops, the utterance in flight is classified, sinks flush."""
PIPELINE_SHARE_S = 1.2
"""Of that, the most the pipeline (capture thread and worker drain) may take."""
LOOP_TICK_S = 0.1
"""Longest sleep of the main loop (watchdog pings, READY, reload requests)."""

SettingsLoader = Callable[[], Settings]


@dataclass
class Sinks:
    """The outputs the daemon started, closed in order at shutdown."""

    jsonl: JsonlSink | None = None
    console_stop: threading.Event = field(default_factory=threading.Event)
    console_thread: threading.Thread | None = None
    publishers: list[SocketPublisher] = field(default_factory=list)

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


def _model_identity(model: ModelSettings) -> tuple[object, ...]:
    """What decides which classifier is loaded; top-k and threshold apply without a reload."""
    return (model.model, model.backend, model.threads)


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
        self.loader = loader or self._reread_config_file
        self.notifier = notifier or Notifier.from_env()
        self.bus = EventBus()
        self.stop_requested = threading.Event()
        self._wake = threading.Event()
        self._reload_requested = threading.Event()
        self._reload_thread: threading.Thread | None = None
        self._sigint_count = 0
        self.stop_signal: int | None = None
        """The signal that asked us to stop (SIGTERM/SIGINT), None when the source ended."""
        self.classifier: Classifier | None = None
        self.source: Source | None = None
        self.pipeline: Pipeline | None = None
        self.worker: Worker | None = None
        self.sinks = Sinks()
        self.ready = False
        self.reloads = 0
        self.reload_failures = 0
        self.watchdog: ProgressWatchdog | None = None

    # -- start-up -----------------------------------------------------------------------------
    def start(self) -> None:
        """Load and warm the model, open the source, start sinks and the pipeline (StartupError: exit 3)."""
        s = self.settings
        for uri in s.output.publish:  # a bad address fails before the slow model load
            parse_publish_uri(uri)
        self.notifier.status(f"loading model {s.model.model or '(bundled default)'}")
        classifier = load_classifier(s.model)
        classifier.warm_up()
        self.classifier = classifier
        self.source = _make_source(s.capture)
        self._start_sinks()  # first: events about a device we wait for must reach the sinks
        if not self._open_source(self.source):
            return  # stopped while waiting for the device
        self.worker = Worker(
            classifier,
            self.bus.publish,
            source=self.source.name,
            top_k=s.model.top_k,
            threshold=s.model.threshold,
            max_batch=s.model.max_batch,
            queue_size=s.model.queue_size,
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
        self.sinks.publishers = start_publishers(
            out.publish, self.bus, buffer_events=out.subscriber_buffer, allow_remote=out.allow_remote
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
        self._reload_requested.set()
        self._wake.set()

    # -- observation -----------------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        counters = self.pipeline.counters() if self.pipeline is not None else {}
        counters["subscribers"] = self.sinks.subscriber_count()
        counters["reloads"] = self.reloads
        counters["reload_failures"] = self.reload_failures
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
            if self._reload_requested.is_set():
                self._start_reload()
            if now >= next_status:
                self.bus.publish(self.status_event("listening"))
                if self.ready:
                    self.notifier.status(self.status_text("listening", now))
                next_status = now + self.settings.output.status_interval_s
            self._wake.wait(min(LOOP_TICK_S, max(0.01, next_status - now)))
            self._wake.clear()

    # -- reload ------------------------------------------------------------------------------------
    def _start_reload(self) -> None:
        if self._reload_thread is not None and self._reload_thread.is_alive():
            return  # the request stays set: another reload follows when this one is done
        self._reload_requested.clear()
        self._reload_thread = threading.Thread(target=self.reload, name="reload", daemon=True)
        self._reload_thread.start()

    def _reread_config_file(self) -> Settings:
        fresh = load_settings(self.config_path)
        keep = self.settings
        output = dataclasses.replace(fresh.output, json=keep.output.json, publish=keep.output.publish)
        return dataclasses.replace(fresh, capture=keep.capture, output=output)

    def reload(self) -> bool:
        """Re-read the settings and apply them; on any failure keep the old ones. True on success."""
        was_ready = self.ready  # before READY=1, systemd is still waiting for start-up to finish
        if was_ready:
            self.notifier.reloading()
        log.info("reloading the configuration%s", f" from {self.config_path}" if self.config_path else "")
        try:
            fresh = self.loader()
            self.settings = self._apply(fresh)
        except StreamclfError as exc:
            self._reload_failed(str(exc))
            return False
        except Exception as exc:  # a model that breaks in an unforeseen way must not kill the daemon
            log.exception("reload failed")
            self._reload_failed(f"{type(exc).__name__}: {exc}")
            return False
        finally:
            if was_ready:
                self.notifier.ready()
        self.reloads += 1
        log.info("reload done")
        return True

    def _apply(self, fresh: Settings) -> Settings:
        """Everything that can fail happens first (model load, new sockets); then the new
        settings are committed at once. Returns the settings now in effect."""
        old = self.settings
        assert self.worker is not None and self.pipeline is not None
        fresh = self._keep_what_needs_a_restart(old, fresh)

        new_classifier = None
        if _model_identity(fresh.model) != _model_identity(old.model):
            self.notifier.status(f"reloading: loading model {fresh.model.model or '(bundled default)'}")
            new_classifier = load_classifier(fresh.model)  # beside the running one
            new_classifier.warm_up()
        running = {p.uri: p for p in self.sinks.publishers}
        out = fresh.output
        added = start_publishers([u for u in out.publish if u not in running], self.bus,
                                 buffer_events=out.subscriber_buffer, allow_remote=out.allow_remote)

        # commit: nothing below can fail on settings that passed validation
        self.worker.update(top_k=fresh.model.top_k, threshold=fresh.model.threshold)
        self.worker.max_batch = fresh.model.max_batch
        self.worker.queue_size = fresh.model.queue_size
        if new_classifier is not None:
            self.worker.set_classifier(new_classifier)  # used from the next segment on
            self.classifier = new_classifier
        kept = [p for uri, p in running.items() if uri in out.publish]
        for uri, publisher in running.items():
            if uri not in out.publish:
                publisher.close()
        for publisher in kept:
            publisher.buffer_events = out.subscriber_buffer  # for clients that connect from now on
        self.sinks.publishers = kept + added
        self.pipeline.speech_events = out.speech_events
        if out.log_level != old.output.log_level:
            from .logs import setup_logging

            setup_logging(out.log_level)
        return fresh

    @staticmethod
    def _keep_what_needs_a_restart(old: Settings, fresh: Settings) -> Settings:
        """Capture, VAD and the stdout mode stay as they are until a restart (logged)."""
        kept = []
        if fresh.capture != old.capture:
            kept.append("capture")
        if fresh.vad != old.vad:
            kept.append("vad")
        if fresh.output.json != old.output.json:
            kept.append("output.json")
        if kept:
            log.warning("reload: changes to %s take effect at the next restart", ", ".join(kept))
        output = dataclasses.replace(fresh.output, json=old.output.json)
        return dataclasses.replace(fresh, capture=old.capture, vad=old.vad, output=output)

    def _reload_failed(self, reason: str) -> None:
        self.reload_failures += 1
        log.error("reload refused, keeping the running settings: %s", reason)
        self.bus.publish(ErrorEvent("reload_failed", f"reload refused, old settings kept: {reason}"))

    # -- shutdown ----------------------------------------------------------------------------------
    def shutdown(self) -> int:
        deadline = time.monotonic() + SHUTDOWN_LIMIT_S
        self.notifier.stopping()
        if self.pipeline is not None:
            self.notifier.status("stopping: finishing the utterance in flight")
            self.pipeline.stop(timeout=min(PIPELINE_SHARE_S, SHUTDOWN_LIMIT_S))
            self.bus.publish(self.status_event("stopped"))
        self.sinks.close(deadline)
        self.notifier.close()
        log.info("stopped in %.2f s", time.monotonic() - deadline + SHUTDOWN_LIMIT_S)
        if self.pipeline is not None and self.pipeline.failed is not None:
            return EXIT_RUNTIME
        return EXIT_OK

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
