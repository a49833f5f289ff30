"""Resampling, file and stdin sources, the source factory, and the bad inputs each must refuse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamclf.audio import FileSource, Source, StdinSource, StreamResampler, open_source, to_mono
from streamclf.audio.mic import MicSource
from streamclf.config import CaptureSettings
from streamclf.errors import InputError
from tests.audio import wav_header
from tests.privileges import without_dac_override

REPO = Path(__file__).resolve().parent.parent


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12))


def length(block: np.ndarray | None) -> int:
    assert block is not None, "unexpected end of stream"
    return len(block)


def read_all(source: Source, timeout: float = 1.0) -> np.ndarray:
    blocks = []
    while (block := source.read(timeout)) is not None:
        blocks.append(block)
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


# --------------------------------------------------------------------------- resampling


def test_resampler_keeps_a_1khz_tone_frequency_and_level_from_44k1_to_16k() -> None:
    signal = tone(1000, 2.0, 44100)
    resampler = StreamResampler(44100, 16000)
    rng = np.random.default_rng(1)
    pieces, start = [], 0
    while start < len(signal):  # uneven block sizes, as a capture callback might deliver
        size = int(rng.integers(1, 2000))
        pieces.append(resampler.process(signal[start : start + size]))
        start += size
    pieces.append(resampler.flush())
    out = np.concatenate(pieces)
    assert out.dtype == np.float32
    assert abs(len(out) - 32000) <= 2
    steady = out[1600:-1600]  # away from the filter's start-up and tail
    assert abs(dominant_frequency(steady, 16000) - 1000) < 2
    assert abs(rms_db(steady) - rms_db(signal)) < 0.1


def test_resampler_output_does_not_depend_on_block_boundaries() -> None:
    signal = np.random.default_rng(2).standard_normal(48000).astype(np.float32) * 0.1
    whole = StreamResampler(48000, 16000)
    one = np.concatenate([whole.process(signal), whole.flush()])
    chunked = StreamResampler(48000, 16000)
    parts = [chunked.process(signal[i : i + 441]) for i in range(0, len(signal), 441)]
    many = np.concatenate([*parts, chunked.flush()])
    assert len(one) == len(many)
    assert np.allclose(one, many, atol=1e-5)


def test_equal_rates_pass_blocks_through_and_downmix() -> None:
    resampler = StreamResampler(16000, 16000)
    assert resampler.is_identity
    block = np.stack([np.ones(10, np.float32), np.zeros(10, np.float32)], axis=1)
    assert resampler.process(block).tolist() == [0.5] * 10
    assert len(resampler.flush()) == 0
    assert to_mono(np.arange(4, dtype=np.float32)).tolist() == [0, 1, 2, 3]


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize(
    ("suffix", "fmt", "subtype"),
    [(".wav", "WAV", "PCM_16"), (".flac", "FLAC", "PCM_16"), (".ogg", "OGG", "VORBIS")],
)
def test_file_source_reads_each_format_downmixed(tmp_path: Path, suffix: str, fmt: str, subtype: str) -> None:
    rate = 22050
    left, right = tone(440, 1.0, rate, 0.6), tone(440, 1.0, rate, 0.2)
    path = tmp_path / f"tone{suffix}"
    sf.write(path, np.stack([left, right], axis=1), rate, format=fmt, subtype=subtype)
    source = FileSource(path, speed=0)
    source.open()
    assert source.sample_rate == rate
    assert source.name == f"file:tone{suffix}"
    audio = read_all(source)
    source.close()
    assert audio.ndim == 1 and audio.dtype == np.float32
    assert abs(len(audio) - rate) <= 1
    assert source.counters["frames"] == len(audio)
    expected = (left + right) / 2  # the mean of both channels: amplitude 0.4
    assert abs(rms_db(audio[2000:-2000]) - rms_db(expected[2000:-2000])) < 0.3
    assert abs(dominant_frequency(audio, rate) - 440) < 2
    if fmt != "OGG":  # lossless formats come back sample for sample
        assert np.allclose(audio, expected, atol=1e-4)


def test_file_source_reads_espeak_speech(tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    wav = tmp_path / "go.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "go left"], check=True)
    info = sf.info(wav)
    source = FileSource(wav, speed=0)
    source.open()
    audio = read_all(source)
    assert len(audio) == info.frames
    assert rms_db(audio) > -40  # there is speech in it


def test_file_source_paces_in_real_time_and_as_fast_as_possible(tmp_path: Path) -> None:
    rate = 16000
    path = tmp_path / "long.wav"
    sf.write(path, tone(300, 60.0, rate, 0.1), rate)
    fast = FileSource(path, speed=0)
    fast.open()
    started = time.monotonic()
    assert len(read_all(fast)) == 60 * rate
    fast_elapsed = time.monotonic() - started

    short = tmp_path / "short.wav"
    sf.write(short, tone(300, 1.0, rate, 0.1), rate)
    paced = FileSource(short, speed=1.0, block_ms=250)
    paced.open()
    assert length(paced.read(0.0)) == 0  # the first block is not due yet: the timeout is honoured
    started = time.monotonic()
    assert len(read_all(paced)) == rate
    paced_elapsed = time.monotonic() - started
    # Loose bounds only: 60 s of audio unpaced takes far less than its duration,
    # and 1 s paced takes about a second (never noticeably less).
    assert fast_elapsed < 30
    assert paced_elapsed > 0.9


def test_file_source_speed_multiplier_divides_the_duration(tmp_path: Path) -> None:
    path = tmp_path / "two.wav"
    sf.write(path, tone(300, 2.0, 16000, 0.1), 16000)
    source = FileSource(path, speed=4.0)
    source.open()
    started = time.monotonic()
    read_all(source)
    assert time.monotonic() - started > 0.45  # 2 s at 4x: about 0.5 s


def _bad_file(tmp_path: Path, case: str) -> Path:
    path = tmp_path / f"bad-{case}.wav"
    good = tmp_path / "good.wav"
    sf.write(good, tone(440, 0.5, 16000), 16000, subtype="PCM_16")
    if case == "missing":
        return tmp_path / "no-such-file.wav"
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "not-audio":
        path.write_text("this is a shopping list, not a recording\n" * 20)
    elif case == "truncated-header":
        path.write_bytes(good.read_bytes()[:20])
    elif case == "zero-channels":
        path.write_bytes(wav_header(0, 16000, 3200) + bytes(3200))
    return path


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("missing", "no such file"),
        ("directory", "is a directory"),
        ("empty", "empty file"),
        ("not-audio", "not an audio file"),
        ("truncated-header", "truncated or corrupt WAV header"),
        ("zero-channels", "has 0 channels"),
    ],
)
def test_bad_files_raise_one_line_input_errors_naming_the_file(tmp_path: Path, case: str, why: str) -> None:
    path = _bad_file(tmp_path, case)
    source = FileSource(path)
    with pytest.raises(InputError) as caught:
        source.open()
    message = str(caught.value)
    assert path.name in message
    assert why in message
    assert "\n" not in message


def test_unreadable_file_raises_permission_denied() -> None:
    folder = Path(tempfile.mkdtemp(prefix="streamclf-perm-"))
    try:
        folder.chmod(0o755)
        path = folder / "secret.wav"
        sf.write(path, tone(440, 0.2, 16000), 16000)
        path.chmod(0)
        probe = (
            "from streamclf.audio import FileSource\n"
            "from streamclf.errors import InputError\n"
            "import sys\n"
            "try:\n    FileSource(sys.argv[1]).open()\n"
            "except InputError as e:\n    print(e)\n"
        )
        # a subprocess with file permissions binding even for root, through the same code
        done = subprocess.run(
            [*without_dac_override(), sys.executable, "-c", probe, str(path)],
            capture_output=True,
            text=True,
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=120,
        )
        assert done.stdout.strip() == f"{path}: permission denied", done.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_truncated_data_yields_what_is_readable(tmp_path: Path) -> None:
    good = tmp_path / "good.wav"
    audio = tone(440, 1.0, 16000)
    sf.write(good, audio, 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    raw = good.read_bytes()
    cut.write_bytes(raw[: 44 + 2 * 6000 + 1])  # header + 6000 samples + half a sample
    source = FileSource(cut, speed=0)
    source.open()
    got = read_all(source)
    assert 5900 <= len(got) <= 6000
    assert np.allclose(got, audio[: len(got)], atol=1e-4)


def test_nan_and_inf_samples_become_zero_and_are_counted(tmp_path: Path) -> None:
    audio = tone(440, 0.5, 16000)
    audio[100:110] = np.nan
    audio[200] = np.inf
    audio[300] = -np.inf
    path = tmp_path / "nan.wav"
    sf.write(path, audio, 16000, subtype="FLOAT")
    source = FileSource(path, speed=0)
    source.open()
    got = read_all(source)
    assert np.isfinite(got).all()
    assert got[100:110].tolist() == [0.0] * 10 and got[200] == 0 and got[300] == 0
    assert source.counters["nonfinite_samples"] == 12


def test_read_after_close_is_end_of_stream(tmp_path: Path) -> None:
    path = tmp_path / "t.wav"
    sf.write(path, tone(440, 0.5, 16000), 16000)
    source = FileSource(path, speed=0)
    source.open()
    source.close()
    assert source.read(0.1) is None
    source.close()  # twice is fine


# --------------------------------------------------------------------------- stdin

WRITER = r"""
import sys, numpy as np
rate, first, rest = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
samples = (np.arange(first + rest) % 2000 - 1000).astype("<i2")
out = sys.stdout.buffer
out.write(samples[:first].tobytes()); out.flush()
sys.stdin.readline()                      # wait until the test says go on
out.write(samples[first:].tobytes() + b"\x7f")   # ...and end mid-frame
out.flush()
"""


def test_stdin_source_from_a_pipe_honours_timeouts_and_drops_a_partial_frame() -> None:
    first, rest = 4800, 7001
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, "16000", str(first), str(rest)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert writer.stdin is not None and writer.stdout is not None
    source = StdinSource(rate=16000, channels=1, stream=writer.stdout)
    source.open()
    try:
        got: list[np.ndarray] = []
        while sum(map(len, got)) < first:
            block = source.read(10.0)
            assert block is not None
            got.append(block)
        assert length(source.read(0.05)) == 0  # nothing more yet: an empty block, not the end
        writer.stdin.write(b"go\n")
        writer.stdin.close()
        got.append(read_all(source, timeout=10.0))
    finally:
        source.close()
        writer.wait(timeout=10)
    audio = np.concatenate(got)
    expected = (np.arange(first + rest) % 2000 - 1000).astype(np.float32) / 32768
    assert len(audio) == first + rest
    assert np.array_equal(audio, expected)
    assert source.counters["dropped_bytes"] == 1
    assert source.counters["frames"] == first + rest


READER = r"""
import json, sys
from streamclf.audio import StdinSource
source = StdinSource(rate=8000, channels=2)
source.open()
total, peak = 0, 0.0
while (block := source.read(5.0)) is not None:
    total += len(block)
    if len(block):
        peak = max(peak, float(abs(block).max()))
