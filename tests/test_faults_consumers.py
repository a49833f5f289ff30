"""Fault injection, consumers: readers of the event stream that go away or stop reading.

- ``streamclf listen --json … | head -n 1`` (a real pipe into a real ``head``): exit 0, promptly,
  no traceback.
- A stdout reader that stops reading: the pipe fills, then the sink's bounded queue; events are
  dropped and counted while capture goes on (seen through an event socket); when the reader
  comes back, the stream resumes.
- Socket subscribers that vanish mid-write (connection reset with unread data) or stop reading:
  they are dropped; the daemon and the other subscribers go on.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.tiny_model import build_tiny_model, spoken_word
from trainer.streams import build_stream

RATE = 16000
F_SETPIPE_SZ = 1031  # Linux fcntl: set a pipe's capacity
WORDS = ("yes", "stop", "go", "left", "down", "seven")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny", labels=("yes", "stop", "go"))


@pytest.fixture(scope="module")
def words_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About a minute of words with pauses: long enough that `listen` at real time outlives a test."""
    rng = np.random.default_rng(3)
    texts = list(WORDS) * 6
    audio = [spoken_word(w, RATE) for w in WORDS] * 6
    stream = build_stream(audio, texts, list(rng.uniform(0.8, 1.6, len(texts) - 1)), rng)
    path = tmp_path_factory.mktemp("audio") / "words.wav"
    sf.write(path, stream.audio, RATE, subtype="PCM_16")
    return path


def config_file(folder: Path, **output: object) -> Path:
    lines = ["[output]"] + [f"{key} = {json.dumps(value)}" for key, value in output.items()]
    path = folder / "streamclf.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def streamclf_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "streamclf", *args]


