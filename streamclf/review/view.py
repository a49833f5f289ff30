"""What `review` shows, drawn with Rich on stderr (stdout stays free for JSON in this project)."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..keep.rows import KeptClip
from .session import Outcome

TOP_SHOWN = 5
"""Ranked intents shown per clip."""


class ReviewView:
    """Draws the key map, each clip, notes and the summary on ``console``."""

    def __init__(self, console: Console, keymap: Mapping[str, str]) -> None:
        self.console = console
        self.keymap = keymap

    def keys(self) -> None:
        table = Table(title="label keys", show_header=False, box=None, pad_edge=False)
        columns = 4
        cells = [Text.assemble((f"{key} ", "bold cyan"), label) for key, label in self.keymap.items()]
        for start in range(0, len(cells), columns):
            table.add_row(*cells[start:start + columns])
        self.console.print(table)
        self.console.print(
            "[bold]a[/] accept  [bold]d[/] discard  [bold]r[/] replay  [bold]s[/] skip  [bold]q[/] quit"
            "  · a label's key relabels"
        )

    def clip(self, index: int, total: int, clip: KeptClip) -> None:
        ranked = ", ".join(f"{i.label} {i.score:.2f}" for i in clip.intents[:TOP_SHOWN]) or "(no intents)"
        state = f"reviewed: {clip.label}" if clip.reviewed else "not reviewed"
        self.console.print(
            Text.assemble(
                (f"[{index}/{total}] ", "dim"), (clip.file_name, "bold"), f"  {clip.time}  {state}\n",
                "  top: ", (clip.predicted or "(none)", "bold green"), f" {clip.score:.2f}   ",
                (ranked, "dim"),
            )
        )

    def outcome(self, outcome: Outcome) -> None:
        self.console.print(Text(f"  → {outcome.describe()}", style="cyan"))

    def note(self, text: str) -> None:
        self.console.print(Text(text, style="yellow"))

    def summary(self, counts: Mapping[str, int]) -> None:
        self.console.print(", ".join(f"{n} {what}" for what, n in counts.items()))
