"""The daemon as systemd runs it: a real `streamclf listen` subprocess, real signals, a real
notify datagram socket and real event sockets, fed espeak-ng speech as raw PCM on stdin.

The test owns the daemon's stdin, so it can stall the capture (stop writing without closing)
and resume it.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.tiny_model import build_tiny_model, spoken_word

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000
WAIT_S = 60.0
"""Generous bound for anything the daemon must eventually do (start-up includes importing torch)."""

pytestmark = pytest.mark.slow


# ---- audio ------------------------------------------------------------------------------------


def pcm(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def silence(seconds: float) -> np.ndarray:
    noise = np.random.default_rng(0).normal(0.0, 0.001, int(seconds * RATE))
    return noise.astype(np.float32)


def utterance(word: str) -> bytes:
    """Half a second of near-silence, the word, then enough silence to close the segment."""
    return pcm(np.concatenate([silence(0.5), spoken_word(word, RATE), silence(0.8)]))


# ---- the daemon under test ----------------------------------------------------------------------


class NotifyListener:
    """A bound AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(os.fspath(path))
        self.sock.settimeout(0.2)
        self.messages: queue.Queue[tuple[float, str]] = queue.Queue()
        self.log: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            text = data.decode()
            self.log.append(text)
            self.messages.put((time.monotonic(), text))

    def next(self, timeout: float = WAIT_S) -> str:
        try:
            return self.messages.get(timeout=timeout)[1]
        except queue.Empty:
            raise AssertionError(f"no notify message within {timeout} s; so far: {self.log}") from None

    def wait_for(self, predicate: Callable[[str], bool], what: str) -> list[str]:
        """Messages up to and including the first matching one."""
        seen: list[str] = []
        deadline = time.monotonic() + WAIT_S
        while True:
            message = self.next(max(0.01, deadline - time.monotonic()))
            seen.append(message)
            if predicate(message):
                return seen
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what}; got {seen}")

    def collect(self, seconds: float) -> list[str]:
        """Everything that arrives within the next ``seconds``."""
        end = time.monotonic() + seconds
        got: list[str] = []
        while (left := end - time.monotonic()) > 0:
            try:
                got.append(self.messages.get(timeout=left)[1])
            except queue.Empty:
                break
        return got

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class Listen:
    """`python -m streamclf listen --source - --json` with its stdin, stdout and stderr in hand."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamclf", "listen", "--source", "-", "--json", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=ROOT, env={**os.environ, **env},
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.decode(errors="replace"))

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def next_event(self, predicate: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {what} event; stderr: {''.join(self.stderr)}") from None
            if predicate(event):
                return event

    def wait(self, timeout: float = WAIT_S) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def is_utterance(event: dict[str, Any]) -> bool:
    return event["type"] == "utterance"


class Feeder(threading.Thread):
    """Writes PCM to the daemon in real time (30 ms blocks) while ``running`` is set."""

    def __init__(self, daemon: Listen, audio: bytes) -> None:
        super().__init__(daemon=True)
        self.listen = daemon
        self.audio = audio
        self.running = threading.Event()
        self.running.set()
        self.finished = threading.Event()

    def run(self) -> None:
        block = RATE * 2 * 30 // 1000
        start = time.monotonic()
        try:
            for n, offset in enumerate(range(0, len(self.audio), block)):
                if not self.running.is_set():
                    return
                self.listen.write(self.audio[offset:offset + block])
                time.sleep(max(0.0, start + (n + 1) * 0.03 - time.monotonic()))
        except (BrokenPipeError, ValueError):
            return
        finally:
            self.finished.set()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("models")
    return {
        "commands": build_tiny_model(base / "commands", ("yes", "no", "stop")),
        "directions": build_tiny_model(base / "directions", ("left", "right"), seed=1),
    }


def write_config(path: Path, model: Path, threshold: float, extra: str = "") -> None:
    path.write_text(
        f'[model]\nmodel = "{model}"\nthreshold = {threshold}\n\n'
        f"[output]\nstatus_interval_s = 0.5\n{extra}"
    )


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifyListener]:
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.close()


@pytest.fixture
def spawn() -> Iterator[Callable[..., Listen]]:
    started: list[Listen] = []

    def start(args: list[str], env: dict[str, str]) -> Listen:
        daemon = Listen(args, env)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


# ---- the tests ------------------------------------------------------------------------------------


def test_ready_after_first_audio_status_and_watchdog_that_stops_when_capture_stalls(
        tmp_path: Path, models: dict[str, Path], notify: NotifyListener,
        spawn: Callable[..., Listen]) -> None:
    config = tmp_path / "config.toml"
    write_config(config, models["commands"], 0.0)
    daemon = spawn(["--config", str(config)],
                   {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"})

    # start-up: the model loads, then the daemon waits for audio and says so, without READY
    before_audio = notify.wait_for(lambda m: m.startswith("STATUS=") and "waiting for audio" in m,
                                   "waiting-for-audio status")
    assert "READY=1" not in before_audio
    assert "READY=1" not in notify.collect(1.0)
    assert "WATCHDOG=1" not in notify.log  # the watchdog only runs once systemd counts us started

    feeder = Feeder(daemon, pcm(silence(0.3)) + utterance("stop") * 6)
    feeder.start()
    notify.wait_for(lambda m: m == "READY=1", "READY=1")
    assert daemon.next_event(is_utterance, "utterance")["label"] in ("yes", "no", "stop")

    # while audio flows: status lines with source, model and counters, and watchdog pings
    flowing = notify.collect(2.5)
    statuses = [m for m in flowing if m.startswith("STATUS=")]
    assert statuses and all("stdin" in m and "commands" in m for m in statuses)
    assert any("segments" in m for m in statuses)
    assert flowing.count("WATCHDOG=1") >= 2

    # stall the capture: stop writing but keep stdin open; pings stop, status goes on
    feeder.running.clear()
    feeder.join(5)
    notify.collect(2.0)  # the stall threshold (half the watchdog interval) and a last ping
    stalled = notify.collect(3.0)
    assert "WATCHDOG=1" not in stalled
    assert any(m.startswith("STATUS=") and "stalled" in m for m in stalled)

    # capture resumes: pings resume
    resumed = Feeder(daemon, utterance("yes") * 3)
    resumed.start()
    notify.wait_for(lambda m: m == "WATCHDOG=1", "watchdog ping after the stall")
    resumed.join(WAIT_S)

    # end of stream: STOPPING=1 and a clean exit
    daemon.close_stdin()
    assert daemon.wait() == 0
    notify.wait_for(lambda m: m == "STOPPING=1", "STOPPING=1")


def test_sigterm_mid_utterance_delivers_it_and_exits_0_within_2_s(
        tmp_path: Path, models: dict[str, Path], notify: NotifyListener,
        spawn: Callable[..., Listen]) -> None:
    config = tmp_path / "config.toml"
    write_config(config, models["commands"], 0.0)
    socket_path = tmp_path / "run" / "events.sock"
    daemon = spawn(["--config", str(config), "--publish", f"unix://{socket_path}"],
                   {"NOTIFY_SOCKET": str(notify.path)})
    words = np.concatenate([spoken_word(w, RATE) for w in ("seven", "eight", "nine", "ten")])
    daemon.write(pcm(silence(0.3)))
    notify.wait_for(lambda m: m == "READY=1", "READY=1")
    feeder = Feeder(daemon, pcm(np.concatenate([silence(1.0), words, words, silence(1.0)])))
    feeder.start()
    subscriber = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    subscriber.connect(os.fspath(socket_path))
    subscriber.settimeout(WAIT_S)

    opened = daemon.next_event(lambda e: e["type"] == "speech" and e["state"] == "start", "speech start")
    time.sleep(0.3)  # well inside the utterance: several words are still to come
    assert not feeder.finished.is_set()
    signalled = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    code = daemon.wait()
    took = time.monotonic() - signalled
    feeder.running.clear()

    assert code == 0, "".join(daemon.stderr)
    assert took < 2.0, f"shutdown took {took:.2f} s"
    last = daemon.next_event(is_utterance, "the utterance in flight")
    assert last["start"] <= opened["t"] + 0.01
    notify.wait_for(lambda m: m == "STOPPING=1", "STOPPING=1")
    # the subscriber got the same utterance, then end of stream; the socket file is gone
    received = b""
    while chunk := subscriber.recv(65536):
        received += chunk
    subscriber.close()
    from_socket = [json.loads(line) for line in received.splitlines()]
    assert [e for e in from_socket if e["type"] == "utterance"] == [last]
    assert not socket_path.exists()
    assert "Traceback" not in "".join(daemon.stderr)


def test_sighup_reloads_threshold_refuses_a_broken_config_and_swaps_the_model(
        tmp_path: Path, models: dict[str, Path], notify: NotifyListener,
        spawn: Callable[..., Listen]) -> None:
    config = tmp_path / "config.toml"
    write_config(config, models["commands"], 0.0)
    daemon = spawn(["--config", str(config)], {"NOTIFY_SOCKET": str(notify.path)})

    def say(word: str) -> dict[str, Any]:
        daemon.write(utterance(word))
        return daemon.next_event(is_utterance, f"utterance for {word!r}")

    def reload() -> list[str]:
        daemon.proc.send_signal(signal.SIGHUP)
        messages = notify.wait_for(lambda m: m.startswith("RELOADING=1"), "RELOADING=1")
        return messages + notify.wait_for(lambda m: m == "READY=1", "READY=1 after reloading")

    daemon.write(pcm(silence(0.3)))
    notify.wait_for(lambda m: m == "READY=1", "READY=1")
    first = say("stop")
    assert first["accepted"] is True and first["label"] is not None

    # a higher threshold in the file takes effect at SIGHUP
    write_config(config, models["commands"], 1.0)
    reload()
    strict = say("stop")
    assert strict["intents"][0]["score"] < 1.0  # the tiny model never saturates on this word
    assert strict["accepted"] is False and strict["label"] is None
    assert strict["model"] == first["model"]

    # a broken config is refused with an error event; the old settings stay
    config.write_text('[model]\nthreshold = "high"\n')
    reload()
    error = daemon.next_event(lambda e: e["type"] == "error", "error event")
    assert "model.threshold" in error["message"]
    still_strict = say("stop")
    assert still_strict["accepted"] is False
    assert daemon.proc.poll() is None

    # a new model is loaded beside the old one and used from the next segment on
    write_config(config, models["directions"], 0.0)
    reload()
    swapped = say("left")
    assert swapped["model"] == "directions"
    assert {i["label"] for i in swapped["intents"]} <= {"left", "right"}
    assert swapped["accepted"] is True

    daemon.close_stdin()
    assert daemon.wait() == 0
    assert "Traceback" not in "".join(daemon.stderr)


def test_bad_publish_address_fails_start_up_with_exit_3(
        tmp_path: Path, models: dict[str, Path], spawn: Callable[..., Listen]) -> None:
    config = tmp_path / "config.toml"
    write_config(config, models["commands"], 0.5)
    daemon = spawn(["--config", str(config), "--publish", "tcp://0.0.0.0:7890"], {})
    daemon.close_stdin()
    assert daemon.wait() == 3
    time.sleep(0.1)
    err = "".join(daemon.stderr)
    assert "allow_remote" in err and "Traceback" not in err
