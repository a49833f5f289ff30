"""Fault injection, bad files: `streamclf classify` over a folder of broken and odd audio.

Every bad file gets exactly one line on stderr naming it and saying why; every other file is
classified; the exit code (4) says some failed. Files are built here, on the spot: real speech
from espeak-ng, noise from numpy, broken headers by hand, two hours of silence as a sparse WAV.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamclf.errors import EXIT_SOME_INPUTS_FAILED
from tests.audio import wav_header
from tests.privileges import without_dac_override
from tests.tiny_model import build_tiny_model, spoken_word

RATE = 16000
MAX_UTTERANCE_S = 8.0  # the default vad.max_utterance_s


def sparse_silence_wav(path: Path, seconds: float, rate: int = RATE) -> None:
    """A 16-bit mono WAV of ``seconds`` of digital silence, written as a sparse file (instant)."""
    data_bytes = int(seconds * rate) * 2
    with open(path, "wb") as fh:
        fh.write(wav_header(1, rate, data_bytes))
        fh.truncate(44 + data_bytes)


def word_with_pauses(word: str, rate: int = RATE) -> np.ndarray:
    speech = spoken_word(word, rate) * 0.5
    pause = np.zeros(rate // 2, np.float32)
    return np.concatenate([pause, speech, pause])


def monologue(seconds: float) -> np.ndarray:
    """Continuous speech (no pause long enough to close a segment) for ``seconds``."""
    text = "the quick brown fox jumps over the lazy dog and keeps on running far away"
    chunk = spoken_word(text, RATE, speed_wpm=200)
    # squeeze every inter-word pause below 60 ms so only the maximum length can cut it
    frame = RATE // 100
    energy = np.array([np.abs(chunk[i : i + frame]).max() for i in range(0, len(chunk) - frame, frame)])
    voiced = energy > 0.02
    keep = np.repeat(voiced, frame)
    keep = np.concatenate([keep, np.ones(len(chunk) - len(keep), bool)])
    dense = chunk[keep]
    reps = int(np.ceil(seconds * RATE / len(dense)))
    return np.tile(dense, reps)[: int(seconds * RATE)].astype(np.float32) * 0.5


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny", labels=("yes", "stop", "go"))


BAD = {
    "empty.wav": "empty file",
    "truncated-header.wav": "truncated or corrupt WAV header",
    "not-audio.wav": "not an audio file",
    "a-directory.wav": "is a directory",
    "zero-channels.wav": "0 channels",
}
"""File name → what its stderr line must say."""

ONE_WORD = (
    "speech.wav",
    "truncated-data.wav",
    "eight-channels.wav",
    "float-96k.wav",
    "nan-inf.wav",
    "clipped.wav",
)
"""Readable files holding one spoken word each: one utterance apiece."""
GOOD = (*ONE_WORD, "silence-2h.wav", "monologue-10min.wav")
"""Readable files: classified (or, for silence, read to the end without an utterance)."""


def build_corpus(folder: Path) -> None:
    word = word_with_pauses("stop")
    sf.write(folder / "speech.wav", word, RATE, subtype="PCM_16")
    good_bytes = (folder / "speech.wav").read_bytes()
    (folder / "empty.wav").write_bytes(b"")
    (folder / "truncated-header.wav").write_bytes(good_bytes[:20])
    (folder / "truncated-data.wav").write_bytes(good_bytes[: 44 + len(word)])  # header claims 2x this
    (folder / "not-audio.wav").write_text("milk, eggs, bread\n" * 50)
    (folder / "a-directory.wav").mkdir()
    (folder / "zero-channels.wav").write_bytes(wav_header(0, RATE, 3200) + bytes(3200))
    eight = np.stack([word * (0.2 + 0.1 * c) for c in range(8)], axis=1)
    sf.write(folder / "eight-channels.wav", eight, RATE, subtype="PCM_16")
    import soxr

    sf.write(folder / "float-96k.wav", soxr.resample(word, RATE, 96000), 96000, subtype="FLOAT")
    poisoned = word.copy()
    poisoned[::997] = np.nan
    poisoned[500::1999] = np.inf
    poisoned[700::2999] = -np.inf
    sf.write(folder / "nan-inf.wav", poisoned, RATE, subtype="FLOAT")
    sf.write(folder / "clipped.wav", np.clip(word * 40.0, -1.0, 1.0), RATE, subtype="PCM_16")
    sparse_silence_wav(folder / "silence-2h.wav", 2 * 3600)
    sf.write(folder / "monologue-10min.wav", monologue(600), RATE, subtype="PCM_16")


def run_classify(model: Path, files: list[Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamclf", "classify", "--json", "--model", str(model), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,  # type: ignore[call-overload]
    )


@pytest.mark.slow
def test_classify_over_bad_files_reports_each_once_and_classifies_the_rest(
    tmp_path: Path, model_dir: Path
) -> None:
    build_corpus(tmp_path)
    names = [*GOOD[:1], *BAD, *GOOD[1:]]  # a bad file between good ones must not stop the run
    proc = run_classify(model_dir, [tmp_path / n for n in names])

    assert proc.returncode == EXIT_SOME_INPUTS_FAILED, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    for name, why in BAD.items():
        mine = [line for line in lines if name in line]
        assert len(mine) == 1, (name, lines)
        assert why in mine[0], (name, mine[0])
    for name in GOOD:
        assert not any(name in line and "fail" in line.lower() for line in lines), (name, lines)
    assert f"{len(BAD)} of {len(names)} files failed" in proc.stderr
    poisoned = [line for line in lines if "nan-inf.wav" in line]
    assert len(poisoned) == 1 and "NaN/Inf" in poisoned[0], poisoned  # once per file, not per block

    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all(e["type"] == "utterance" for e in events), events
    by_file: dict[str, list[dict]] = {}
    for event in events:
        by_file.setdefault(Path(event["file"]).name, []).append(event)
    assert set(by_file) <= set(GOOD)
    for name in ONE_WORD:
        assert len(by_file.get(name, [])) == 1, (name, by_file.get(name))
        (utterance,) = by_file[name]
        assert utterance["intents"] and 0.0 < utterance["end"] - utterance["start"] < 2.0
        assert all(np.isfinite(i["score"]) for i in utterance["intents"])
    assert "silence-2h.wav" not in by_file  # two hours read to the end, nothing heard
    cuts = by_file["monologue-10min.wav"]
    assert len(cuts) >= 600 / MAX_UTTERANCE_S * 0.9
    assert all(u["end"] - u["start"] <= MAX_UTTERANCE_S + 1e-6 for u in cuts)
    assert all(b["start"] >= a["end"] for a, b in itertools.pairwise(cuts))
    assert cuts[-1]["end"] <= 600.0


def test_permission_denied_file_is_reported_and_the_rest_classified(tmp_path: Path, model_dir: Path) -> None:
    """Root reads any file through its DAC capabilities; the run as root drops them (``setpriv``
    removes CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set before exec), so the
    kernel refuses the mode-0 file for real."""
    prefix = without_dac_override()
    good = tmp_path / "readable.wav"
    secret = tmp_path / "secret.wav"
    sf.write(good, word_with_pauses("go"), RATE, subtype="PCM_16")
    shutil.copy(good, secret)
    secret.chmod(0)
    proc = subprocess.run(
        [
            *prefix,
            sys.executable,
            "-m",
            "streamclf",
            "classify",
            "--json",
            "--model",
            str(model_dir),
            str(secret),
            str(good),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == EXIT_SOME_INPUTS_FAILED, proc.stderr
    mentions = [line for line in proc.stderr.splitlines() if "secret.wav" in line]
    assert len(mentions) == 1 and "permission denied" in mentions[0], proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [Path(e["file"]).name for e in events] == ["readable.wav"]
