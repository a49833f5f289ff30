"""The classifier, with tiny random-weight models built and saved by the tests themselves,
loaded through ``load_classifier`` exactly as the daemon loads a user's model."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from streamclf.classifier import Classifier, TorchClassifier, load_classifier
from streamclf.config import ModelSettings
from streamclf.errors import EXIT_STARTUP, StartupError
from streamclf.models import DEFAULT_MODEL_DIR
from tests.tiny_model import build_tiny_model, spoken_word

LABELS = ("yes", "no", "stop", "go")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-commands", labels=LABELS)


@pytest.fixture(scope="module")
def classifier(model_dir: Path) -> Classifier:
    clf = load_classifier(ModelSettings(model=str(model_dir)))
    clf.warm_up()
    return clf


@pytest.fixture(scope="module")
def inputs() -> list[np.ndarray]:
    """Real speech of different lengths, noise, and a clip shorter than one model frame."""
    rng = np.random.default_rng(7)
    words = [spoken_word(w) for w in ("yes", "stop", "seventeen")]
    noise = (rng.standard_normal(11_000) * 0.05).astype(np.float32)
    return [*words, noise, words[0][:200]]


def refusal(ref: str) -> str:
    with pytest.raises(StartupError) as info:
        load_classifier(ModelSettings(model=ref))
    assert info.value.exit_code == EXIT_STARTUP
    message = str(info.value)
    assert "\n" not in message
    return message


def test_loads_a_model_directory_like_users_do(classifier: Classifier, model_dir: Path) -> None:
    assert isinstance(classifier, Classifier)
    assert classifier.name == "tiny-commands"
    assert classifier.labels == LABELS
    assert classifier.sample_rate == 16000


@pytest.mark.parametrize("top_k", [1, 3, 10])
def test_top_k_is_ranked_softmax(classifier: Classifier, inputs: list[np.ndarray], top_k: int) -> None:
    results = classifier.classify(inputs, top_k=top_k)
    assert len(results) == len(inputs)
    for intents in results:
        assert len(intents) == min(top_k, len(LABELS))
        scores = [i.score for i in intents]
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert sum(scores) <= 1.0 + 1e-5
        labels = [i.label for i in intents]
        assert len(set(labels)) == len(labels) and set(labels) <= set(LABELS)
    if top_k >= len(LABELS):  # every label: the softmax sums to one
        assert all(abs(sum(i.score for i in r) - 1.0) < 1e-4 for r in results)


def test_batch_of_different_lengths_equals_one_by_one(
    classifier: Classifier, inputs: list[np.ndarray]
) -> None:
    assert len({len(x) for x in inputs}) == len(inputs)
    batched = classifier.classify(inputs, top_k=len(LABELS))
    for audio, together in zip(inputs, batched, strict=True):
        (alone,) = classifier.classify([audio], top_k=len(LABELS))
        assert [i.label for i in alone] == [i.label for i in together]
        np.testing.assert_allclose([i.score for i in alone], [i.score for i in together], atol=1e-4)


def test_empty_batch_gives_no_results(classifier: Classifier) -> None:
    assert classifier.classify([], top_k=3) == []


@pytest.mark.parametrize("kind", ["hubert", "wav2vec2-nomask", "logmel"])
def test_other_architectures_load_and_classify(tmp_path: Path, kind: str, inputs: list[np.ndarray]) -> None:
    clf = load_classifier(ModelSettings(model=str(build_tiny_model(tmp_path / kind, kind=kind))))
    results = clf.classify(inputs[:3], top_k=2)
    assert [len(r) for r in results] == [2, 2, 2]


def test_threads_setting_is_applied(model_dir: Path) -> None:
    before = torch.get_num_threads()
    try:
        load_classifier(ModelSettings(model=str(model_dir), threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    message = refusal(str(tmp_path / "no-such-model"))
    assert "not found" in message and "no-such-model" in message


def test_a_file_is_not_a_model_directory(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\0" * 16)
    assert "not a model directory" in refusal(str(path))


def test_directory_without_config_is_refused(tmp_path: Path) -> None:
    assert "no config.json" in refusal(str(tmp_path))


def test_text_model_is_not_an_audio_classifier(tmp_path: Path) -> None:
    from transformers import BertConfig

    config = BertConfig(
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        id2label={0: "a", 1: "b"},
        label2id={"a": 0, "b": 1},
    )
    config.save_pretrained(tmp_path)
    assert "not an audio-classification" in refusal(str(tmp_path))


def test_speech_recognition_checkpoint_is_not_a_classifier(tmp_path: Path, model_dir: Path) -> None:
    target = tmp_path / "ctc"
    shutil.copytree(model_dir, target)
    config = json.loads((target / "config.json").read_text())
    config["architectures"] = ["Wav2Vec2ForCTC"]
    (target / "config.json").write_text(json.dumps(config))
    assert "Wav2Vec2ForCTC is not an audio classifier" in refusal(str(target))


def test_config_without_labels_is_refused(tmp_path: Path, model_dir: Path) -> None:
    target = tmp_path / "nolabels"
    shutil.copytree(model_dir, target)
    config = json.loads((target / "config.json").read_text())
    del config["id2label"], config["label2id"]
    (target / "config.json").write_text(json.dumps(config))
    assert "no id2label" in refusal(str(target))


def test_pickle_only_weights_are_refused(tmp_path: Path, model_dir: Path) -> None:
    target = tmp_path / "pickled"
    shutil.copytree(model_dir, target)
    model = TorchClassifier.load(str(model_dir)).model
    torch.save(model.state_dict(), target / "pytorch_model.bin")
    (target / "model.safetensors").unlink()
    assert "refusing pickle weights; convert to safetensors" in refusal(str(target))


def test_missing_feature_extractor_is_refused(tmp_path: Path, model_dir: Path) -> None:
    target = tmp_path / "nofe"
    shutil.copytree(model_dir, target)
    (target / "preprocessor_config.json").unlink()
    assert "preprocessor_config.json" in refusal(str(target))


def test_unreachable_hub_id_is_a_clear_startup_error() -> None:
    # Not in the cache: offline it is "unreachable", online "cannot download"; never a traceback.
    message = refusal("streamclf-tests-nonexistent/no-such-model")
    assert "streamclf-tests-nonexistent/no-such-model" in message


def test_default_model_is_the_bundled_one_or_a_clear_error() -> None:
    if (DEFAULT_MODEL_DIR / "config.json").is_file():
        assert load_classifier(ModelSettings()).name == DEFAULT_MODEL_DIR.name
        return
    with pytest.raises(StartupError) as info:
        load_classifier(ModelSettings())
    message = str(info.value)
    assert "bundled default model not found" in message
    assert "scripts/build-default-model" in message


@pytest.mark.skipif(
    importlib.util.find_spec("streamclf.onnx_backend") is not None, reason="the ONNX backend exists"
)
def test_missing_onnx_backend_is_a_startup_error(model_dir: Path) -> None:
    with pytest.raises(StartupError, match="ONNX backend"):
        load_classifier(ModelSettings(model=str(model_dir), backend="onnx"))
