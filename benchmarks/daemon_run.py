"""Run ``streamclf listen`` as a child process and watch it: READY datagrams, event sockets, stdout,
CPU time, context switches and peak RSS. Used by the latency, idle and start-up benchmarks."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import child_env, cli_command


@dataclass
class Received:
    """One JSON line and the ``time.monotonic()`` at which this process read it."""

    at: float
    event: dict


class NotifyListener:
    """A private ``NOTIFY_SOCKET``: records when each systemd notify message arrives."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / f"notify-{time.monotonic_ns()}.sock"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.path))
        self._sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self.ready_at: float | None = None
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            text = data.decode(errors="replace")
            self.messages.append((now, text))
            if "READY=1" in text.split("\n") and self.ready_at is None:
                self.ready_at = now
                self.ready.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self._sock.close()


class LineReader:
    """Reads JSON lines from a stream in a thread, stamping each with its receive time."""

    def __init__(self, stream) -> None:
        self.lines: list[Received] = []
        self._stream = stream
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for raw in self._stream:
            now = time.monotonic()
            with contextlib.suppress(ValueError):
                self.lines.append(Received(now, json.loads(raw)))

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class SocketSubscriber:
    """Connects to a daemon's unix event socket (retrying until it exists) and reads its lines."""

    def __init__(self, path: Path, give_up_s: float = 60.0) -> None:
        self.path = path
        self.reader: LineReader | None = None
        self.connected_at: float | None = None
        self._give_up = time.monotonic() + give_up_s
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._connect, daemon=True)
        self._thread.start()

    def _connect(self) -> None:
        while time.monotonic() < self._give_up:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(self.path))
            except OSError:
                sock.close()
                time.sleep(0.005)
                continue
            self._sock = sock
            self.connected_at = time.monotonic()
            self.reader = LineReader(sock.makefile("rb"))
            return

    @property
    def lines(self) -> list[Received]:
        return self.reader.lines if self.reader is not None else []

    def close(self) -> None:
        self._thread.join(1.0)
        if self.reader is not None:
            self.reader.join(2.0)
        if self._sock is not None:
            self._sock.close()


@dataclass
class Child:
    process: subprocess.Popen
    started_at: float
    notify: NotifyListener
    stdout: LineReader
    stderr_path: Path
    peak_rss_kib: int | None = None
    extra: dict = field(default_factory=dict)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (if still running), reap with wait4 and record the peak RSS."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.reap(timeout)

    def reap(self, timeout: float = 600.0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
            if pid != 0:
                self.peak_rss_kib = int(usage.ru_maxrss)
                self.process.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                self.process.kill()
                deadline = time.monotonic() + 10.0
            time.sleep(0.01)
        self.stdout.join(5.0)
        self.notify.close()
        return int(self.process.returncode)

    def stderr_tail(self, lines: int = 5) -> str:
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def listen(args: Sequence[str], work: Path, env_extra: dict[str, str] | None = None) -> Iterator[Child]:
    """Start ``streamclf listen ARGS --json`` with a private NOTIFY_SOCKET; always reaped on exit."""
    notify = NotifyListener(work)
    env = {**child_env(), **(env_extra or {}), "NOTIFY_SOCKET": str(notify.path)}
    stderr_path = work / f"stderr-{time.monotonic_ns()}.log"
    with open(stderr_path, "wb") as stderr:
        started = time.monotonic()
        process = subprocess.Popen(cli_command("listen", "--json", *args), stdout=subprocess.PIPE,
                                   stderr=stderr, env=env, cwd=work)
    child = Child(process, started, notify, LineReader(process.stdout), stderr_path)
    try:
        yield child
    finally:
        if child.process.returncode is None:
            child.stop()


def task_switches(pid: int) -> dict[int, int]:
    """Voluntary + involuntary context switches of each thread of ``pid``."""
    counts: dict[int, int] = {}
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        total = 0
        try:
            for line in status.read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split(":")[1])
        except (OSError, ValueError):
            continue
        counts[int(status.parent.name)] = total
    return counts


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all threads) from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
