"""The `serve` life cycle: start-up, the event loop, shutdown.

Start-up fails fast (exit 3) on a bad server or publish address, model or VAD setting, before
the model is loaded where it can. Then one worker (the model's only user) and the outputs start,
and the Wyoming server runs on an asyncio loop in the main thread until SIGTERM or SIGINT (a
second SIGINT exits at once). Every ``output.status_interval_s`` a status event carries the
totals and each stream's counters; systemd gets ``READY=1`` once the server listens, ``STATUS=``
and ``WATCHDOG=1`` while the loop and the worker make progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from wyoming.event import Event
from wyoming.info import Attribution, Info, WakeModel, WakeProgram
from wyoming.server import AsyncServer, AsyncTcpServer, AsyncUnixServer

from .. import __version__
from ..bus import EventBus
from ..classifier import Classifier, load_classifier
from ..config import Settings
from ..errors import EXIT_OK, StartupError
from ..events import StatusEvent, is_command
from ..notify import Notifier, ProgressWatchdog
from ..segment import make_segmenter
from ..sinks.socket import BrokerOptions, Publisher, parse_any_publish_uri, start_any_publishers
from ..sinks.stream import StreamSink
from ..worker import Worker
from .address import ServeAddress, clear_stale_socket, parse_serve_uri
from .handler import HandlerOptions, StreamHandler
from .hub import StreamHub

log = logging.getLogger(__name__)

TICK_S = 0.25
"""Longest sleep of the main loop (watchdog, status)."""
STOP_LIMIT_S = 1.5
"""Seconds from SIGTERM for the worker to finish what it holds."""


def build_info(classifier: Classifier) -> Event:
    """The ``info`` answer: a wake-word service whose models are the classifier's commands."""
    who = Attribution(name="streamclf", url="")
    commands = [label for label in classifier.labels if is_command(label)]
    models = [WakeModel(name=c, attribution=who, installed=True, description=c, version=None,
                        languages=[], phrase=c) for c in commands]
    program = WakeProgram(name="streamclf", attribution=who, installed=True, version=__version__,
                          description=f"streamclf spoken commands (model {classifier.name})", models=models)
    return Info(wake=[program]).event()


def _no_reload() -> None:
    log.warning("serve does not reload its configuration; restart it to apply a new one")