print(json.dumps({"samples": total, "peak": peak, "dropped": source.counters["dropped_bytes"]}))
"""


def test_stdin_source_reads_real_stdin_stereo_from_a_shell_pipe(tmp_path: Path) -> None:
    """sox writes 1 s of stereo s16le (a sine left, silence right) plus 3 stray bytes into our stdin."""
    if shutil.which("sox") is None:
        pytest.skip("sox not installed")
    pipeline = (
        "{ sox -n -r 8000 -c 2 -b 16 -e signed-integer -t raw - synth 1 sine 500 remix 1 0 gain -6;"
        " printf 'abc'; } | " + f"{sys.executable} -c '{READER}'"
    )
    done = subprocess.run(
        ["bash", "-c", pipeline],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["samples"] == 8000
    assert result["dropped"] == 3  # 3 bytes: less than one 4-byte stereo frame
    assert 0.2 < result["peak"] < 0.3  # a -6 dB sine averaged with a silent channel: about 0.25


# --------------------------------------------------------------------------- factory


def test_open_source_picks_the_source_from_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    sf.write(path, tone(440, 0.1, 16000), 16000)
    from_file = open_source(CaptureSettings(source=str(path), speed=0.0))
    assert isinstance(from_file, FileSource) and from_file.speed == 0.0
    from_stdin = open_source(CaptureSettings(source="-", sample_rate=8000, channels=2))
    assert isinstance(from_stdin, StdinSource)
    assert from_stdin.sample_rate == 8000 and from_stdin.channels == 2
    assert open_source(CaptureSettings(source="-")).sample_rate == 16000
    mic = open_source(CaptureSettings(source="mic", device="pulse", sample_rate=16000))
    assert isinstance(mic, MicSource) and mic.device_spec == "pulse"
    for source in (from_file, from_stdin, mic):
        assert isinstance(source, Source)