def into_head_n_1(args: list[str], wait_s: float) -> tuple[str, int, str]:
    """Run ``streamclf ARGS | head -n 1`` for real.

    Returns what head printed, streamclf's exit code and its stderr."""
    daemon = subprocess.Popen(streamclf_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert daemon.stdout is not None
    head = subprocess.run(["head", "-n", "1"], stdin=daemon.stdout, capture_output=True, timeout=120)
    daemon.stdout.close()  # only head holds the read end now, and head has exited
    try:
        rc = daemon.wait(timeout=wait_s)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    stderr = daemon.stderr.read().decode() if daemon.stderr else ""
    return head.stdout.decode(), rc, stderr


def test_listen_into_head_n_1_exits_0_without_a_traceback(
    tmp_path: Path, model_dir: Path, words_wav: Path
) -> None:
    config = config_file(tmp_path, status_interval_s=0.2)
    args = ["listen", "--json", "--model", str(model_dir), "--source", str(words_wav)]
    args += ["--config", str(config)]
    # the file plays for a minute: only EPIPE can end it within 30 s
    printed, rc, stderr = into_head_n_1(args, wait_s=30)
    assert rc == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    (line,) = printed.splitlines()
    assert json.loads(line)["version"] == 1


def test_classify_into_head_n_1_exits_0_without_a_traceback(
    tmp_path: Path, model_dir: Path, words_wav: Path
) -> None:
    files = [str(words_wav)] * 20  # 20 min of audio: classify stops at EPIPE instead
    printed, rc, stderr = into_head_n_1(["classify", "--json", "--model", str(model_dir), *files], wait_s=120)
    assert rc == 0, stderr
    assert "Traceback" not in stderr, stderr
    assert json.loads(printed)["type"] == "utterance"


class LineReader(threading.Thread):
    """Reads JSON lines from a socket into a list until EOF or an error."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.events: list[dict] = []
        self.eof = threading.Event()

    def run(self) -> None:
        buffer = b""
        try:
            while chunk := self.sock.recv(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                self.events.extend(json.loads(line) for line in lines if line)
        except OSError:
            pass
        self.eof.set()

    def statuses(self) -> list[dict]:
        return [e for e in list(self.events) if e["type"] == "status"]


def connect_unix(path: Path, deadline_s: float = 90.0) -> socket.socket:
    deadline = time.monotonic() + deadline_s
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def wait_until(predicate: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="sclf-"))  # short: unix socket paths are limited
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_stdout_reader_that_stops_reading_loses_counted_events_while_capture_goes_on(
    socket_dir: Path, model_dir: Path, words_wav: Path
) -> None:
    sock_path = socket_dir / "events.sock"
    config = config_file(socket_dir, status_interval_s=0.1, stdout_buffer=4)
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)  # one page: a few events fill it
    daemon = subprocess.Popen(
        streamclf_cmd(
            "listen",
            "--json",
            "--model",
            str(model_dir),
            "--source",
            str(words_wav),
            "--speed",
            "4",
            "--config",
            str(config),
            "--publish",
            f"unix://{sock_path}",
        ),
        stdout=write_end,
        stderr=subprocess.PIPE,
    )
    os.close(write_end)
    try:
        watcher = LineReader(connect_unix(sock_path))
        watcher.start()
        # nobody reads stdout: the pipe fills, then the sink's queue of 4, then events are dropped
        wait_until(
            lambda: any(s["counters"]["dropped_events"] > 0 for s in watcher.statuses()), "dropped events"
        )
        stalled = watcher.statuses()[-1]["counters"]
        wait_until(
            lambda: watcher.statuses()[-1]["counters"]["samples"] > stalled["samples"] + RATE,
            "capture to go on while stdout is stuck",
        )
        later = watcher.statuses()[-1]["counters"]
        assert later["dropped_events"] >= stalled["dropped_events"]
        assert later["segments"] >= stalled["segments"]
        # the reader comes back: what was queued comes out, then new events again
        with os.fdopen(read_end, "rb", buffering=0) as reader:
            read_end = -1
            got = b""
            deadline = time.monotonic() + 60
            while got.count(b"\n") < 40 and time.monotonic() < deadline:
                got += reader.read(4096)
            lines = [json.loads(line) for line in got.split(b"\n")[:-1]]
            assert len(lines) >= 40
            assert all(line["version"] == 1 for line in lines)
            daemon.send_signal(signal.SIGTERM)
            rest = reader.read()
        rc = daemon.wait(timeout=30)
        stderr = daemon.stderr.read().decode() if daemon.stderr else ""
        assert rc == 0, stderr
        assert "Traceback" not in stderr
        final = [json.loads(line) for line in rest.split(b"\n") if line]
        final_status = [e for e in lines + final if e["type"] == "status"][-1]
        assert final_status["counters"]["dropped_events"] >= later["dropped_events"]
    finally:
        if read_end >= 0:
            os.close(read_end)
        if daemon.poll() is None:
            daemon.kill()


@pytest.mark.slow
def test_socket_subscribers_that_vanish_mid_write_are_dropped_and_the_rest_go_on(
    socket_dir: Path, model_dir: Path, words_wav: Path
) -> None:
    sock_path = socket_dir / "events.sock"
    config = config_file(socket_dir, status_interval_s=0.1, subscriber_buffer=8)
    daemon = subprocess.Popen(
        streamclf_cmd(
            "listen",
            "--json",
            "--model",
            str(model_dir),
            "--source",
            str(words_wav),
            "--speed",
            "2",
            "--config",
            str(config),
            "--publish",
            f"unix://{sock_path}",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        survivor = LineReader(connect_unix(sock_path))
        survivor.start()
        vanishing = [connect_unix(sock_path) for _ in range(3)]
        for sock in vanishing:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled = connect_unix(sock_path)  # connected, never reads: cut off when its buffer is full
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        wait_until(
            lambda: any(s["counters"].get("subscribers", 0) == 5 for s in survivor.statuses()),
            "five subscribers",
        )
        wait_until(lambda: len(survivor.statuses()) >= 10, "events flowing")
        for sock in vanishing:  # reset with unread data: the daemon's next send to it fails
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            sock.close()
        wait_until(
            lambda: survivor.statuses()[-1]["counters"].get("subscribers") == 1, "only the survivor left"
        )
        seen = len(survivor.statuses())
        wait_until(lambda: len(survivor.statuses()) >= seen + 10, "the survivor to keep receiving")
        last = survivor.statuses()[-1]["counters"]
        assert last["disconnected_subscribers"] >= 1  # the one that stopped reading
        assert daemon.poll() is None
        daemon.send_signal(signal.SIGTERM)
        _out, err = daemon.communicate(timeout=30)
        stalled.close()
        assert daemon.returncode == 0, err.decode()
        assert b"Traceback" not in err
        assert survivor.eof.wait(10)
        ids = [e["id"] for e in survivor.events if e["type"] == "utterance"]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)  # in order, nothing twice
    finally:
        if daemon.poll() is None:
            daemon.kill()


def test_human_readable_classify_into_head_n_1_exits_0_without_a_traceback(
    model_dir: Path, words_wav: Path
) -> None:
    args = ["classify", "--no-json", "--model", str(model_dir), str(words_wav), str(words_wav)]
    printed, rc, stderr = into_head_n_1(args, wait_s=120)
    assert printed.count("\n") == 1
    assert rc == 0, stderr
    assert "Traceback" not in stderr, stderr
