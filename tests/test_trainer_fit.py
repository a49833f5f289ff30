"""``python -m trainer fit`` end to end: a tiny wav2vec2 trained for a few steps on MInDS-14-shaped data."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("datasets")

from tests import trainer_data
from trainer.cli import main as trainer_main

REPO = Path(__file__).resolve().parents[1]
TINY_W2V2 = REPO / "configs" / "models" / "wav2vec2-tiny"
OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO)}


def run_module(module: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args], env=OFFLINE, cwd=REPO, capture_output=True, text=True,
        timeout=timeout, check=False,
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trainer_data.build_saved_dataset(tmp_path_factory.mktemp("minds14-like"))


Fitted = tuple[Path, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def fitted(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Fitted:
    """The shipped MInDS-14 config, with flags pointing it at local data and a tiny random wav2vec2."""
    out = tmp_path_factory.mktemp("fit") / "model"
    done = run_module(
        "trainer", "fit", "--config", "configs/minds14.toml",
        "--data", str(data), "--from-config", str(TINY_W2V2), "--output-dir", str(out),
        "--test-size", "0.25", "--max-steps", "4", "--eval-strategy", "steps", "--eval-steps", "2",
        "--per-device-train-batch-size", "4", "--gradient-accumulation-steps", "1",
        "--learning-rate", "1e-3", "--logging-steps", "1",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done


@pytest.mark.slow
def test_fit_writes_a_complete_model_directory(fitted: Fitted) -> None:
    out, done = fitted
    for name in ("model.safetensors", "config.json", "preprocessor_config.json", "README.md", "metrics.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["id2label"] == {str(i): name for i, name in enumerate(trainer_data.INTENTS)}
    assert config["label2id"] == {name: i for i, name in enumerate(trainer_data.INTENTS)}
    assert "trainer fit" in done.stderr  # the Rich summary table
    assert "duration limit" in done.stderr


@pytest.mark.slow
def test_model_card_says_what_was_trained_and_how(fitted: Fitted) -> None:
    out, _ = fitted
    card = (out / "README.md").read_text(encoding="utf-8")
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    headings = ("## Data", "## Labels", "## Duration limit", "## Training arguments", "## Metrics",
                "## Reproduce")
    for heading in headings:
        assert heading in card
    assert f"**{metrics['duration_limit_s']:.2f} s**" in card and "95th percentile" in card
    assert "python -m trainer fit --config configs/minds14.toml" in card
    assert all(name in card for name in trainer_data.INTENTS)
    assert f"| eval_accuracy | {metrics['eval']['eval_accuracy']:.4f} |" in card


@pytest.mark.slow
def test_metrics_come_from_the_shipped_script_and_match_evaluate(
    fitted: Fitted, data: Path, tmp_path: Path
) -> None:
    out, _ = fitted
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert Path(metrics["metric_scripts"][0]) == REPO / "trainer" / "metrics" / "accuracy.py"
    accuracy = metrics["eval"]["eval_accuracy"]
    assert 0.0 <= accuracy <= 1.0 and (accuracy * 4) == pytest.approx(round(accuracy * 4))  # 4 test clips
    assert "eval_macro_f1" in metrics["eval"]
    done = run_module(
        "trainer", "evaluate", "--model", str(out), "--data", str(data), "--test-size", "0.25",
        "--output", str(tmp_path),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "evaluation.json").read_text(encoding="utf-8"))
    assert report["clips"] == 4
    assert report["accuracy"] == pytest.approx(accuracy)  # same split, same limit, same script


@pytest.mark.slow
def test_model_directory_loads_in_the_transformers_pipeline(
    fitted: Fitted, data: Path
) -> None:
    from transformers import pipeline

    out, _ = fitted
    wav = next((data.parent / "wav").glob("balance_*.wav"))
    classify = pipeline("audio-classification", model=str(out))
    ranked = classify(str(wav), top_k=3)
    assert len(ranked) == 3
    assert {item["label"] for item in ranked} <= set(trainer_data.INTENTS)
    assert sum(item["score"] for item in ranked) <= 1.0 + 1e-6


# Runs the lead's `streamclf classify` CLI on the trained directory (skipped until that CLI exists).
@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("streamclf.cli") is None, reason="streamclf classify CLI not there yet"
)
def test_model_directory_runs_in_streamclf_classify(
    fitted: Fitted, data: Path
) -> None:
    out, _ = fitted
    wav = next((data.parent / "wav").glob("freeze_*.wav"))
    done = subprocess.run(
        [sys.executable, "-m", "streamclf", "classify", "--json", "--no-vad", "--model", str(out), str(wav)],
        env=OFFLINE, cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    utterances = [event for event in events if event["type"] == "utterance"]
    assert len(utterances) == 1
    assert {intent["label"] for intent in utterances[0]["intents"]} <= set(trainer_data.INTENTS)


# Bad input goes through the CLI's own main() in this process (the subprocess start-up costs ~10 s):
# main() returning the exit code with one error line is what keeps tracebacks away.


def test_fit_with_a_missing_label_column_fails_in_one_line(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = trainer_main(
        ["fit", "--data", str(data), "--label-column", "intent", "--from-config", str(TINY_W2V2),
         "--output-dir", str(tmp_path / "never")]
    )
    errors = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert errors[-1].startswith("trainer: error: data: label column 'intent' not found")
    assert not (tmp_path / "never" / "model.safetensors").exists()


def test_fit_on_a_folder_without_audio_fails_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    code = trainer_main(
        ["fit", "--data", str(tmp_path / "empty"), "--from-config", str(TINY_W2V2),
         "--output-dir", str(tmp_path / "never")]
    )
    assert code == 3
    assert "no audio files" in capsys.readouterr().err.strip().splitlines()[-1]


def test_fit_usage_error_exits_2() -> None:
    done = run_module("trainer", "fit", "--learning-rate", "fast")
    assert done.returncode == 2
