"""systemd's notify protocol, spoken directly: one datagram per state change.

``NOTIFY_SOCKET`` names an ``AF_UNIX`` datagram socket (a path, or ``@name`` for an abstract
one). Each message is ``KEY=VALUE`` lines: ``READY=1``, ``STATUS=…``, ``WATCHDOG=1``,
``STOPPING=1``, ``RELOADING=1`` (with ``MONOTONIC_USEC=``). Without ``NOTIFY_SOCKET`` every
method does nothing, so the daemon calls them unconditionally. A failed send never raises
into the pipeline: it is logged once, then counted.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


def _socket_address(value: str) -> str | bytes:
    """The address to send to: a filesystem path, or a NUL-prefixed abstract name."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds systemd waits for a ping, when the watchdog is meant for this process."""
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000


class Notifier:
    """Sends sd_notify messages; a no-op when ``address`` is None."""

    def __init__(self, address: str | None, watchdog_interval_s: float | None = None) -> None:
        self.address = address
        self.watchdog_interval_s = watchdog_interval_s
        """Seconds systemd waits for WATCHDOG=1 (WatchdogSec=); None when no watchdog is set."""
        self.sent = 0
        self.failures = 0
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        """Read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` (default: ``os.environ``)."""
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET") or None
        if address is not None and not (address.startswith("/") or address.startswith("@")):
            log.warning("NOTIFY_SOCKET=%r is neither a path nor an abstract @name; notify is off", address)
            address = None
        return cls(address, _watchdog_interval(env))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_enabled(self) -> bool:
        return self.enabled and self.watchdog_interval_s is not None

    def ready(self) -> bool:
        return self.send("READY=1")

    def status(self, text: str) -> bool:
        """One line of human-readable state (``systemctl status`` shows it)."""
        return self.send("STATUS=" + text.replace("\n", " "))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def reloading(self) -> bool:
        """Start of a reload; send ``ready()`` when it is over."""
        return self.send(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def send(self, message: str) -> bool:
        """Send one datagram; True when it went out. Never raises."""
        if self.address is None:
            return False
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(message.encode(), _socket_address(self.address))
            except OSError as exc:
                self.failures += 1
                if self.failures == 1:
                    log.warning("systemd notify to %s failed: %s (further failures are only counted)",
                                self.address, exc)
                return False
            self.sent += 1
            return True

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


DEFAULT_STALL_S = 5.0
"""Seconds of silence from a stage that count as a stall when systemd set no watchdog."""


class ProgressWatchdog:
    """Sends ``WATCHDOG=1`` only while every pipeline stage shows recent progress.

    ``progress()`` returns the ``time.monotonic()`` of each stage's last sign of life (capture,
    worker). A stage silent for longer than half the watchdog interval counts as stalled and the
    pings stop, so systemd restarts a daemon whose capture hangs. Pings go out every quarter
    interval; call :meth:`tick` at least that often.
    """

    def __init__(self, notifier: Notifier, progress: Callable[[], Mapping[str, float]]) -> None:
        self.notifier = notifier
        self.progress = progress
        interval = notifier.watchdog_interval_s if notifier.enabled else None
        self.enabled = interval is not None
        self.ping_every_s = (interval or 0.0) / 4
        self.stall_after_s = interval / 2 if interval is not None else DEFAULT_STALL_S
        self.stalled: tuple[str, ...] = ()
        self._last_ping = -math.inf

    def stalled_stages(self, now: float) -> tuple[str, ...]:
        """Stages silent for more than ``stall_after_s`` (also used for STATUS= text)."""
        return tuple(name for name, t in self.progress().items() if now - t > self.stall_after_s)

    def tick(self, now: float | None = None) -> bool:
        """Ping if one is due and nothing is stalled; True when a ping went out."""
        if not self.enabled:
            return False
        now = time.monotonic() if now is None else now
        if now - self._last_ping < self.ping_every_s:
            return False
        stalled = self.stalled_stages(now)
        if stalled != self.stalled:
            if stalled:
                log.warning("no progress from %s for over %.1f s: withholding watchdog pings",
                            ", ".join(stalled), self.stall_after_s)
            else:
                log.info("pipeline progressing again: watchdog pings resume")
            self.stalled = stalled
        if stalled:
            return False
        self._last_ping = now
        return self.notifier.watchdog()
