"""The synthetic-speech dataset generator and its augmentations, on real TTS output."""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from trainer import augment, noise, tts
from trainer.synth import COLUMNS, INFO_FILE, SPLITS, split_voice_keys

REPO = Path(__file__).resolve().parents[1]
VOCAB = """\
[labels]
stop = ["stop", "stop!"]
go = "go"
yes = "yes"
_background_ = []
"""


def _synth(out: Path, vocab: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "trainer", "synth", "--vocab", str(vocab), "--out", str(out), *extra]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def _rows(root: Path) -> dict[str, list[dict[str, str]]]:
    rows: dict[str, list[dict[str, str]]] = {}
    for split in SPLITS:
        path = root / split / "metadata.csv"
        if path.exists():
            with path.open(encoding="utf-8", newline="") as handle:
                reader = csv.DictReader(handle)
                assert tuple(reader.fieldnames or ()) == COLUMNS
                rows[split] = list(reader)
    return rows


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vocab") / "three.toml"
    path.write_text(VOCAB, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, vocab_file: Path) -> Path:
    out = tmp_path_factory.mktemp("synth") / "data"
    done = _synth(
        out,
        vocab_file,
        "--engines",
        "espeak-ng,flite",
        "--max-voices",
        "6",
        "--rare-voice-repeats",
        "2",
        "--seed",
        "3",
        "--jobs",
        "2",
    )
    assert done.returncode == 0, done.stderr
    assert "synth: wrote" in done.stderr  # the time taken is logged
    return out


@pytest.mark.slow
def test_dataset_has_all_splits_labels_and_readable_audio(dataset: Path) -> None:
    rows = _rows(dataset)
    assert set(rows) == set(SPLITS)
    for split, split_rows in rows.items():
        assert {r["label"] for r in split_rows} == {"stop", "go", "yes", "_background_"}, split
        for r in split_rows:
            audio, rate = sf.read(dataset / split / r["file_name"], dtype="float32")
            assert rate == 16000
            assert audio.ndim == 1 and 0.3 < len(audio) / rate < 3.0
            assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) <= 1.0
            if r["label"] == "_background_":
                assert r["engine"] == "noise" and r["voice"] == "" and r["augment"].startswith("bg=")
            else:
                assert r["engine"] in ("espeak-ng", "flite") and r["voice"].startswith(r["engine"] + ":")
                assert r["text"] in ("stop", "stop!", "go", "yes")


@pytest.mark.slow
def test_no_voice_is_in_two_splits(dataset: Path) -> None:
    voices = {split: {r["voice"] for r in rows if r["voice"]} for split, rows in _rows(dataset).items()}
    assert voices["train"] and voices["validation"] and voices["test"]
    assert not voices["train"] & voices["test"]
    assert not voices["train"] & voices["validation"]
    assert not voices["validation"] & voices["test"]


@pytest.mark.slow
def test_augmentations_are_recorded(dataset: Path) -> None:
    rows = _rows(dataset)
    train_speech = [r["augment"] for r in rows["train"] if r["label"] != "_background_"]
    assert all("level=" in a and "mic" in a and "shift=" in a for a in train_speech)
    assert all("rate=" in a for a in train_speech)  # TTS rate variation is part of the record
    steps = {step.split("=")[0] for a in train_speech for step in a.split(";")}
    assert {"speed", "noise"} <= steps
    held_out = [r["augment"] for r in rows["test"] + rows["validation"] if r["label"] != "_background_"]
    conditions = {step for a in held_out for step in a.split(";")}
    assert {"clean", "snr0", "telephone", "level-45"} <= conditions
    backgrounds = {
        r["augment"].split(";")[0] for split in rows.values() for r in split if r["label"] == "_background_"
    }
    assert len(backgrounds) >= 3  # several kinds of non-speech


@pytest.mark.slow
def test_same_seed_same_dataset_whatever_the_number_of_jobs(tmp_path: Path, vocab_file: Path) -> None:
    digests = []
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}"
        done = _synth(
            out, vocab_file, "--engines", "espeak-ng", "--max-voices", "4", "--seed", "11", "--jobs", jobs
        )
        assert done.returncode == 0, done.stderr
        assert (out / INFO_FILE).exists()  # timings: the one file that may differ between runs
        files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != INFO_FILE)
        digest = hashlib.sha256()
        for path in files:
            digest.update(str(path.relative_to(out)).encode())
            digest.update(path.read_bytes())
        digests.append(digest.hexdigest())
    assert digests[0] == digests[1]


def test_bad_vocabulary_is_one_line_and_exit_3(tmp_path: Path) -> None:
    vocab = tmp_path / "bad.toml"
    vocab.write_text("[labels]\nstop = 3\n", encoding="utf-8")
    done = _synth(tmp_path / "out", vocab)
    assert done.returncode == 3
    assert done.stderr.strip().count("\n") == 0 and "labels.stop" in done.stderr
    assert "Traceback" not in done.stderr


def test_voice_split_is_disjoint_and_holds_out_small_engines() -> None:
    keys = (
        [f"espeak-ng:en+v{i}" for i in range(40)]
        + [f"flite:{n}" for n in ("a", "b", "c", "d", "e")]
        + ["festival:x", "festival:y"]
    )
    split = split_voice_keys(keys, seed=5)
    assert set(split) == set(keys)
    for engine in ("espeak-ng", "flite", "festival"):
        held = [k for k, s in split.items() if k.startswith(engine) and s == "test"]
        assert held, engine
    assert split == split_voice_keys(list(reversed(keys)), seed=5)


def _band_energy(audio: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / 16000)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum() / spectrum.sum())


def test_telephone_and_8khz_remove_the_high_band() -> None:
    rng = np.random.default_rng(0)
    speech = tts.synthesize("seven", tts.Voice("espeak-ng", "en-us"))
    assert _band_energy(speech, 4200, 8000) > 0.01
    assert _band_energy(augment.telephone(speech, 16000), 4200, 8000) < 1e-3
    assert _band_energy(augment.resample_through(speech, 16000, 8000), 4200, 8000) < 1e-3
    assert _band_energy(augment.telephone(speech, 16000), 0, 200) < 0.01
    reverberant = augment.reverberate(speech, 16000, rng, 0.6)
    assert len(reverberant) == len(speech)


def test_level_noise_and_train_time_chain() -> None:
    rng = np.random.default_rng(1)
    speech = tts.synthesize("stop", tts.Voice("espeak-ng", "en-gb"))
    quiet = augment.set_speech_level(speech, -40.0)
    assert noise.rms_dbfs(noise.active_part(quiet)) == pytest.approx(-40.0, abs=0.5)
    noisy = augment.add_noise(speech, 16000, rng, "pink", 0.0)
    residual = noisy - speech
    assert noise.rms_dbfs(residual) == pytest.approx(noise.rms_dbfs(noise.active_part(speech)), abs=1.0)
    changed = 0
    for seed in range(20):
        out = augment.train_time_augment(speech, 16000, np.random.default_rng(seed))
        assert out.dtype == np.float32 and np.all(np.isfinite(out)) and np.max(np.abs(out)) <= 1.0
        changed += int(len(out) != len(speech) or not np.allclose(out, speech))
    assert changed >= 10
    warped = augment.vocal_tract_warp(speech, 16000, 1.12)
    assert len(warped) == len(speech) and not np.allclose(warped, speech)
