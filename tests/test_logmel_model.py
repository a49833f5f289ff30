"""The project's log-mel CNN: numpy features, Auto-class registration, pipeline, masking."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
LABELS = ("stop", "go", "_background_")


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.slow
def test_import_streamclf_imports_neither_torch_nor_transformers() -> None:
    done = _run_python(
        "import sys, streamclf, streamclf.models, streamclf.models.logmel\n"
        "import numpy as np\n"
        "streamclf.models.logmel.log_mel(np.zeros(1600, dtype=np.float32))\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_registration_works_whatever_is_imported_first() -> None:
    for first in (
        "transformers",
        "streamclf",
        "streamclf.models.modeling",
        "streamclf.models.feature_extraction",
        "streamclf.models.bcresnet_modeling",
        "streamclf.models.speech_embedding_modeling",
        "streamclf.models.waveform_extraction",
    ):
        done = _run_python(
            f"import importlib; importlib.import_module({first!r})\n"
            "import streamclf\n"
            "from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification\n"
            "for kind in ('streamclf-logmel-cnn', 'streamclf-bc-resnet', 'streamclf-speech-embedding'):\n"
            "    config = AutoConfig.for_model(kind, num_labels=2)\n"
            "    print(type(AutoModelForAudioClassification.from_config(config)).__name__)\n"
        )
        assert done.returncode == 0, (first, done.stderr)
        assert done.stdout.split() == [
            "LogMelCnnForAudioClassification", "BcResNetForAudioClassification",
            "SpeechEmbeddingForAudioClassification",
        ], first


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification

    import streamclf  # noqa: F401 - registers the architecture

    base = REPO / "configs" / "models" / "logmel-cnn"
    config = AutoConfig.from_pretrained(
        base,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    model = AutoModelForAudioClassification.from_config(config)
    path = tmp_path_factory.mktemp("logmel") / "model"
    model.save_pretrained(path)
    AutoFeatureExtractor.from_pretrained(base).save_pretrained(path)
    return path


def _speech(word: str) -> np.ndarray:
    from trainer import tts

    return tts.synthesize(word, tts.Voice("espeak-ng", "en-us"))


@pytest.mark.slow
def test_saved_model_loads_with_auto_classes_and_pipeline_in_a_fresh_process(model_dir: Path) -> None:
    assert (model_dir / "model.safetensors").exists()
    done = _run_python(
        "import numpy as np, streamclf\n"
        "from transformers import AutoModelForAudioClassification, pipeline\n"
        f"model = AutoModelForAudioClassification.from_pretrained({str(model_dir)!r})\n"
        f"classify = pipeline('audio-classification', model={str(model_dir)!r})\n"
        "result = classify(np.random.default_rng(0).standard_normal(12000).astype(np.float32) * 0.1)\n"
        "print(type(model).__name__, sorted(r['label'] for r in result))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["LogMelCnnForAudioClassification", "['_background_',", "'go',", "'stop']"]


def test_features_ignore_level_and_accept_any_length() -> None:
    from streamclf.models.logmel import LogMelSpec, log_mel

    speech = _speech("stop")
    loud, quiet = log_mel(speech), log_mel(speech * 0.003)
    assert loud.shape == quiet.shape == (1 + len(speech) // 160, LogMelSpec().n_mels)
    assert np.abs(loud - quiet).max() < 0.05
    assert abs(float(loud.mean())) < 1e-3 and abs(float(loud.std()) - 1.0) < 1e-2
    assert log_mel(np.zeros(0, dtype=np.float32)).shape == (1, 40)
    assert np.all(log_mel(np.zeros(800, dtype=np.float32)) == 0.0)  # digital silence: flat, finite


def test_batch_padding_does_not_change_the_result_and_loss_with_labels(model_dir: Path) -> None:
    import torch
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    model = AutoModelForAudioClassification.from_pretrained(model_dir).eval()
    extractor = AutoFeatureExtractor.from_pretrained(model_dir)
    short, long = _speech("go"), _speech("Sheila, stop the music")
    with torch.no_grad():
        alone = model(**extractor(short, sampling_rate=16000, return_tensors="pt")).logits
        batch = extractor([short, long], sampling_rate=16000, return_tensors="pt")
        assert batch["input_features"].shape[:2] == batch["attention_mask"].shape
        together = model(**batch).logits
        assert torch.allclose(alone[0], together[0], atol=1e-4)
        output = model(**batch, labels=torch.tensor([1, 0]))
    assert output.loss is not None and output.loss.item() > 0


def test_spec_augment_only_while_training(model_dir: Path) -> None:
    import torch
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    model = AutoModelForAudioClassification.from_pretrained(model_dir)
    model.config.dropout = 0.0
    model.dropout.p = 0.0
    inputs = AutoFeatureExtractor.from_pretrained(model_dir)(
        _speech("seven"), sampling_rate=16000, return_tensors="pt"
    )
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, model(**inputs).logits)
    model.train()
    for module in model.modules():  # keep batch-norm statistics out of the comparison
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    torch.manual_seed(0)
    with torch.no_grad():
        runs = [model(**inputs).logits for _ in range(4)]
    assert any(not torch.equal(runs[0], other) for other in runs[1:])
