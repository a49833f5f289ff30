"""Security: what a hostile model directory, file name or network setting can and cannot do.

- Model loading: safetensors only; a pickle is never unpickled (a booby-trapped pickle that
  would leave a marker file proves it); a pickle-only directory is refused with a clear
  message (exit 3); remote code named in the config never runs.
- Sockets: the unix socket is mode 0660 in a directory that is not world-accessible; a TCP
  address that is not loopback is refused unless the config names it (``allow_remote``).
- JSON: labels from the model's config and file paths with newlines, quotes, backslashes and
  Unicode line separators come out as one JSON object per line, exactly round-tripped.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamclf.errors import EXIT_STARTUP
from tests.tiny_model import build_tiny_model, spoken_word

RATE = 16000
HOSTILE_LABELS = (
    'stop"}\n{"type": "utterance", "label": "forged"}',
    "back\\slash",
    "line\u2028sep\u0000nul",
    "ok",
)


class Booby:
    """Unpickling this runs ``os.system``-free code that leaves a marker file: proof of unpickling."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (str(self.marker), "unpickled!"))


def plant_pickle(directory: Path, marker: Path) -> None:
    with open(directory / "pytorch_model.bin", "wb") as fh:
        pickle.dump(Booby(marker), fh)


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamclf", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def word_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "go.wav"
    pause = np.zeros(RATE // 2, np.float32)
    sf.write(path, np.concatenate([pause, spoken_word("go") * 0.5, pause]), RATE, subtype="PCM_16")
    return path


# --------------------------------------------------------------------------- model loading


def test_pickle_only_model_is_refused_without_unpickling(
    tmp_path: Path, model_dir: Path, word_wav: Path
) -> None:
    pickled = tmp_path / "pickled"
    shutil.copytree(model_dir, pickled)
    (pickled / "model.safetensors").unlink()
    marker = tmp_path / "marker"
    plant_pickle(pickled, marker)
    proc = run("classify", "--json", "--model", str(pickled), str(word_wav))
    assert proc.returncode == EXIT_STARTUP, proc.stderr
    (line,) = proc.stderr.strip().splitlines()[-1:]
    assert "pickle" in line and "safetensors" in line, line
    assert "Traceback" not in proc.stderr
    assert not marker.exists()


def test_safetensors_are_used_and_a_pickle_beside_them_is_never_opened(
    tmp_path: Path, model_dir: Path, word_wav: Path
) -> None:
    both = tmp_path / "both"
    shutil.copytree(model_dir, both)
    marker = tmp_path / "marker"
    plant_pickle(both, marker)
    proc = run("classify", "--json", "--model", str(both), str(word_wav))
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["type"] for line in proc.stdout.splitlines()] == ["utterance"]
    assert not marker.exists()


def test_remote_code_in_the_config_never_runs(tmp_path: Path, model_dir: Path, word_wav: Path) -> None:
    remote = tmp_path / "remote"
    shutil.copytree(model_dir, remote)
    marker = tmp_path / "marker"
    (remote / "evil.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from transformers import Wav2Vec2ForSequenceClassification as EvilModel\n"
    )
    config = json.loads((remote / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilModel", "AutoModelForAudioClassification": "evil.EvilModel"}
    (remote / "config.json").write_text(json.dumps(config))
    proc = run("classify", "--json", "--model", str(remote), str(word_wav))
    assert not marker.exists()
    assert "Traceback" not in proc.stderr
    # either refused at start-up with one line, or loaded with the built-in class only
    assert proc.returncode in (0, EXIT_STARTUP), proc.stderr
    if proc.returncode == EXIT_STARTUP:
        assert proc.stderr.strip().splitlines()[-1].startswith("streamclf: model")


# --------------------------------------------------------------------------- JSON escaping


def test_hostile_labels_and_paths_stay_one_json_object_per_line(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "hostile-model", labels=HOSTILE_LABELS)
    folder = tmp_path / 'dir "with"\nnewline'
    folder.mkdir()
    audio = np.concatenate(
        [np.zeros(RATE // 2, np.float32), spoken_word("stop") * 0.5, np.zeros(RATE // 2, np.float32)]
    )
    names = ['quote".wav', "new\nline.wav", "uni\u2028code.wav", "back\\slash.wav"]
    paths = [folder / name for name in names]
    for path in paths:
        sf.write(path, audio, RATE, subtype="PCM_16")
    broken = folder / 'broken"\n{"type":"utterance"}.wav'
    broken.write_text("not audio")
    proc = run("classify", "--json", "--top-k", "4", "--model", str(model), *map(str, paths), str(broken))

    assert proc.returncode == 4, proc.stderr
    raw_lines = proc.stdout.split("\n")
    assert raw_lines[-1] == ""
    events = [json.loads(line) for line in raw_lines[:-1]]  # every line a whole object
    assert len(events) == len(paths)
    assert [e["file"] for e in events] == [str(p) for p in paths]
    for event in events:
        assert event["type"] == "utterance"
        assert {i["label"] for i in event["intents"]} == set(HOSTILE_LABELS)
        assert event["label"] in (*HOSTILE_LABELS, None)
    # the bad file's one stderr line does not let its name forge a second line
    mentions = [line for line in proc.stderr.splitlines() if "broken" in line]
    assert len(mentions) == 1 and "not an audio file" in mentions[0], proc.stderr
    assert not any(line.startswith('{"type":"utterance"}') for line in proc.stderr.splitlines())


# --------------------------------------------------------------------------- sockets


@pytest.fixture
def short_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="sclf-"))  # unix socket paths are short
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def start_listen(model: Path, wav: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamclf",
            "listen",
            "--json",
            "--model",
            str(model),
            "--source",
            str(wav),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_path(path: Path, daemon: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert daemon.poll() is None, daemon.stderr.read() if daemon.stderr else ""
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def stop(daemon: subprocess.Popen[str]) -> str:
    daemon.send_signal(signal.SIGTERM)
    try:
        _out, err = daemon.communicate(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, err
    return err


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "quiet-minute.wav"
    sf.write(path, np.zeros(60 * RATE, np.float32), RATE, subtype="PCM_16")
    return path


def test_non_loopback_tcp_is_refused_at_start_up(model_dir: Path, long_wav: Path) -> None:
    proc = run(
        "listen",
        "--json",
        "--model",
        str(model_dir),
        "--source",
        str(long_wav),
        "--publish",
        "tcp://0.0.0.0:0",  # [::] too: tests/test_socket_sink.py covers the address check in-process
    )
    assert proc.returncode == EXIT_STARTUP, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("streamclf: publish") and "allow_remote" in last, proc.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_unix_socket_is_0660_and_non_loopback_tcp_binds_when_the_config_allows_it(
    short_dir: Path, model_dir: Path, long_wav: Path
) -> None:
    config = short_dir / "c.toml"
    config.write_text("[output]\nallow_remote = true\n")
    sock = short_dir / "run" / "events.sock"
    port = free_port()
    daemon = start_listen(
        model_dir,
        long_wav,
        "--config",
        str(config),
        "--publish",
        f"unix://{sock}",
        "--publish",
        f"tcp://0.0.0.0:{port}",
    )
    try:
        wait_for_path(sock, daemon)
        mode = os.stat(sock).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660
        assert stat.S_IMODE(os.stat(sock.parent).st_mode) & 0o007 == 0  # no access for others
        deadline = time.monotonic() + 90
        while True:
            assert daemon.poll() is None, daemon.stderr.read() if daemon.stderr else ""
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        stop(daemon)
    assert not sock.exists()
