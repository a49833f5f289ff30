"""A private Debian ``mosquitto`` broker on a free loopback port, and a paho-mqtt subscriber.

    broker = Mosquitto(tmp_path); broker.start()     # stop() ends it by its pid; start() again
    with Subscriber(broker.port, "streamclf/#") as sub:
        sub.wait_for(lambda msgs: len(msgs) >= 3)

The broker keeps its state on disk (``persistence``) across stop and start, so a subscriber with a
persistent session gets what was published for it while it was away.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
needs_mosquitto = pytest.mark.skipif(MOSQUITTO is None,
                                     reason="mosquitto is not installed (make test installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def password_file(path: Path, user: str, password: str) -> Path:
    """A mosquitto password file holding one user (written by Debian's mosquitto_passwd)."""
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    subprocess.run([tool, "-c", "-b", str(path), user, password], check=True, capture_output=True)
    path.chmod(0o600)
    return path


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def tls_files(directory: Path) -> TlsFiles:
    """A throw-away certificate authority and a broker certificate for 127.0.0.1 (openssl)."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=streamclf test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
        "-subj", "/CN=127.0.0.1")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "broker.pem", "-days", "2", "-extfile", "san.ext")
    return TlsFiles(directory / "ca.pem", directory / "broker.pem", directory / "broker.key")


class Mosquitto:
    def __init__(self, workdir: Path, port: int | None = None, password_file: Path | None = None,
                 tls: TlsFiles | None = None) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        self.config = workdir / "mosquitto.conf"
        access = "allow_anonymous true"
        if password_file is not None:
            access = f"allow_anonymous false\npassword_file {password_file}"
        if tls is not None:
            access += f"\ncafile {tls.ca}\ncertfile {tls.cert}\nkeyfile {tls.key}"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n{access}\npersistence true\n"
            f"persistence_location {workdir}/\nautosave_interval 1\nlog_dest stderr\n"
            f"user {getpass.getuser()}\n")  # as root it would switch to a user that cannot write workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert MOSQUITTO is not None
        log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 (the broker writes it while it runs)
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                assert self.proc.poll() is None, (self.workdir / "mosquitto.log").read_text()
                assert time.monotonic() < deadline, "mosquitto did not start listening"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


class Subscriber:
    """A paho client with a persistent session subscribed (QoS 1) to ``pattern``; collects messages."""

    def __init__(self, port: int, pattern: str, client_id: str = "streamclf-test-subscriber") -> None:
        self.port = port
        self.pattern = pattern
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(1, 2)

    def _on_connect(self, client: Any, *_: Any) -> None:
        client.subscribe(self.pattern, qos=1)

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        with self._cond:
            self.messages.append(Received(message.topic, bytes(message.payload), bool(message.retain)))
            self._cond.notify_all()

    def __enter__(self) -> Subscriber:
        self._client.connect("127.0.0.1", self.port)
        self._client.loop_start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def wait_for(self, done: Callable[[list[Received]], bool], timeout: float = 30.0) -> list[Received]:
        with self._cond:
            self._cond.wait_for(lambda: done(self.messages), timeout)
            return list(self.messages)

    def on(self, topic: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]