class ServeService:
    def __init__(self, settings: Settings, notifier: Notifier | None = None) -> None:
        self.settings = settings
        self.notifier = notifier or Notifier.from_env()
        self.bus = EventBus()
        self.publishers: list[Publisher] = []
        self.stdout_sink: StreamSink | None = None
        self.hub: StreamHub | None = None
        self.worker: Worker | None = None
        self._stop: asyncio.Event | None = None
        self._sigints = 0
        self._beat = time.monotonic()

    # ---- start-up -----------------------------------------------------------------------

    def run(self) -> int:
        s = self.settings
        address = parse_serve_uri(s.serve.uri, allow_remote=s.serve.allow_remote)
        for uri in s.output.publish:  # a bad address fails before the slow model load
            parse_any_publish_uri(uri)
        if address.unix is not None:
            clear_stale_socket(address.unix)
        self.notifier.status(f"loading model {s.model.model or '(bundled default)'}")
        classifier = load_classifier(s.model)
        classifier.warm_up()
        first = make_segmenter(s.vad, classifier.sample_rate)  # a VAD that cannot run fails here
        self._start_outputs(classifier)
        try:
            return asyncio.run(self._serve(address, classifier, first))
        finally:
            self._close_outputs()

    def _start_outputs(self, classifier: Classifier) -> None:
        out = self.settings.output
        broker = BrokerOptions(self.settings.mqtt, tuple(classifier.labels), classifier.name)
        self.publishers = start_any_publishers(out.publish, self.bus, buffer_events=out.subscriber_buffer,
                                               allow_remote=out.allow_remote, broker=broker)
        json_out = out.json if out.json is not None else not sys.stdout.isatty()
        if json_out:
            from ..sinks.jsonl import JsonlSink

            self.stdout_sink = JsonlSink(self.bus.subscribe("stdout", out.stdout_buffer, "drop"))
        else:
            from ..sinks.pretty import PrettySink

            self.stdout_sink = PrettySink(self.bus.subscribe("stdout", out.stdout_buffer, "drop"))
        self.stdout_sink.start()

    async def _serve(self, address: ServeAddress, classifier: Classifier, first: Any) -> int:
        s = self.settings
        spare = [first]
        self.hub = StreamHub(
            self.bus, lambda: spare.pop() if spare else make_segmenter(s.vad, classifier.sample_rate),
            max_streams=s.serve.max_streams, stream_segments=s.serve.stream_segments,
            speech_events=s.output.speech_events)
        # every stream may have stream_segments waiting: the shared queue never drops one
        queue = max(s.model.queue_size, s.serve.max_streams * s.serve.stream_segments)
        self.worker = Worker(classifier, self.bus.publish, source="serve", top_k=s.model.top_k,
                             threshold=s.model.threshold, max_batch=s.model.max_batch, queue_size=queue,
                             on_done=self.hub.on_done)
        self.hub.worker = self.worker
        self.worker.start()
        options = HandlerOptions(build_info(classifier), s.serve.send_buffer_kib * 1024, s.serve.max_chunk_s)
        server = await self._listen(address, partial(StreamHandler, hub=self.hub, options=options))
        try:
            await self._main_loop(address)
        finally:
            await server.stop()
            self._finish_worker()
        return EXIT_OK

    async def _listen(self, address: ServeAddress, factory: Callable[..., StreamHandler]) -> AsyncServer:
        server: AsyncServer
        if address.unix is not None:
            clear_stale_socket(address.unix)
            server = AsyncUnixServer(address.unix)
        else:
            server = AsyncTcpServer(address.host, address.port)
        try:
            await server.start(factory)
        except OSError as exc:
            raise StartupError(f"serve {address.uri}: cannot listen: {exc.strerror or exc}") from None
        log.info("serving Wyoming clients on %s", address.uri)
        return server

    # ---- the main loop ------------------------------------------------------------------

    async def _main_loop(self, address: ServeAddress) -> None:
        assert self.worker is not None
        self._stop = asyncio.Event()
        self._install_signals()
        worker = self.worker
        watchdog = ProgressWatchdog(self.notifier,
                                    lambda: {"server": self._beat, "worker": worker.last_progress})
        self.notifier.ready()
        interval = self.settings.output.status_interval_s
        next_status = time.monotonic()
        while not self._stop.is_set():
            self._beat = now = time.monotonic()
            watchdog.tick(now)
            if now >= next_status:
                self.publish_status("serving", address)
                next_status = now + interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=min(TICK_S, max(0.01, next_status - now)))
        self.notifier.stopping()
        self.publish_status("stopped", address)

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._on_stop)
        loop.add_signal_handler(signal.SIGINT, self._on_interrupt)
        loop.add_signal_handler(signal.SIGHUP, _no_reload)

    def _on_stop(self) -> None:
        assert self._stop is not None
        self._stop.set()

    def _on_interrupt(self) -> None:
        self._sigints += 1
        if self._sigints > 1:
            os.write(2, b"streamclf: interrupted again; exiting now\n")
            os._exit(130)
        self._on_stop()

    # ---- observation --------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        assert self.hub is not None and self.worker is not None
        t = self.hub.totals
        counters = {"streams": len(self.hub.streams), "connections": t.connections, "refused": t.refused,
                    "cut_off": t.cut_off, "bad_input": t.bad_input, **self.worker.counters(),
                    "queued": self.worker.queued, "dropped_events": self.bus.dropped}
        for publisher in self.publishers:
            for key, value in publisher.counters().items():
                counters[key] = counters.get(key, 0) + value
        return counters

    def publish_status(self, state: str, address: ServeAddress) -> None:
        assert self.hub is not None and self.worker is not None
        counters = self.counters()
        self.bus.publish(StatusEvent(f"wyoming {address.uri}", self.worker.classifier.name, state, counters,
                                     streams=self.hub.stream_counters()))
        self.notifier.status(f"{state} on {address.uri}: {counters['streams']} streams, "
                             f"{counters['classified']} classified, {counters['dropped_segments']} dropped")

    # ---- shutdown -----------------------------------------------------------------------

    def _finish_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop(drain=True, timeout=STOP_LIMIT_S)

    def _close_outputs(self) -> None:
        deadline = time.monotonic() + 1.0
        if self.stdout_sink is not None:
            self.stdout_sink.close(timeout=max(0.05, deadline - time.monotonic()))
        for publisher in self.publishers:
            publisher.close(flush_timeout_s=max(0.05, deadline - time.monotonic()))
        self.notifier.close()
