"""One key at a time for `review`.

On a terminal, stdin goes to cbreak mode (each key arrives at once, unechoed; Ctrl-C still
interrupts) and is restored on the way out, whatever happens; an escape sequence (an arrow key) is
read whole, and no further, and reported as one ESC, which means nothing. Anything else (a pipe, a
file: tests, scripts) is read one character per decision, line breaks ignored. End of input reads
as None.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import select
from collections.abc import Callable, Iterator
from typing import TextIO

ESC = "\x1b"
ESCAPE_TAIL_S = 0.03
"""How long the rest of an escape sequence may take to arrive after its ESC."""

NextKey = Callable[[], str | None]


@contextlib.contextmanager
def open_keys(stream: TextIO) -> Iterator[NextKey]:
    """A function returning the next key (None at end of input), for as long as the block runs."""
    if not stream.isatty():
        yield lambda: _next_char(stream)
        return
    import termios
    import tty

    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        yield lambda: _next_tty_key(fd, decoder)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _next_char(stream: TextIO) -> str | None:
    while True:
        char = stream.read(1)
        if not char:
            return None
        if char not in "\r\n":
            return char


def _next_tty_key(fd: int, decoder: codecs.IncrementalDecoder) -> str | None:
    while True:
        data = os.read(fd, 1)
        if not data:
            return None
        key = decoder.decode(data)
        if key == ESC:
            _drain(fd)
            return ESC
        if key and key not in "\r\n":
            return key


def _drain(fd: int) -> None:
    """Read the rest of the escape sequence an ESC began (an arrow key: ``ESC [ A``; ``ESC O P``;
    Alt and a key), and nothing after it, so that neither it nor the next key is lost or misread."""
    first = _byte_soon(fd)
    if first == b"O":
        _byte_soon(fd)
    elif first == b"[":
        while (byte := _byte_soon(fd)) and not 0x40 <= byte[0] <= 0x7E:  # up to CSI's final byte
            pass


def _byte_soon(fd: int) -> bytes:
    """The next byte if one arrives within ESCAPE_TAIL_S, else b""."""
    if not select.select([fd], [], [], ESCAPE_TAIL_S)[0]:
        return b""
    return os.read(fd, 1)
