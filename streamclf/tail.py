"""``streamclf tail [URI]``: subscribe to a running daemon's event socket and print.

On a terminal each event becomes one short readable line (Rich); when stdout is a pipe the
JSON lines pass through untouched, so ``streamclf tail | jq`` works. Exit 3 when nothing
listens at the address, 1 when the daemon goes away, 0 on Ctrl-C or a closed pipe.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.text import Text

from .errors import EXIT_OK, EXIT_RUNTIME, EXIT_STARTUP, StartupError
from .events import DecodeError, ErrorEvent, Event, SpeechEvent, StatusEvent, UtteranceEvent, decode
from .sinks.socket import TcpAddress, UnixAddress, parse_publish_uri

log = logging.getLogger(__name__)

SYSTEM_URI = "unix:///run/streamclf/events.sock"
"""Where the system unit publishes."""
CONNECT_TIMEOUT_S = 5.0


def default_tail_uri() -> str:
    """The system unit's socket, or the user unit's (``$XDG_RUNTIME_DIR/streamclf``) when only it exists."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and not Path("/run/streamclf/events.sock").exists():
        user_socket = Path(runtime) / "streamclf" / "events.sock"
        if user_socket.exists():
            return f"unix://{user_socket}"
    return SYSTEM_URI


def connect(uri: str) -> socket.socket:
    """A connected stream socket; StartupError with a one-line reason when that fails."""
    target = parse_publish_uri(uri)
    try:
        if isinstance(target, UnixAddress):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            sock.settimeout(CONNECT_TIMEOUT_S)
            try:
                sock.connect(os.fspath(target.path))
            except OSError:
                sock.close()
                raise
        else:
            assert isinstance(target, TcpAddress)
            sock = socket.create_connection((target.host, target.port), timeout=CONNECT_TIMEOUT_S)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        hint = "is streamclf listen --publish running?"
        raise StartupError(f"cannot connect to {uri}: {reason} ({hint})") from None
    sock.settimeout(None)
    return sock


def read_lines(sock: socket.socket) -> Iterator[bytes]:
    """Each complete line from the socket, until the peer closes it."""
    with sock.makefile("rb") as stream:
        yield from stream


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:7.2f}"


def describe(event: Event) -> Text:
    """One short line for a person. Labels and messages are shown as text, never as markup."""
    if isinstance(event, UtteranceEvent):
        line = Text(f"{_seconds(event.start)}–{_seconds(event.end).strip()}s  ")
        if event.accepted and event.label is not None:
            line.append(event.label, style="bold green")
        else:
            line.append("(rejected)", style="yellow")
        if event.intents:
            ranked = "  ".join(f"{i.label} {i.score:.2f}" for i in event.intents)
            line.append(f"  {ranked}", style="dim")
        line.append(f"  {event.latency_ms:.1f} ms", style="dim")
        if event.file:
            line.append(f"  {event.file}", style="dim")
        return line
    if isinstance(event, SpeechEvent):
        return Text(f"{_seconds(event.t)}s  speech {event.state}", style="cyan")
    if isinstance(event, StatusEvent):
        counters = " ".join(f"{k}={v}" for k, v in event.counters.items())
        return Text(f"status  {event.state}  {event.source}  {event.model}  {counters}", style="blue")
    if isinstance(event, ErrorEvent):
        return Text(f"error  {event.code}: {event.message}", style="bold red")
    return Text(repr(event))


class _Printer:
    """Writes each received line either raw or as a readable line."""

    def __init__(self, pretty: bool, out: TextIO) -> None:
        self.pretty = pretty
        self.out = out
        self.console = Console(file=out, highlight=False, soft_wrap=True) if pretty else None

    def line(self, raw: bytes) -> None:
        if self.console is None:
            self.out.write(raw.decode("utf-8", errors="replace"))
            self.out.flush()
            return
        try:
            text = describe(decode(raw))
        except DecodeError as exc:
            shown = raw.decode("utf-8", errors="replace").rstrip()
            text = Text(f"(not an event: {exc}) {shown}", style="dim")
        self.console.print(text)


def run_tail(uri: str, pretty: bool | None = None, out: TextIO | None = None) -> int:
    """Print events from ``uri`` until the daemon goes away; returns the exit code."""
    out = sys.stdout if out is None else out
    if pretty is None:
        pretty = out.isatty()
    try:
        sock = connect(uri)
    except StartupError as exc:
        print(f"streamclf tail: {exc}", file=sys.stderr)
        return EXIT_STARTUP
    printer = _Printer(pretty, out)
    try:
        for raw in read_lines(sock):
            printer.line(raw)
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:
        # the reader of our stdout went away (| head): quietly done; point stdout at
        # /dev/null so the interpreter's final flush does not complain
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, out.fileno())
            os.close(devnull)
        return EXIT_OK
    except OSError as exc:
        print(f"streamclf tail: connection to {uri} failed: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_RUNTIME
    finally:
        sock.close()
    print(f"streamclf tail: {uri} closed the connection (daemon stopped?)", file=sys.stderr)
    return EXIT_RUNTIME


def add_tail_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``tail [URI] [--pretty|--raw]`` on the CLI's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "tail", help="print the events of a running daemon (its --publish socket)",
        description="Subscribe to a running daemon's event socket and print each event: "
                    "readable lines on a terminal, raw JSON lines when piped.")
    parser.add_argument("uri", nargs="?", default=None,
                        help=f"unix:///PATH or tcp://HOST:PORT (default: {SYSTEM_URI}, or the user "
                             "unit's $XDG_RUNTIME_DIR/streamclf/events.sock when only that exists)")
    style = parser.add_mutually_exclusive_group()
    style.add_argument("--pretty", dest="pretty", action="store_true", default=None,
                       help="readable lines even when piped")
    style.add_argument("--raw", dest="pretty", action="store_false", help="raw JSON lines even on a terminal")
    parser.set_defaults(func=run_tail_command)
    return parser


def run_tail_command(args: argparse.Namespace) -> int:
    return run_tail(args.uri or default_tail_uri(), args.pretty)
