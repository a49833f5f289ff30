"""The Rich live view on stderr: listening state, input level, recent utterances, counters.

The view only reads: events from its own bus subscription, and the input level and counters
through the callables it is given. It never drives the pipeline, and it draws on stderr so
it never shares a stream with JSON lines on stdout.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..bus import Subscription
from ..events import ErrorEvent, Event, SpeechEvent, StatusEvent, UtteranceEvent

METER_FLOOR_DBFS = -60.0
"""The input meter's empty end; its full end is 0 dBFS."""

METER_WIDTH = 30
"""Characters of the input level meter."""

BAR_WIDTH = 20
"""Characters of a full (score 1.0) intent bar."""

REFRESH_PER_SECOND = 8

SHOWN_COUNTERS = (
    "segments",
    "overflows",
    "dropped_events",
    "classified",
    "dropped_segments",
    "errors",
    "device_losses",
)
"""Counters the view shows, in this order (when the pipeline reports them); the rest go to status events."""


def meter(dbfs: float, width: int = METER_WIDTH) -> Text:
    """A level bar from METER_FLOOR_DBFS to 0 dBFS, green, then yellow above −20, red above −6."""
    fraction = (min(0.0, max(METER_FLOOR_DBFS, dbfs)) - METER_FLOOR_DBFS) / -METER_FLOOR_DBFS
    filled = round(fraction * width)
    style = "red" if dbfs > -6.0 else "yellow" if dbfs > -20.0 else "green"
    text = Text("▕")
    text.append("█" * filled, style=style)
    text.append("░" * (width - filled), style="grey37")
    text.append("▏")
    shown = f"{dbfs:6.1f} dBFS" if dbfs > METER_FLOOR_DBFS * 2 else "  -inf dBFS"
    text.append(f" {shown}")
    return text


def score_bar(score: float, style: str, width: int = BAR_WIDTH) -> Text:
    """``score`` (0..1) as a bar of ``width`` characters."""
    filled = round(min(1.0, max(0.0, score)) * width)
    text = Text("█" * filled, style=style)
    text.append("░" * (width - filled), style="grey30")
    return text


@dataclass(frozen=True)
class _State:
    speaking: bool
    speech_t: float | None
    source: str
    model: str
    status: str | None
    last_error: str | None
    utterances: tuple[UtteranceEvent, ...]


class ConsoleView:
    """A Rich live view fed by an event subscription (see :meth:`run`)."""

    def __init__(
        self,
        subscription: Subscription,
        *,
        source: str,
        model: str,
        level: Callable[[], float],
        counters: Callable[[], dict[str, int]],
        console: Console | None = None,
        history: int = 8,
    ) -> None:
        if history < 1:
            raise ValueError("history must be ≥ 1")
        self.subscription = subscription
        self.console = console if console is not None else Console(stderr=True)
        self._level = level
        self._counters = counters
        self._lock = threading.Lock()
        self._source = source
        self._model = model
        self._speaking = False
        self._speech_t: float | None = None
        self._status: str | None = None
        self._last_error: str | None = None
        self._utterances: collections.deque[UtteranceEvent] = collections.deque(maxlen=history)

    def handle(self, event: Event) -> None:
        """Fold one event into the view's state."""
        with self._lock:
            if isinstance(event, SpeechEvent):
                self._speaking = event.state == "start"
                self._speech_t = event.t
            elif isinstance(event, UtteranceEvent):
                self._utterances.appendleft(event)
                self._model = event.model
            elif isinstance(event, StatusEvent):
                self._status = event.state
                self._source, self._model = event.source or self._source, event.model or self._model
            elif isinstance(event, ErrorEvent):
                self._last_error = f"{event.code}: {event.message}"

    def _snapshot(self) -> _State:
        with self._lock:
            return _State(
                self._speaking,
                self._speech_t,
                self._source,
                self._model,
                self._status,
                self._last_error,
                tuple(self._utterances),
            )

    def render(self) -> RenderableType:
        """The whole view as one renderable (called by Live on its refresh thread)."""
        state = self._snapshot()
        parts: list[RenderableType] = [self._header(state), self._utterance_table(state.utterances)]
        if state.last_error:
            error = Text(f"last error: {state.last_error}", style="red", overflow="ellipsis", no_wrap=True)
            parts.append(error)
        parts.append(self._counter_line())
        title = Text.assemble(("streamclf", "bold"), f" · {state.source} · model {state.model}")
        return Panel(Group(*parts), title=title, title_align="left", border_style="blue")

    def _header(self, state: _State) -> Text:
        if state.speaking:
            text = Text("● speaking ", style="bold red")
        else:
            text = Text("○ listening", style="bold green")
        if state.status and state.status not in ("running", "ready"):
            text.append(f" ({state.status})", style="yellow")
        text.append("   input ")
        text.append_text(meter(self._level()))
        return text

    @staticmethod
    def _utterance_table(utterances: tuple[UtteranceEvent, ...]) -> RenderableType:
        if not utterances:
            return Text("no utterances yet", style="dim")
        table = Table(box=None, pad_edge=False, expand=False, show_edge=False)
        table.add_column("#", justify="right", style="dim")
        table.add_column("time", no_wrap=True)
        table.add_column("label", no_wrap=True)
        table.add_column("intents", no_wrap=True)
        table.add_column("latency", justify="right", style="dim", no_wrap=True)
        for u in utterances:
            if u.accepted and u.label is not None:
                label = Text(f"✓ {u.label}", style="bold green")
            else:
                label = Text("✗ rejected", style="yellow")
            table.add_row(
                str(u.id),
                f"{u.start:7.2f}–{u.end:<7.2f}",
                label,
                _intent_bars(u),
                f"{u.latency_ms:.0f} ms",
            )
        return table

    def _counter_line(self) -> Text:
        counters = self._counters()
        text = Text()
        for key in (k for k in SHOWN_COUNTERS if k in counters):
            if text:
                text.append(" · ", style="dim")
            text.append(key.replace("_", " "), style="dim")
            text.append(f" {counters[key]}", style="bold")
        return text

    def run(self, stop: threading.Event) -> None:
        """Draw until ``stop`` is set, folding in events from the subscription."""
        with Live(
            get_renderable=self.render,
            console=self.console,
            redirect_stdout=False,
            redirect_stderr=False,
            refresh_per_second=REFRESH_PER_SECOND,
        ):
            while not stop.is_set():
                event = self.subscription.get(timeout=1.0 / REFRESH_PER_SECOND)
                if event is not None:
                    self.handle(event)
                    for more in self.subscription.drain():
                        self.handle(more)
                elif self.subscription.closed:
                    stop.wait(1.0 / REFRESH_PER_SECOND)


def _intent_bars(utterance: UtteranceEvent) -> Text:
    """One line per ranked intent: name, bar, score; the accepted label's bar in green."""
    width = max((len(i.label) for i in utterance.intents), default=0)
    text = Text()
    for rank, intent in enumerate(utterance.intents):
        if rank:
            text.append("\n")
        style = ("green" if utterance.accepted else "yellow") if rank == 0 else "grey50"
        text.append(f"{intent.label:<{width}} ")
        text.append_text(score_bar(intent.score, style))
        text.append(f" {intent.score:.2f}")
    return text
