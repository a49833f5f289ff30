"""SIGHUP: re-read the settings and apply them to the running daemon, or keep the old ones.

The work runs in its own thread so the main loop keeps answering the watchdog. Everything that can
fail happens first (reading the config, loading a changed model beside the running one, opening new
event sockets); then the new settings are committed at once. A failure leaves the running settings
as they were and publishes an ``error`` event that says why. Capture, VAD and the stdout mode need a
restart: their changes are logged and kept for the next start.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from .bus import EventBus
from .classifier import Classifier, load_classifier
from .config import ModelSettings, Settings, load_settings
from .errors import StreamclfError
from .events import ErrorEvent
from .notify import Notifier
from .outputs import Sinks
from .pipeline import Pipeline
from .sinks.socket import BrokerOptions, SocketPublisher, start_any_publishers
from .worker import Worker

log = logging.getLogger(__name__)

SettingsLoader = Callable[[], Settings]


class Reloadable(Protocol):
    """The running daemon as a reload sees it."""

    settings: Settings
    classifier: Classifier | None
    worker: Worker | None
    pipeline: Pipeline | None
    sinks: Sinks
    bus: EventBus
    notifier: Notifier
    ready: bool


def model_identity(model: ModelSettings) -> tuple[object, ...]:
    """What decides which classifier is loaded; top-k and threshold apply without a reload."""
    return (model.model, model.backend, model.threads)


def reread_config_file(config_path: Path | None, running: Settings) -> Settings:
    """The config file's settings, keeping the running capture, output mode and publish addresses
    (they may have come from the command line)."""
    fresh = load_settings(config_path)
    output = dataclasses.replace(fresh.output, json=running.output.json, publish=running.output.publish)
    return dataclasses.replace(fresh, capture=running.capture, output=output)


def keep_what_needs_a_restart(old: Settings, fresh: Settings) -> Settings:
    """Capture, VAD, the stdout mode and the kept folder stay as they are until a restart (logged)."""
    kept = []
    if fresh.capture != old.capture:
        kept.append("capture")
    if fresh.vad != old.vad:
        kept.append("vad")
    if fresh.output.json != old.output.json:
        kept.append("output.json")
    if fresh.keep != old.keep:
        kept.append("keep")
    if kept:
        log.warning("reload: changes to %s take effect at the next restart", ", ".join(kept))
    output = dataclasses.replace(fresh.output, json=old.output.json)
    return dataclasses.replace(fresh, capture=old.capture, vad=old.vad, output=output, keep=old.keep)


class Reloader:
    """Runs one reload at a time in a background thread; counts reloads and refusals."""

    def __init__(self, daemon: Reloadable, loader: SettingsLoader, config_path: Path | None = None) -> None:
        self.daemon = daemon
        self.loader = loader
        self.config_path = config_path
        self.requested = threading.Event()
        self.reloads = 0
        self.failures = 0
        self._thread: threading.Thread | None = None

    def start_if_requested(self) -> None:
        """From the main loop: start the requested reload unless one is still running (the request
        then stays set and another reload follows when this one is done)."""
        if not self.requested.is_set() or (self._thread is not None and self._thread.is_alive()):
            return
        self.requested.clear()
        self._thread = threading.Thread(target=self.reload, name="reload", daemon=True)
        self._thread.start()

    def reload(self) -> bool:
        """Re-read the settings and apply them; on any failure keep the old ones. True on success."""
        daemon = self.daemon
        was_ready = daemon.ready  # before READY=1, systemd is still waiting for start-up to finish
        if was_ready:
            daemon.notifier.reloading()
        log.info("reloading the configuration%s", f" from {self.config_path}" if self.config_path else "")
        try:
            daemon.settings = self._apply(self.loader())
        except StreamclfError as exc:
            self._refused(str(exc))
            return False
        except Exception as exc:  # a model that breaks in an unforeseen way must not kill the daemon
            log.exception("reload failed")
            self._refused(f"{type(exc).__name__}: {exc}")
            return False
        finally:
            if was_ready:
                daemon.notifier.ready()
        self.reloads += 1
        log.info("reload done")
        return True

    def _apply(self, fresh: Settings) -> Settings:
        """Load what can fail, then commit. Returns the settings now in effect."""
        daemon = self.daemon
        old = daemon.settings
        fresh = keep_what_needs_a_restart(old, fresh)
        new_classifier = None
        if model_identity(fresh.model) != model_identity(old.model):
            daemon.notifier.status(f"reloading: loading model {fresh.model.model or '(bundled default)'}")
            new_classifier = load_classifier(fresh.model)  # beside the running one
            new_classifier.warm_up()
        running = {p.uri: p for p in daemon.sinks.publishers}
        out = fresh.output
        classifier = new_classifier or daemon.classifier
        assert classifier is not None
        broker = BrokerOptions(fresh.mqtt, tuple(classifier.labels), classifier.name)
        added = start_any_publishers([u for u in out.publish if u not in running], daemon.bus,
                                     buffer_events=out.subscriber_buffer, allow_remote=out.allow_remote,
                                     broker=broker)
        # commit: nothing below can fail on settings that passed validation
        self._commit_model(fresh.model, new_classifier)
        kept = [p for uri, p in running.items() if uri in out.publish]
        for uri, publisher in running.items():
            if uri not in out.publish:
                publisher.close()
        for publisher in kept:
            if isinstance(publisher, SocketPublisher):  # an MQTT buffer is mqtt.buffer_events
                publisher.buffer_events = out.subscriber_buffer  # for clients that connect from now on
        daemon.sinks.publishers = kept + added
        assert daemon.pipeline is not None
        daemon.pipeline.speech_events = out.speech_events
        if out.log_level != old.output.log_level:
            from .logs import setup_logging

            setup_logging(out.log_level)
        return fresh

    def _commit_model(self, model: ModelSettings, new_classifier: Classifier | None) -> None:
        worker = self.daemon.worker
        assert worker is not None
        worker.update(top_k=model.top_k, threshold=model.threshold)
        worker.max_batch = model.max_batch
        worker.queue_size = model.queue_size
        if new_classifier is not None:
            worker.set_classifier(new_classifier)  # used from the next segment on
            self.daemon.classifier = new_classifier

    def _refused(self, reason: str) -> None:
        self.failures += 1
        log.error("reload refused, keeping the running settings: %s", reason)
        self.daemon.bus.publish(ErrorEvent("reload_failed", f"reload refused, old settings kept: {reason}"))
