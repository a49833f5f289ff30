"""trainer.evaluate: figures on known answers, the shipped metric scripts, and the evaluate command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("evaluate")

from tests import trainer_data
from trainer.cli import main as trainer_main
from trainer.common import METRICS_DIR, load_metrics
from trainer.evaluate import classification_report, plot_confusion

REPO = Path(__file__).resolve().parents[1]
TINY_W2V2 = REPO / "configs" / "models" / "wav2vec2-tiny"
OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def trainer_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trainer", *args], env=OFFLINE, cwd=REPO, capture_output=True, text=True,
        timeout=300, check=False,
    )


def test_metric_scripts_ship_in_the_repository_and_load_by_path() -> None:
    assert (METRICS_DIR / "accuracy.py").is_file() and (METRICS_DIR / "macro_f1.py").is_file()
    accuracy, macro_f1 = load_metrics()
    assert accuracy.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2]) == {"accuracy": 0.75}
    # per class F1: 1, 2/3, 2/3
    assert macro_f1.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2])["macro_f1"] == pytest.approx(
        (1 + 2 / 3 + 2 / 3) / 3
    )


def test_report_on_known_answers() -> None:
    names = ["stop", "go", "left", "unused"]
    truth = [0, 0, 1, 1, 2, 2]
    guess = [0, 1, 1, 1, 2, 0]
    report = classification_report(truth, guess, names)
    assert report.clips == 6
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.labels == ("stop", "go", "left")  # "unused" neither true nor predicted
    figures = {item.label: item for item in report.per_class}
    assert (figures["stop"].precision, figures["stop"].recall) == (pytest.approx(1 / 2), pytest.approx(1 / 2))
    assert (figures["go"].precision, figures["go"].recall) == (pytest.approx(2 / 3), pytest.approx(1.0))
    assert (figures["left"].precision, figures["left"].recall) == (pytest.approx(1.0), pytest.approx(1 / 2))
    assert [item.support for item in report.per_class] == [2, 2, 2]
    assert report.confusion == ((1, 1, 0), (0, 2, 0), (1, 0, 1))
    f1s = [0.5, 0.8, 2 / 3]
    assert [item.f1 for item in report.per_class] == pytest.approx(f1s)
    assert report.macro_f1 == pytest.approx(np.mean(f1s))


def test_confusion_picture_is_a_png(tmp_path: Path) -> None:
    report = classification_report([0, 1, 1], [0, 1, 0], ["a", "b"])
    plot_confusion(report, tmp_path / "cm.png", "test")
    assert (tmp_path / "cm.png").read_bytes().startswith(PNG_SIGNATURE)


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny wav2vec2 classifier over the 14 intents, saved as a model directory."""
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification

    labels = trainer_data.INTENTS
    config = AutoConfig.from_pretrained(
        TINY_W2V2, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    directory = tmp_path_factory.mktemp("random-model")
    AutoModelForAudioClassification.from_config(config).save_pretrained(directory)
    AutoFeatureExtractor.from_pretrained(TINY_W2V2).save_pretrained(directory)
    return directory


@pytest.mark.slow
def test_evaluate_command_writes_json_and_png(random_model: Path, tmp_path: Path) -> None:
    saved = trainer_data.build_saved_dataset(tmp_path / "data")
    out = tmp_path / "report"
    done = trainer_cli(
        "evaluate", "--model", str(random_model), "--data", str(saved), "--test-size", "0.25",
        "--output", str(out),
    )
    assert done.returncode == 0, done.stderr
    assert (out / "confusion_matrix.png").read_bytes().startswith(PNG_SIGNATURE)
    report = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    assert report["split"] == "test" and report["clips"] == 4
    confusion = np.asarray(report["confusion"])
    assert confusion.sum() == 4
    assert report["accuracy"] == pytest.approx(np.trace(confusion) / 4)
    assert {item["label"] for item in report["per_class"]} >= set(trainer_data.PHRASES)
    assert sum(item["support"] for item in report["per_class"]) == 4
    assert "trainer evaluate" in done.stderr and "per class" in done.stderr  # the Rich tables
    assert done.stdout == ""


def test_a_model_that_is_not_an_audio_classifier_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "bert", "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
                    "num_attention_heads": 1, "intermediate_size": 8}),
        encoding="utf-8",
    )
    (tmp_path / "preprocessor_config.json").write_text((TINY_W2V2 / "preprocessor_config.json").read_text())
    code = trainer_main(["evaluate", "--model", str(tmp_path), "--data", str(tmp_path)])
    assert code == 3
    stderr = capsys.readouterr().err
    error_lines = [line for line in stderr.splitlines() if line.startswith("trainer: error:")]
    assert len(error_lines) == 1 and "not an audio-classification model" in error_lines[0]


def test_usage_errors_exit_2() -> None:
    done = trainer_cli("evaluate", "--data", "x")
    assert done.returncode == 2
    assert "--model" in done.stderr
