"""Fault injection, the microphone: lost while capturing and back, and absent at start.

The virtual microphone is a PulseAudio null sink (``tests/pulse.py``): unloading its module
is what unplugging a USB microphone looks like to the daemon (its source disappears and the
recording stream dies); loading it again is plugging it back in. The daemon runs for real in
a subprocess (`streamclf listen --source mic`), and we read its JSON events.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pytest
import soundfile as sf

from tests.pulse import SINK, PulseServer, start_or_fail
from tests.tiny_model import build_tiny_model
from trainer.streams import build_stream
from trainer.tts import Voice, synthesize

RATE = 16000
VOICE = Voice("espeak-ng", "en-us", 170, 50)
pytestmark = [pytest.mark.mic, pytest.mark.slow]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny", labels=("yes", "stop", "go"))


@pytest.fixture(scope="module")
def three_words(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = ["yes", "stop", "seven"]
    rng = np.random.default_rng(5)
    stream = build_stream(
        [synthesize(t, VOICE) for t in texts], texts, [0.8, 0.8], rng, lead_s=0.3, tail_s=0.8
    )
    path = tmp_path_factory.mktemp("audio") / "three.wav"
    sf.write(path, stream.audio, RATE, subtype="PCM_16")
    return path


@pytest.fixture
def server() -> Iterator[PulseServer]:
    pulse = start_or_fail()
    try:
        yield pulse
    finally:
        pulse.stop()


class EventReader(threading.Thread):
    """Reads the daemon's JSON lines into a queue (so the test can wait with a deadline)."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.events: queue.Queue[dict] = queue.Queue()
        self.seen: list[dict] = []

    def run(self) -> None:
        for line in self.stream:
            if line.strip():
                self.events.put(json.loads(line))

    def wait_for(self, predicate: object, what: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {what}; saw {self.seen[-5:]}"
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(event)
            if predicate(event):  # type: ignore[operator]
                return event


class StderrReader(threading.Thread):
    """Keeps reading the daemon's stderr (ALSA is chatty while a device is missing: an unread
    pipe would fill and block the daemon's logging)."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: list[str] = []

    def run(self) -> None:
        for line in self.stream:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, needle: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in list(self.lines) if needle in line]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no {needle!r} on stderr: {self.lines[-5:]}")


def null_sink_module(server: PulseServer) -> str:
    for line in server.pactl("list", "short", "modules").splitlines():
        fields = line.split("\t")
        if len(fields) > 1 and fields[1] == "module-null-sink":
            return fields[0]
    raise AssertionError("no null sink loaded")


def load_null_sink(server: PulseServer) -> None:
    server.pactl(
        "load-module",
        "module-null-sink",
        f"sink_name={SINK}",
        f"rate={server.rate}",
        f"channels={server.channels}",
    )


def start_daemon(
    server: PulseServer, model_dir: Path, config: Path, *extra: str
) -> tuple[subprocess.Popen[str], EventReader, StderrReader]:
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamclf",
            "listen",
            "--source",
            "mic",
            "--json",
            "--model",
            str(model_dir),
            "--config",
            str(config),
            "--log-level",
            "debug",
            *extra,
        ],
        env={**server.env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert daemon.stdout is not None and daemon.stderr is not None
    events, log = EventReader(daemon.stdout), StderrReader(daemon.stderr)
    events.start()
    log.start()
    return daemon, events, log


def fast_status_config(folder: Path, **capture: object) -> Path:
    path = folder / "streamclf.toml"
    lines = ["[output]", "status_interval_s = 0.25", "[capture]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in capture.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def stop(daemon: subprocess.Popen[str], log: StderrReader) -> tuple[int, str]:
    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    log.join(5)
    return daemon.returncode, log.text()


def is_status_with_audio(event: dict) -> bool:
    return event["type"] == "status" and event["counters"]["blocks"] > 0


def play_and_collect(server: PulseServer, reader: EventReader, wav: Path, count: int) -> list[dict]:
    player = server.play(wav)
    assert player.wait(60) == 0
    return [
        reader.wait_for(lambda e: e["type"] == "utterance", f"utterance {i + 1} of {count}")
        for i in range(count)
    ]


def test_microphone_unplugged_and_back_is_reported_reopened_and_classifying_resumes(
    server: PulseServer, model_dir: Path, three_words: Path, tmp_path: Path
) -> None:
    daemon, reader, log = start_daemon(server, model_dir, fast_status_config(tmp_path))
    try:
        reader.wait_for(is_status_with_audio, "audio from the virtual microphone", timeout=90)
        before = play_and_collect(server, reader, three_words, 3)
        assert all(u["source"].startswith("mic") for u in before)

        server.pactl("unload-module", null_sink_module(server))  # unplugged
        lost = reader.wait_for(lambda e: e["type"] == "error", "the device-lost error event")
        assert lost["code"] == "device_lost" and lost["message"]
        time.sleep(2.0)
        load_null_sink(server)  # plugged back in
        back = reader.wait_for(lambda e: e["type"] == "error" and e["code"] == "device_back", "reopen")
        assert "reopened" in back["message"]
        status = reader.wait_for(
            lambda e: e["type"] == "status" and e["counters"]["device_losses"] == 1,
            "status reporting the loss",
        )
        assert status["counters"]["gap_ms"] >= 2000
        blocks = status["counters"]["blocks"]
        reader.wait_for(lambda e: e["type"] == "status" and e["counters"]["blocks"] > blocks, "audio again")

        after = play_and_collect(server, reader, three_words, 3)  # classifying resumes
        assert [u["id"] for u in after] == [before[-1]["id"] + 1 + i for i in range(3)] or after[0][
            "id"
        ] > before[-1]["id"]
        assert after[0]["start"] > before[-1]["end"]  # one stream, time goes on across the gap
        assert daemon.poll() is None  # no crash, no restart
    finally:
        rc, err = stop(daemon, log)
    assert rc == 0, err
    assert "Traceback" not in err


def test_device_absent_at_start_is_waited_for_when_configured(
    server: PulseServer, model_dir: Path, three_words: Path, tmp_path: Path
) -> None:
    server.pactl("unload-module", null_sink_module(server))  # the USB microphone is not enumerated yet
    config = fast_status_config(tmp_path, wait_for_device=True, reopen_max_backoff_s=1.0)
    daemon, reader, log = start_daemon(server, model_dir, config)
    try:
        log.wait_for("waiting for the audio device", timeout=90)
        time.sleep(2.0)
        assert daemon.poll() is None  # waiting, not exiting
        load_null_sink(server)
        reader.wait_for(is_status_with_audio, "audio once the device appears")
        (utterance, *_rest) = play_and_collect(server, reader, three_words, 3)
        assert utterance["source"].startswith("mic")
    finally:
        rc, err = stop(daemon, log)
    assert rc == 0, err
    assert "Traceback" not in err


def test_device_absent_at_start_without_waiting_fails_start_up_with_exit_3(
    server: PulseServer, model_dir: Path, tmp_path: Path
) -> None:
    server.pactl("unload-module", null_sink_module(server))
    daemon, _events, log = start_daemon(server, model_dir, fast_status_config(tmp_path))
    daemon.wait(timeout=120)
    log.join(5)
    err = log.text()
    assert daemon.returncode == 3, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("streamclf:")


def test_waiting_for_the_device_is_reported_on_stdout_and_sigterm_ends_it_with_exit_0(
    server: PulseServer, model_dir: Path, tmp_path: Path
) -> None:
    server.pactl("unload-module", null_sink_module(server))
    config = fast_status_config(tmp_path, wait_for_device=True, reopen_max_backoff_s=1.0)
    daemon, reader, log = start_daemon(server, model_dir, config)
    try:
        log.wait_for("waiting for the audio device", timeout=90)
        absent = reader.wait_for(lambda e: e["type"] == "error", "the device-absent event", timeout=5)
        assert absent["code"] == "device_absent"
    finally:
        rc, err = stop(daemon, log)
    assert rc == 0, err
