"""Single keys from standard input, read without blocking.

On a terminal the keys arrive one at a time (cbreak mode: no Enter needed, no echo; Ctrl-C still
interrupts), and the terminal is restored on exit. Otherwise (a pipe, a file, /dev/null) the same
characters are read from whatever stdin holds, newlines ignored, so a test or a script drives an
enrolment by writing "r" or "q" to the process's stdin. End of input simply means no more keys.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import tty
from collections import deque
from typing import IO, Any

ENTER = "\n"


class Keys:
    """Keys typed so far; use as a context manager (``with Keys() as keys``)."""

    def __init__(self, stream: IO[Any] | None = None) -> None:
        self._fd = _fileno(stream if stream is not None else sys.stdin)
        self.interactive = self._fd is not None and os.isatty(self._fd)
        """A person at a terminal: a take starts on Enter instead of at once."""
        self._saved: list[Any] | None = None
        self._pending: deque[str] = deque()

    def __enter__(self) -> Keys:
        if self.interactive and self._fd is not None:
            with contextlib.suppress(termios.error):
                self._saved = termios.tcgetattr(self._fd)
                tty.setcbreak(self._fd)
        return self

    def __exit__(self, *_: object) -> None:
        if self._saved is not None and self._fd is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def poll(self) -> str | None:
        """The next key (lower case; Enter as :data:`ENTER` on a terminal), or None when none waits."""
        if not self._pending:
            self._read_available()
        return self._pending.popleft() if self._pending else None

    def _read_available(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            ready, _, _ = select.select([fd], [], [], 0)
            data = os.read(fd, 64) if ready else None
        except (OSError, ValueError):
            data = b""
        if data == b"":  # end of input: stop asking
            self._fd = None
            return
        for char in (data or b"").decode("utf-8", "replace").lower():
            if char in "\r\n":
                if self.interactive:
                    self._pending.append(ENTER)
            elif char.isprintable() and not char.isspace():
                self._pending.append(char)


def _fileno(stream: IO[Any] | None) -> int | None:
    if stream is None:
        return None
    try:
        return stream.fileno()
    except (OSError, ValueError, AttributeError):
        return None
