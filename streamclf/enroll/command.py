"""`streamclf enroll`: the vocabulary, the folder and the microphone checked, then the session.

Everything that can be wrong before the first take (the vocabulary, the output folder, the
device) is found before anything is written and ends in one line (exit 3, as for `listen`).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from rich.console import Console

from ..audiofolder import METADATA
from ..config import Settings
from ..errors import EXIT_OK, StartupError
from .folder import EnrolFolder
from .keys import Keys
from .listener import MicListener
from .prompts import load_prompts
from .session import EnrolOptions, EnrolResult, Session
from .view import EnrolView


def run_enroll(settings: Settings, vocab: Path, out: Path, options: EnrolOptions,
               console: Console | None = None) -> int:
    """Enrol the user's voice into ``out``; the exit code (errors raise StreamclfError)."""
    prompts = load_prompts(vocab)
    folder = EnrolFolder(out)
    listener = MicListener(settings.capture, settings.vad)
    listener.open()
    view = EnrolView(console or Console(stderr=True), lambda: listener.level_dbfs, lambda: listener.speaking)
    try:
        _check_writable(out)
        with Keys() as keys, view:
            view.say(f"enrolling {_count(len(prompts), 'label')} × {_count(options.takes, 'take')} "
                     f"into {out} from {listener.device}")
            session = Session(prompts, folder, listener, keys, view, options)
            try:
                result = session.run()
            except KeyboardInterrupt:
                view.say(_summary(EnrolResult(tuple(session.saved), stopped=True), folder))
                raise
            view.say(_summary(result, folder), "bold")
    finally:
        listener.close()
    return EXIT_OK


def _check_writable(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise StartupError(f"--out {out}: not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"--out {out}: cannot create: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise StartupError(f"--out {out}: not writable")


def _summary(result: EnrolResult, folder: EnrolFolder) -> str:
    counts = Counter(take.label for take in result.saved)
    each = ", ".join(f"{label} {n}" for label, n in counts.items()) or "none"
    verb = "stopped after" if result.stopped else "enrolled"
    return (f"{verb} {_count(len(result.saved), 'take')} ({each}) into {folder.root}; "
            f"{METADATA} lists {len(folder.rows)} in all")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
