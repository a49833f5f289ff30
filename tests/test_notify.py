"""The sd_notify protocol against real AF_UNIX datagram sockets (path and abstract)."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamclf.notify import Notifier, ProgressWatchdog


def _receive(sock: socket.socket) -> str:
    sock.settimeout(5.0)
    return sock.recv(4096).decode()


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    address = str(tmp_path / "notify.sock")
    sock.bind(address)
    yield sock, address
    sock.close()


@pytest.fixture
def abstract_socket() -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"streamclf-test-{uuid.uuid4().hex}"
    sock.bind(b"\0" + name.encode())
    yield sock, "@" + name
    sock.close()


def test_every_message_reaches_a_path_socket(path_socket: tuple[socket.socket, str]) -> None:
    sock, address = path_socket
    notifier = Notifier.from_env({"NOTIFY_SOCKET": address})
    assert notifier.enabled
    assert notifier.ready()
    assert _receive(sock) == "READY=1"
    notifier.status("listening on stdin\nmodel tiny")
    assert _receive(sock) == "STATUS=listening on stdin model tiny"
    notifier.watchdog()
    assert _receive(sock) == "WATCHDOG=1"
    notifier.stopping()
    assert _receive(sock) == "STOPPING=1"
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading()
    lines = _receive(sock).split("\n")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert lines[0] == "RELOADING=1"
    key, _, value = lines[1].partition("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after
    assert notifier.sent == 5
    notifier.close()


def test_abstract_socket(abstract_socket: tuple[socket.socket, str]) -> None:
    sock, address = abstract_socket
    notifier = Notifier.from_env({"NOTIFY_SOCKET": address})
    notifier.ready()
    assert _receive(sock) == "READY=1"
    notifier.watchdog()
    assert _receive(sock) == "WATCHDOG=1"


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()
    assert notifier.watchdog_interval_s is None


def test_watchdog_interval_honours_pid() -> None:
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}
    mine = Notifier.from_env(env)
    assert mine.watchdog_interval_s == 3.0
    assert mine.watchdog_enabled
    unset_pid = Notifier.from_env({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "500000"})
    assert unset_pid.watchdog_interval_s == 0.5
    other = Notifier.from_env({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval_s is None
    garbage = Notifier.from_env({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "soon"})
    assert garbage.watchdog_interval_s is None


def test_failed_sends_never_raise_and_log_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens.sock")})
    with caplog.at_level(logging.WARNING, logger="streamclf.notify"):
        for _ in range(5):
            assert not notifier.watchdog()
    assert notifier.failures == 5
    assert len([r for r in caplog.records if r.name == "streamclf.notify"]) == 1


def test_relative_notify_socket_is_ignored() -> None:
    assert not Notifier.from_env({"NOTIFY_SOCKET": "relative/path"}).enabled


def test_progress_watchdog_pings_only_while_every_stage_progresses(
        path_socket: tuple[socket.socket, str], caplog: pytest.LogCaptureFixture) -> None:
    sock, address = path_socket
    notifier = Notifier.from_env({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "2000000"})
    stages = {"capture": 100.0, "worker": 100.0}
    watchdog = ProgressWatchdog(notifier, lambda: stages)
    assert watchdog.ping_every_s == 0.5 and watchdog.stall_after_s == 1.0

    assert watchdog.tick(now=100.2)
    assert _receive(sock) == "WATCHDOG=1"
    assert not watchdog.tick(now=100.4)  # not due yet
    stages["capture"] = 100.6
    assert watchdog.tick(now=100.8)
    assert _receive(sock) == "WATCHDOG=1"

    # the capture stops delivering: once it is silent for over 1 s, no more pings
    stages["worker"] = 102.0
    with caplog.at_level(logging.WARNING, logger="streamclf.notify"):
        assert not watchdog.tick(now=102.0)
        assert not watchdog.tick(now=103.0)
    assert watchdog.stalled == ("capture",)
    assert sum("capture" in r.getMessage() for r in caplog.records) == 1

    stages["capture"] = 103.4
    stages["worker"] = 103.4
    assert watchdog.tick(now=103.5)
    assert watchdog.stalled == ()
    assert _receive(sock) == "WATCHDOG=1"
    assert notifier.sent == 3


def test_progress_watchdog_without_systemd_watchdog_never_pings(
        path_socket: tuple[socket.socket, str]) -> None:
    _, address = path_socket
    watchdog = ProgressWatchdog(Notifier.from_env({"NOTIFY_SOCKET": address}), lambda: {"capture": 0.0})
    assert not watchdog.enabled
    assert not watchdog.tick(now=1.0)
    assert watchdog.stalled_stages(now=10.0) == ("capture",)
