"""``python -m trainer commands``: a user's own phrases to a model the daemon runs, started from the bundled
model's layers, with real other speech as ``_unknown_``, enrolled clips of the user's voice and
utterances kept by ``listen --keep`` and labelled in ``streamclf review``."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("datasets")

from trainer.cli import main as trainer_main

REPO = Path(__file__).resolve().parents[1]
SPEECH_COMMANDS = REPO.parent / "shared" / "data" / "speech_commands"
BUNDLED = REPO / "streamclf" / "models" / "commands"
OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
VOCAB = """[labels]
lights_on = ["lights on", "switch the lights on"]
left = "left"
"""
REAL_WORDS = ("yes", "no", "left")
"""Real clips given as other speech: "left" is a command here, so its clips must be left out."""

needs_real_speech = pytest.mark.skipif(
    not (SPEECH_COMMANDS / "metadata.csv").is_file(), reason="../shared/data/speech_commands is not here"
)


def run_trainer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trainer", *args], env=OFFLINE, cwd=REPO, capture_output=True, text=True,
        timeout=900, check=False,
    )  # fmt: skip


def real_folder(root: Path) -> Path:
    """Three real clips per word and split, in the Speech Commands layout."""
    with (SPEECH_COMMANDS / "metadata.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    picked = [r for w in REAL_WORDS for s in ("train", "validation")
              for r in [r for r in rows if r["label"] == w and r["split"] == s][:3]]  # fmt: skip
    for row in picked:
        (root / row["file_name"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SPEECH_COMMANDS / row["file_name"], root / row["file_name"])
    with (root / "metadata.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(picked[0]))
        writer.writeheader()
        writer.writerows(picked)
    return root


def enrolled_folder(root: Path) -> Path:
    """Two takes of "lights on" in the layout ``streamclf enroll`` writes."""
    (root / "lights_on").mkdir(parents=True)
    for take in range(2):
        wav = root / "lights_on" / f"lights_on_{take}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(140 + 30 * take), "-w", str(wav), "lights on"],
                       check=True, capture_output=True)  # fmt: skip
    (root / "metadata.csv").write_text(
        "file_name,label,text,speaker,take\n"
        "lights_on/lights_on_0.wav,lights_on,lights on,me,1\n"
        "lights_on/lights_on_1.wav,lights_on,lights on,me,2\n",
        encoding="utf-8",
    )
    return root


def reviewed_folder(folder: Path) -> Path:
    """``listen --keep``'s folder of two utterances; ``streamclf review`` accepts the first ("left")
    and skips the second, which stays unlabelled."""
    from tests.kept import make_kept_folder

    make_kept_folder(folder, [("left", [("left", 0.9), ("_unknown_", 0.1)]),
                              ("yes", [("lights_on", 0.5), ("left", 0.3)])])  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "streamclf", "review", str(folder), "--no-play"], input="as",
                          env=OFFLINE, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return folder


@pytest.fixture(scope="module")
def commands(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    if not (SPEECH_COMMANDS / "metadata.csv").is_file():
        pytest.skip("../shared/data/speech_commands is not here")
    root = tmp_path_factory.mktemp("commands")
    (root / "vocab.toml").write_text(VOCAB, encoding="utf-8")
    out = root / "model"
    done = run_trainer(
        "commands", "--vocab", str(root / "vocab.toml"), "--out", str(out),
        "--other-speech", str(real_folder(root / "real")), "--enrolled", str(enrolled_folder(root / "me")),
        "--reviewed", str(reviewed_folder(root / "kept")),
        "--engines", "espeak-ng", "--max-voices", "3", "--steps", "2", "--jobs", "1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done


@needs_real_speech
@pytest.mark.slow
def test_commands_writes_a_model_the_daemon_runs_and_says_how(
    commands: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, done = commands
    assert f"streamclf listen --model {out}" in done.stdout
    for stage in ("check phrases", "synthesise", "fit", "evaluate", "export"):
        assert f"5: {stage}" in done.stderr
    assert "time: all" in done.stderr
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert list(config["id2label"].values()) == ["lights_on", "left", "_unknown_", "_background_"]
    assert (out / "model.onnx").is_file() and (out / "model.int8.onnx").is_file()
    assert not list(out.glob("checkpoint-*"))

    from streamclf.classifier import load_classifier
    from streamclf.config import ModelSettings

    classifier = load_classifier(ModelSettings(model=str(out), backend="onnx", threads=1))
    audio, _ = sf.read(out.parent / "me" / "lights_on" / "lights_on_0.wav", dtype="float32")
    ranked = classifier.classify([audio], top_k=4)[0]
    assert sorted(i.label for i in ranked) == sorted(config["id2label"].values())


@needs_real_speech
@pytest.mark.slow
def test_unknown_is_other_speech_and_enrolled_clips_all_train(
    commands: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, _ = commands
    vocab = (out / "work" / "vocab.toml").read_text(encoding="utf-8")
    unknown_line = next(line for line in vocab.splitlines() if line.startswith("_unknown_"))
    phrases = json.loads(unknown_line.split("=", 1)[1])
    assert "hello" in phrases and "yes" in phrases
    assert "left" not in phrases and "on" not in phrases
    assert not any({"on", "lights", "switch", "the"} & set(p.lower().split()) for p in phrases)
    with (out / "work" / "synth" / "train" / "metadata.csv").open(encoding="utf-8") as handle:
        synthetic = [row["label"] for row in csv.DictReader(handle)]
    counts = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["train_label_counts"]
    real_train = 3 * 2  # yes and no: other speech; the real "left" clips are a command, left out
    assert counts["_unknown_"] == synthetic.count("_unknown_") + real_train
    assert counts["left"] == synthetic.count("left") + 1  # the reviewed utterance; the skipped one is out
    assert counts["lights_on"] == synthetic.count("lights_on") + 2  # both enrolled takes, none held out


@needs_real_speech
@pytest.mark.slow
def test_long_phrases_are_not_cut_to_the_length_of_the_real_one_second_clips(
    commands: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, _ = commands
    synth = out / "work" / "synth" / "train"
    with (synth / "metadata.csv").open(encoding="utf-8") as handle:
        names = [row["file_name"] for row in csv.DictReader(handle) if row["text"] == "switch the lights on"]
    typical = float(np.median([sf.info(str(synth / name)).duration for name in names]))
    limit = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["duration_limit_s"]
    assert typical > 1.0 and limit >= typical


@needs_real_speech
@pytest.mark.slow
def test_commands_starts_from_the_base_models_layers(
    commands: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    from safetensors.numpy import load_file

    out, _ = commands
    base = load_file(str(BUNDLED / "model.safetensors"))
    tuned = load_file(str(out / "model.safetensors"))
    shared = [name for name in base if name in tuned and base[name].shape == tuned[name].shape
              and base[name].ndim == 4]  # fmt: skip
    assert shared, "no convolution carried over"
    for name in shared:
        correlation = np.corrcoef(base[name].ravel(), tuned[name].ravel())[0, 1]
        assert correlation > 0.9, name  # two steps move the base's weights a little, not to new ones


# --- bad input: one line, exit 3, nothing written --------------------------------------------------


@pytest.mark.parametrize(
    ("vocab", "message"),
    [
        ('[labels]\nlights_on = "lights on"\nlights_on = "lamp on"\n', "duplicate label"),
        ('[labels]\nlights_on = "lights on"\nLights_On = "lamp on"\n', "duplicate label"),
        ('[labels]\nlights_on = ["lights on", ""]\n', "empty phrase"),
        ('[labels]\nlights_on = "lights on"\nbeep = "....."\n', "no letters to speak"),
        ('[labels]\nlights_on = "lights on"\nlamp = "lights on"\n', "also under"),
        ('[labels]\nlights_on = "lights on"\n_unknown_ = ["hello"]\n', "list only your commands"),
    ],
)
def test_a_bad_vocabulary_is_one_line_and_writes_no_model(
    vocab: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "vocab.toml").write_text(vocab, encoding="utf-8")
    code = trainer_main(["commands", "--vocab", str(tmp_path / "vocab.toml"), "--out", str(tmp_path / "out"),
                         "--other-speech", "none"])  # fmt: skip
    errors = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert errors[-1].startswith("trainer: error:") and message in errors[-1], errors
    assert not (tmp_path / "out" / "config.json").exists()


def test_a_phrase_no_engine_can_speak_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "vocab.toml").write_text('[labels]\ncoptic = "\u2c81\u2c83\u2c85"\n', encoding="utf-8")
    code = trainer_main(["commands", "--vocab", str(tmp_path / "vocab.toml"), "--out", str(tmp_path / "out"),
                         "--engines", "flite", "--other-speech", "none"])  # fmt: skip
    assert code == 3
    assert "no TTS engine can speak" in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_missing_enrolled_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "vocab.toml").write_text(VOCAB, encoding="utf-8")
    code = trainer_main(["commands", "--vocab", str(tmp_path / "vocab.toml"), "--out", str(tmp_path / "out"),
                         "--enrolled", str(tmp_path / "nobody")])  # fmt: skip
    assert code == 3
    assert "no such folder" in capsys.readouterr().err.strip().splitlines()[-1]


def test_init_from_names_the_model_to_start_from() -> None:
    from trainer.cli import build_parser
    from trainer.settings import fit_settings

    args = build_parser().parse_args(["fit", "--data", "x/y", "--init-from", "my-model"])
    assert fit_settings(args, None).model.base_model == "my-model"


@needs_real_speech
@pytest.mark.slow
def test_fit_init_from_a_custom_model_on_reviewed_clips_keeps_its_labels_and_head(
    commands: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    from safetensors.numpy import load_file

    model, _ = commands
    reviewed = tmp_path / "reviewed"
    shutil.copytree(model.parent / "me", reviewed)  # two clips of "lights on" …
    for take in (2, 3, 4):
        shutil.copy(reviewed / "lights_on" / "lights_on_0.wav", reviewed / f"kept_{take}.wav")
    with (reviewed / "metadata.csv").open("a", encoding="utf-8") as handle:
        handle.write("kept_2.wav,lights_on,,me,\nkept_3.wav,left,,me,\n")
        handle.write("kept_4.wav,,,me,\n")  # … and one nobody has reviewed
    out = tmp_path / "tuned"
    done = run_trainer("fit", "--data", str(reviewed), "--init-from", str(model), "--label-column", "label",
                       "--output-dir", str(out), "--max-steps", "1", "--per-device-train-batch-size", "2",
                       "--learning-rate", "1e-4")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    before = json.loads((model / "config.json").read_text(encoding="utf-8"))["id2label"]
    assert json.loads((out / "config.json").read_text(encoding="utf-8"))["id2label"] == before
    counts = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["split_sizes"]
    assert counts["train"] + counts["test"] == 4  # the unreviewed row is left out
    old, new = load_file(str(model / "model.safetensors")), load_file(str(out / "model.safetensors"))
    head = [name for name, w in old.items() if w.ndim and w.shape[0] == 4]
    assert head
    for name in head:
        assert np.corrcoef(old[name].ravel(), new[name].ravel())[0, 1] > 0.99, name  # the head carried over
