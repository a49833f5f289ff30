"""Logging set-up: stderr only (stdout carries JSON), one line per record.

On a terminal records get colour; elsewhere (a pipe, a file, journald) they are plain
single lines. Under journald (``JOURNAL_STREAM`` matches stderr) each line starts with a
``<N>`` syslog priority prefix so ``journalctl -p`` filters by level, and the timestamp is
left to the journal.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import IO

LEVELS = ("debug", "info", "warning", "error")

_COLOURS = {
    logging.DEBUG: "\x1b[2m",
    logging.INFO: "",
    logging.WARNING: "\x1b[33m",
    logging.ERROR: "\x1b[31m",
    logging.CRITICAL: "\x1b[1;31m",
}
_RESET = "\x1b[0m"

# sd-daemon(3) priorities, read by journald from the start of each stderr line
_SYSLOG_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


def _one_line(text: str) -> str:
    return text.replace("\r", "").replace("\n", " ⏎ ")


class OneLineFormatter(logging.Formatter):
    """``LEVEL name: message``; tracebacks and embedded newlines folded into the same line."""

    def __init__(self, *, colour: bool = False, journal: bool = False, timestamps: bool = True) -> None:
        fmt = "%(levelname)s %(name)s: %(message)s"
        if timestamps and not journal:
            fmt = "%(asctime)s " + fmt
        super().__init__(fmt, datefmt="%Y-%m-%dT%H:%M:%S")
        self.colour = colour
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        line = _one_line(super().format(record))
        if self.journal:
            return f"<{_SYSLOG_PRIORITY.get(record.levelno, 6)}>{line}"
        if self.colour and (start := _COLOURS.get(record.levelno, "")):
            return f"{start}{line}{_RESET}"
        return line

    def formatException(self, ei: object) -> str:
        return _one_line(super().formatException(ei))  # type: ignore[arg-type]


def under_journald(stream: IO[str]) -> bool:
    """True when ``stream`` is the journal's stdout/stderr connection (``JOURNAL_STREAM``)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not device.isdigit() or not inode.isdigit():
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return st.st_dev == int(device) and st.st_ino == int(inode)


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (ValueError, AttributeError):
        return False


def setup_logging(level: str = "info", stream: IO[str] | None = None) -> logging.Handler:
    """Route the ``streamclf`` loggers (and warnings) to ``stream`` (default stderr) at ``level``.

    Calling it again (after a reload changed ``output.log_level``) replaces the handler.
    """
    if level.lower() not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
    stream = sys.stderr if stream is None else stream
    journal = under_journald(stream)
    no_colour = "NO_COLOR" in os.environ
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter(colour=_is_terminal(stream) and not no_colour and not journal,
                                          journal=journal))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_streamclf", False)]:
        root.removeHandler(old)
    handler._streamclf = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    numeric = getattr(logging, level.upper())
    root.setLevel(numeric)
    # third-party libraries stay quiet unless we are debugging
    library_level = logging.DEBUG if numeric == logging.DEBUG else max(numeric, logging.WARNING)
    for noisy in ("transformers", "urllib3", "filelock", "huggingface_hub", "torch"):
        logging.getLogger(noisy).setLevel(library_level)
    logging.captureWarnings(True)
    return handler


def add_log_level_argument(parser: argparse.ArgumentParser) -> None:
    """``--log-level debug|info|warning|error`` on an argparse parser (default: the config's)."""
    parser.add_argument(
        "--log-level", choices=LEVELS, default=None,
        help="log level on stderr (default: output.log_level from the config, else info)")
