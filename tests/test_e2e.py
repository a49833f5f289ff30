"""End to end: real speech through the real daemon in a subprocess — files, stdin, and the
PulseAudio virtual microphone. Boundaries are checked against how the stream was built."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.pulse import PulseServer, pulse_server  # noqa: F401  (fixture)
from tests.tiny_model import build_tiny_model
from trainer.streams import Stream, build_stream, write_wav
from trainer.tts import Voice, synthesize

WORDS = ("yes", "stop", "seven", "left", "house", "go", "marvin", "down", "happy", "zero")
TOLERANCE_S = 0.1


def ten_word_stream(seed: int, voice: Voice, **kwargs: object) -> Stream:
    rng = np.random.default_rng(seed)
    audio = [synthesize(w, voice) for w in WORDS]
    gaps = rng.uniform(0.4, 1.5, len(WORDS) - 1)
    return build_stream(audio, WORDS, list(gaps), rng, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny", labels=("yes", "stop", "go"))


@pytest.fixture(scope="module")
def stream_wav(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Stream]:
    stream = ten_word_stream(7, Voice("espeak-ng", "en-us", 170, 50))
    path = tmp_path_factory.mktemp("audio") / "ten-words.wav"
    write_wav(path, stream)
    return path, stream


def streamclf(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "streamclf", *args], input=stdin, capture_output=True, timeout=180
    )
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def utterances(stdout: str) -> list[dict]:
    events = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return [e for e in events if e["type"] == "utterance"]


def assert_matches_truth(found: list[dict], stream: Stream, offset: float = 0.0) -> None:
    assert len(found) == len(stream.words), [(u["start"], u["end"]) for u in found]
    for event, truth in zip(found, stream.words, strict=True):
        assert abs(event["start"] - offset - truth.start) <= TOLERANCE_S, (event, truth)
        assert abs(event["end"] - offset - truth.end) <= TOLERANCE_S, (event, truth)


@pytest.mark.slow
def test_classify_finds_each_of_ten_words(model_dir: Path, stream_wav: tuple[Path, Stream]) -> None:
    path, stream = stream_wav
    proc = streamclf("classify", "--json", "--model", str(model_dir), str(path))
    assert proc.returncode == 0, proc.stderr
    found = utterances(proc.stdout)
    assert_matches_truth(found, stream)
    for event in found:
        assert event["file"] == str(path)
        assert event["model"] == "tiny"
        assert [i["label"] for i in event["intents"]]
        assert sum(i["score"] for i in event["intents"]) <= 1.0001


@pytest.mark.slow
def test_listen_on_a_file_paced_in_real_time(model_dir: Path, stream_wav: tuple[Path, Stream]) -> None:
    path, stream = stream_wav
    began = time.monotonic()
    proc = streamclf("listen", "--json", "--model", str(model_dir), "--source", str(path))
    elapsed = time.monotonic() - began
    assert proc.returncode == 0, proc.stderr
    assert elapsed >= stream.duration * 0.9, "a real-time paced file cannot finish early"
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert_matches_truth([e for e in events if e["type"] == "utterance"], stream)
    starts = [e for e in events if e["type"] == "speech" and e["state"] == "start"]
    assert len(starts) == len(stream.words)
    assert events[-1]["type"] == "status" and events[-1]["state"] == "stopped"


@pytest.mark.slow
def test_listen_on_stdin_pipe(model_dir: Path, stream_wav: tuple[Path, Stream]) -> None:
    _path, stream = stream_wav
    pcm = (np.clip(stream.audio, -1, 1) * 32767).astype("<i2").tobytes()
    pcm += b"\x01"  # stdin closed mid-frame: the partial sample is dropped cleanly
    proc = streamclf("listen", "--json", "--model", str(model_dir), "--source", "-", "--rate", "16000",
                     stdin=pcm)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert_matches_truth(utterances(proc.stdout), stream)


def test_listen_closes_every_speech_start_even_when_the_utterance_is_dropped(model_dir: Path) -> None:
    """A television switched on in a quiet room: announced as speech, then found to be background.

    The JSON consumer sees a speech end for every speech start, and an utterance only for what was
    kept."""
    from trainer.noise import make_noise, set_level_dbfs

    rng = np.random.default_rng(1)
    quiet = set_level_dbfs(make_noise("pink", 2 * 16000, rng, 16000), -70.0)
    audio = np.concatenate([quiet, set_level_dbfs(make_noise("babble", 5 * 16000, rng, 16000), -40.0)])
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    proc = streamclf("listen", "--json", "--model", str(model_dir), "--source", "-", "--rate", "16000",
                     stdin=pcm)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    speech = [e["state"] for e in events if e["type"] == "speech"]
    assert speech and speech == ["start", "end"] * (len(speech) // 2), speech
    assert len(utterances(proc.stdout)) < len(speech) // 2, speech  # at least one was dropped


def test_stdin_at_another_rate_and_stereo(model_dir: Path, stream_wav: tuple[Path, Stream]) -> None:
    """48 kHz stereo PCM is downmixed and resampled: the boundaries stay where they were."""
    import soxr

    _path, stream = stream_wav
    up = soxr.resample(stream.audio, 16000, 48000)
    stereo = np.stack([up, up], axis=1)
    pcm = (np.clip(stereo, -1, 1) * 32767).astype("<i2").tobytes()
    proc = streamclf("listen", "--json", "--model", str(model_dir), "--source", "-", "--rate", "48000",
                     "--channels", "2", stdin=pcm)
    assert proc.returncode == 0, proc.stderr
    assert_matches_truth(utterances(proc.stdout), stream)


@pytest.fixture
def mic_daemon(pulse_server: PulseServer, model_dir: Path) -> Iterator[subprocess.Popen[str]]:  # noqa: F811
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamclf", "listen", "--source", "mic", "--json", "--model", str(model_dir),
         "--log-level", "debug"],
        env={**pulse_server.env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


@pytest.mark.slow
@pytest.mark.mic
def test_listen_on_the_virtual_microphone(
    pulse_server: PulseServer,  # noqa: F811
    mic_daemon: subprocess.Popen[str],
    stream_wav: tuple[Path, Stream],
) -> None:
    path, stream = stream_wav
    assert mic_daemon.stdout is not None
    # the first status event says capture delivers audio (frames counted): then play
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "no audio from the virtual microphone"
        line = mic_daemon.stdout.readline()
        assert line, mic_daemon.stderr.read() if mic_daemon.stderr else ""
        event = json.loads(line)
        if event["type"] == "status" and event["counters"]["blocks"] > 0:
            break
    mic_t0 = event["counters"]["samples"] / 16000.0
    player = pulse_server.play(path)
    assert player.wait(60) == 0
    time.sleep(1.0)
    os.kill(mic_daemon.pid, 15)
    out, err = mic_daemon.communicate(timeout=20)
    assert mic_daemon.returncode == 0, err
    found = utterances(out)
    assert len(found) == len(stream.words), [(u["start"], u["end"]) for u in found]
    # times count from the daemon's stream start: align by the median shift, then every word must match
    shifts = [u["start"] - w.start for u, w in zip(found, stream.words, strict=True)]
    shifts += [u["end"] - w.end for u, w in zip(found, stream.words, strict=True)]
    offset = float(np.median(shifts))
    assert offset >= mic_t0 - 1.0
    assert_matches_truth(found, stream, offset=offset)
    assert all(u["source"].startswith("mic") for u in found)
