"""The real microphone path: sounddevice → ALSA ``pulse`` → a PulseAudio null sink's monitor.

A private PulseAudio server (tests/pulse.py) acts as the microphone; ``paplay --device=v``
speaks into it. Nothing here is mocked: PortAudio, the ALSA plugin and the server are real.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from streamclf.audio import MicSource, RingBuffer, list_input_devices, resolve_device
from streamclf.audio.mic import choose_rate
from streamclf.errors import EXIT_STARTUP, SourceLost, StartupError
from tests.pulse import PulseServer, client_environment, pulse_in_process, pulse_server, start_or_fail

__all__ = ["pulse_in_process", "pulse_server"]  # fixtures used below

pytestmark = pytest.mark.mic

RATE = 16000
FIRST_AUDIO_TIMEOUT_S = 20.0


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12))


def spoken_word(text: str, peak: float) -> np.ndarray:
    """espeak-ng saying ``text``, at 16 kHz, trimmed and scaled to ``peak``."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    done = subprocess.run(["espeak-ng", "--stdout", text], capture_output=True, check=True)
    wav_path = Path(f"/tmp/streamclf-espeak-{time.monotonic_ns()}.wav")
    try:
        wav_path.write_bytes(done.stdout)
        audio, rate = sf.read(wav_path, dtype="float32")
    finally:
        wav_path.unlink(missing_ok=True)
    audio = soxr.resample(audio, rate, RATE).astype(np.float32)
    loud = np.flatnonzero(np.abs(audio) > 0.02 * np.abs(audio).max())
    audio = audio[loud[0] : loud[-1] + 1]
    return (audio * (peak / np.abs(audio).max())).astype(np.float32)


def frame_levels(x: np.ndarray, frame: int) -> np.ndarray:
    usable = len(x) - len(x) % frame
    return np.sqrt(np.mean(np.square(x[:usable].reshape(-1, frame), dtype=np.float64), axis=1))


def loud_runs(x: np.ndarray, frame: int, threshold: float) -> list[tuple[int, int]]:
    """(start, end) sample ranges of consecutive frames above ``threshold`` (gaps < 0.3 s joined)."""
    loud = frame_levels(x, frame) > threshold
    runs: list[list[int]] = []
    for index in map(int, np.flatnonzero(loud)):
        if runs and index - runs[-1][1] <= int(0.3 * RATE / frame):
            runs[-1][1] = index + 1
        else:
            runs.append([index, index + 1])
    return [(a * frame, b * frame) for a, b in runs]


def capture_while(mic: MicSource, process: subprocess.Popen[bytes], tail_s: float) -> np.ndarray:
    """Read the microphone until ``process`` ends, then ``tail_s`` more seconds."""
    blocks: list[np.ndarray] = []
    deadline: float | None = None
    while deadline is None or time.monotonic() < deadline:
        block = mic.read(0.1)
        assert block is not None
        blocks.append(block)
        if deadline is None and process.poll() is not None:
            deadline = time.monotonic() + tail_s
    return np.concatenate(blocks)


def test_devices_are_listed_and_resolved(pulse_in_process: PulseServer) -> None:
    names = [d.name for d in list_input_devices()]
    assert "pulse" in names
    assert resolve_device("PULSE").name == "pulse"  # case-insensitive
    by_index = resolve_device(str(resolve_device("pulse").index))
    assert by_index.name == "pulse"
    assert resolve_device(None).is_default
    with pytest.raises(StartupError) as nothing:
        resolve_device("no such microphone")
    assert nothing.value.exit_code == EXIT_STARTUP
    assert "matches nothing" in str(nothing.value) and "'pulse'" in str(nothing.value)
    assert "\n" not in str(nothing.value)
    with pytest.raises(StartupError, match="matches 2 devices"):
        resolve_device("e")  # in both "pulse" and "default"
    with pytest.raises(StartupError, match="no input device with index 999"):
        resolve_device("999")


def test_a_refused_rate_falls_back_to_one_the_device_supports(pulse_in_process: PulseServer) -> None:
    pulse = resolve_device("pulse")
    assert choose_rate(pulse, 16000, 1) == 16000
    mic = MicSource(device="pulse", sample_rate=768000, channels=1)  # beyond what ALSA's pulse plugin takes
    mic.open()
    try:
        assert mic.sample_rate == pulse.default_rate
        assert mic.first_audio.wait(FIRST_AUDIO_TIMEOUT_S)
    finally:
        mic.close()


