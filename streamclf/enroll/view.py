"""What the user sees, on stderr: the prompt, a live input-level meter, and one line per outcome.

On a terminal a Rich ``Live`` panel shows the phrase to say, the take, the meter and the keys,
and each outcome (saved, discarded, nothing heard) is printed above it. Elsewhere (stderr is a
pipe or a file) there is no panel: each prompt and outcome is one plain line. The view reads the
listener's level and speech state; it never drives the enrolment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import IO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from ..sinks.console import meter

REFRESH_PER_SECOND = 12


@dataclass(frozen=True)
class Asking:
    """The take the user is asked for."""

    label: str
    phrase: str
    take_of: int
    """This take's place among the label's takes in this session (1-based)."""
    takes: int
    file_name: str
    """Where it will be written, relative to the folder."""
    waiting_for_enter: bool
    """A terminal: recording starts on Enter."""

    def line(self) -> str:
        return f'say "{self.phrase}"  (take {self.take_of} of {self.takes} → {self.file_name})'


class EnrolView:
    """The panel (on a terminal) and the outcome lines; use as a context manager."""

    def __init__(self, console: Console, level: Callable[[], float], speaking: Callable[[], bool]) -> None:
        self.console = console
        self._level = level
        self._speaking = speaking
        self._asking: Asking | None = None
        self._live: Live | None = None

    def __enter__(self) -> EnrolView:
        if self.console.is_terminal and _isatty(self.console.file):  # FORCE_COLOR alone draws no panel
            self._live = Live(get_renderable=self.render, console=self.console, transient=True,
                              redirect_stdout=False, redirect_stderr=False,
                              refresh_per_second=REFRESH_PER_SECOND)
            self._live.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def ask(self, asking: Asking) -> None:
        """Show the next prompt (a line of its own when there is no panel)."""
        self._asking = asking
        if self._live is None:
            self.say(asking.line())

    def recording(self) -> None:
        """Enter was pressed: the take is being recorded."""
        if self._asking is not None:
            self._asking = replace(self._asking, waiting_for_enter=False)

    def say(self, line: str, style: str = "") -> None:
        """One outcome line, kept in the scroll-back above the panel (plain text without one)."""
        self.console.print(Text(line, style=style if self._live else ""), soft_wrap=True, highlight=False)

    def render(self) -> RenderableType:
        """The panel (called by Live on its refresh thread)."""
        asking = self._asking
        if asking is None:
            return Text("starting…", style="dim")
        prompt = Text.assemble("Say  ", (f'"{asking.phrase}"', "bold cyan"),
                               (f"   take {asking.take_of} of {asking.takes} → {asking.file_name}", "dim"))
        state = self._state(asking)
        state.append("   ")
        state.append_text(meter(self._level()))
        keys = "Enter: record · r: redo the last take · q: quit" if asking.waiting_for_enter \
            else "r: redo the last take · q: quit"
        title = Text.assemble(("streamclf enroll", "bold"), f" · {asking.label}")
        return Panel(Group(prompt, state, Text(keys, style="dim")), title=title, title_align="left",
                     border_style="blue")

    def _state(self, asking: Asking) -> Text:
        if asking.waiting_for_enter:
            return Text("○ press Enter, then speak", style="bold yellow")
        if self._speaking():
            return Text("● hearing you", style="bold red")
        return Text("○ listening  ", style="bold green")


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