@pytest.mark.slow
def test_mic_hears_what_is_played_with_the_right_energy_at_the_right_time(
    pulse_in_process: PulseServer, tmp_path: Path
) -> None:
    """Play 0.5 s silence, 1 s of a 440 Hz tone, 0.6 s silence, a spoken word, 0.5 s silence."""
    silence = np.zeros(int(0.5 * RATE), np.float32)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)).astype(np.float32)
    word = spoken_word("stop", peak=0.5)
    gap = np.zeros(int(0.6 * RATE), np.float32)
    program = np.concatenate([silence, tone, gap, word, silence])
    wav = tmp_path / "program.wav"
    sf.write(wav, program, RATE, subtype="PCM_16")

    mic = MicSource(device="pulse", sample_rate=RATE, channels=1, block_ms=30, ring_seconds=30)
    mic.open()
    try:
        assert mic.sample_rate == RATE and mic.name == "mic:pulse"
        assert mic.first_audio.wait(FIRST_AUDIO_TIMEOUT_S), "no capture callback"
        first_audio_at = time.monotonic()
        before = mic.read(0.0)
        assert before is not None
        played_at = time.monotonic()
        player = pulse_in_process.play(wav)
        captured = np.concatenate([before, capture_while(mic, player, tail_s=0.7)])
        assert player.wait(10) == 0
    finally:
        mic.close()

    frame = int(0.02 * RATE)
    runs = loud_runs(captured, frame, threshold=0.01)
    assert len(runs) == 2, f"expected the tone and the word, got runs {runs}"
    (tone_start, tone_end), (word_start, word_end) = runs
    # The tone arrives at its level (a null sink at 100% volume passes samples through).
    heard_tone = captured[tone_start + frame : tone_end - frame]
    assert abs(rms_db(heard_tone) - rms_db(tone)) < 1.0
    assert abs((tone_end - tone_start) / RATE - 1.0) < 0.1
    # The word arrives 1.6 s after the tone started, with the energy it was played with.
    assert abs((word_start - tone_start) / RATE - 1.6) < 0.15
    assert abs(rms_db(captured[word_start:word_end]) - rms_db(word)) < 2.0
    # And about when it was played: 0.5 s into the file, plus player start-up and latency.
    sample_time_of_play = (played_at - first_audio_at) * RATE + len(before)
    delay = (tone_start - sample_time_of_play) / RATE
    assert 0.3 < delay < 2.0, f"tone heard {delay:.2f} s after paplay started"
    counters = mic.counters
    assert counters["frames"] >= len(captured)
    assert counters["overflow_samples"] == 0


@pytest.mark.slow
def test_losing_the_sound_server_raises_source_lost_and_reopen_recovers() -> None:
    server = start_or_fail()
    try:
        with client_environment(server):
            mic = MicSource(device="pulse", sample_rate=RATE, channels=1)
            mic.open()
            try:
                assert mic.first_audio.wait(FIRST_AUDIO_TIMEOUT_S)
                assert mic.read(1.0) is not None
                server.kill()
                with pytest.raises(SourceLost, match="mic:pulse"):
                    for _ in range(200):  # drains what was captured, then reports the loss
                        mic.read(0.1)
                frames_before = mic.counters["frames"]
                with pytest.raises(SourceLost, match="still unavailable"):
                    mic.reopen()  # the server is still down
                with pytest.raises(SourceLost):
                    mic.read(0.1)  # a lost source never pretends the stream ended
                server.start()
                mic.reopen()
                assert mic.first_audio.wait(FIRST_AUDIO_TIMEOUT_S)
                block = mic.read(2.0)
                assert block is not None
                assert mic.counters["frames"] > frames_before  # counters carry across the reopen
            finally:
                mic.close()
    finally:
        server.stop()


def test_an_error_inside_the_callback_is_reported_not_lost(pulse_in_process: PulseServer) -> None:
    """Fault injection: a ring of the wrong shape makes the callback's copy fail."""
    mic = MicSource(device="pulse", sample_rate=RATE, channels=2)
    mic.open()
    try:
        assert mic.channels == 2
        mic._ring = RingBuffer(RATE, channels=1)  # a stereo block cannot be copied into it
        with pytest.raises(SourceLost, match="capture failed: ValueError"):
            for _ in range(int(FIRST_AUDIO_TIMEOUT_S / 0.1)):
                mic.read(0.1)
    finally:
        mic.close()
