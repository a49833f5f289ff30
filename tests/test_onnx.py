"""The ONNX Runtime backend and the exporter: round trip against PyTorch, int8, and torch-free runs.

A tiny log-mel CNN is trained for a few steps on espeak-ng words so that its predictions differ
between words (a random model ranks every input the same); held-out clips use other voices.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamclf.config import ModelSettings
from streamclf.errors import EXIT_STARTUP, StartupError
from tests.tiny_model import build_tiny_model, spoken_word

onnxruntime = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow  # trains and exports a tiny model, runs the CLI in subprocesses

WORDS = ("yes", "no", "stop", "go")
TRAIN_VOICES = (("en-us", 150), ("en-gb", 170), ("en-us+f3", 190), ("en-gb-scotland", 160))
HELD_OUT_VOICES = (("en-gb-x-rp", 175), ("en-029", 155))
TRAIN_STEPS = 80
REPO = Path(__file__).resolve().parents[1]


def _train_tiny_logmel(path: Path) -> Path:
    import torch
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    build_tiny_model(path, WORDS, kind="logmel", seed=0)
    model = AutoModelForAudioClassification.from_pretrained(path)
    extractor = AutoFeatureExtractor.from_pretrained(path)
    clips = [spoken_word(w, voice=v, speed_wpm=s) for w in WORDS for v, s in TRAIN_VOICES]
    targets = torch.tensor([i for i in range(len(WORDS)) for _ in TRAIN_VOICES])
    inputs = extractor(clips, sampling_rate=16000, padding=True, return_tensors="pt")
    torch.manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(TRAIN_STEPS):
        optimiser.zero_grad()
        loss = model(**inputs, labels=targets).loss
        loss.backward()
        optimiser.step()
    model.eval()
    model.save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="module")
def exported_logmel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainer.export import export_onnx

    path = _train_tiny_logmel(tmp_path_factory.mktemp("logmel"))
    export_onnx(path, int8=True)
    return path


@pytest.fixture(scope="module")
def held_out_clips() -> list[np.ndarray]:
    return [spoken_word(w, voice=v, speed_wpm=s) for w in WORDS for v, s in HELD_OUT_VOICES]


def _torch_logits(model_dir: Path, clips: list[np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    import torch
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    model = AutoModelForAudioClassification.from_pretrained(model_dir).eval()
    extractor = AutoFeatureExtractor.from_pretrained(model_dir)
    inputs = extractor(clips, sampling_rate=16000, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits.numpy()
    return logits, {k: v.numpy() for k, v in inputs.items()}


def _onnx_logits(graph: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    typed = {
        k: (v.astype(np.int64) if k == "attention_mask" else v.astype(np.float32))
        for k, v in feeds.items()
        if k in wanted
    }
    (logits,) = session.run(["logits"], typed)
    return np.asarray(logits)


def test_fp32_graph_equals_pytorch_on_a_padded_batch(exported_logmel: Path, held_out_clips: list) -> None:
    expected, feeds = _torch_logits(exported_logmel, held_out_clips)
    actual = _onnx_logits(exported_logmel / "model.onnx", feeds)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", ["wav2vec2", "wav2vec2-nomask"])
def test_fp32_graph_equals_pytorch_for_waveform_models(tmp_path: Path, kind: str) -> None:
    from trainer.export import export_onnx

    model_dir = build_tiny_model(tmp_path / kind, WORDS, kind=kind)
    result = export_onnx(model_dir)
    assert ("attention_mask" in result.inputs) == (kind == "wav2vec2")
    clip = spoken_word("stop")  # one clip: the no-mask model is exact only unpadded
    expected, feeds = _torch_logits(model_dir, [clip])
    np.testing.assert_allclose(_onnx_logits(result.fp32, feeds), expected, atol=1e-4, rtol=0)


def test_onnx_backend_scores_equal_the_torch_backend(exported_logmel: Path, held_out_clips: list) -> None:
    from streamclf.classifier import load_classifier
    from streamclf.onnx_backend import load_onnx_classifier

    torch_clf = load_classifier(ModelSettings(model=str(exported_logmel)))
    onnx_clf = load_onnx_classifier(ModelSettings(model=str(exported_logmel), backend="onnx"))
    assert onnx_clf.labels == torch_clf.labels == WORDS
    assert onnx_clf.sample_rate == 16000
    for expected, actual in zip(
        torch_clf.classify(held_out_clips, top_k=4), onnx_clf.classify(held_out_clips, top_k=4), strict=True
    ):
        assert [i.label for i in actual] == [i.label for i in expected]
        np.testing.assert_allclose([i.score for i in actual], [i.score for i in expected], atol=1e-4)


def test_int8_keeps_the_top_label_on_held_out_voices(exported_logmel: Path, held_out_clips: list) -> None:
    from streamclf.onnx_backend import load_onnx_classifier

    fp32 = load_onnx_classifier(ModelSettings(model=str(exported_logmel), backend="onnx"))
    int8 = load_onnx_classifier(ModelSettings(model=str(exported_logmel / "model.int8.onnx"), backend="onnx"))
    fp32_top = [r[0].label for r in fp32.classify(held_out_clips, top_k=1)]
    int8_top = [r[0].label for r in int8.classify(held_out_clips, top_k=1)]
    assert len(set(fp32_top)) >= 3, f"the trained tiny model should tell words apart: {fp32_top}"
    assert int8_top == fp32_top


def test_int8_graph_quantises_matmul_and_gemm_only(exported_logmel: Path) -> None:
    import onnx

    graph = onnx.load(str(exported_logmel / "model.int8.onnx")).graph
    ops = {node.op_type for node in graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeLinear" in ops
    assert "ConvInteger" not in ops and "Conv" in ops


def _run_cli_reporting_torch(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``streamclf.cli.main(args)`` in a fresh interpreter; stderr ends with the modules it imported."""
    script = textwrap.dedent(
        f"""
        import sys
        from streamclf.cli import main
        code = main({args!r})
        heavy = sorted(m for m in ("torch", "transformers") if m in sys.modules)
        print("HEAVY=" + ",".join(heavy), file=sys.stderr)
        sys.exit(code)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def spoken_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    gap = np.zeros(12000, np.float32)
    words = ["yes", "stop", "go"]
    parts = [gap]
    for word in words:
        parts += [spoken_word(word, voice="en-gb-x-rp"), gap]
    path = tmp_path_factory.mktemp("audio") / "commands.wav"
    sf.write(path, np.concatenate(parts), 16000)
    return path, len(words)


def _utterances(stdout: str) -> list[dict]:
    events = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return [e for e in events if e["type"] == "utterance"]


def test_classify_with_the_onnx_backend_never_imports_torch(
    exported_logmel: Path, spoken_file: tuple[Path, int]
) -> None:
    path, count = spoken_file
    args = ["classify", "--json", "--backend", "onnx", "--model", str(exported_logmel), str(path)]
    done = _run_cli_reporting_torch(args, REPO)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().endswith("HEAVY="), done.stderr
    utterances = _utterances(done.stdout)
    assert len(utterances) == count
    assert all(u["model"] == exported_logmel.name and u["intents"] for u in utterances)


def test_listen_with_the_onnx_backend_never_imports_torch(
    exported_logmel: Path, spoken_file: tuple[Path, int]
) -> None:
    path, count = spoken_file
    graph = exported_logmel / "model.int8.onnx"
    args = ["listen", "--json", "--backend", "onnx", "--model", str(graph), "--source", str(path)]
    args += ["--speed", "0"]
    done = _run_cli_reporting_torch(args, REPO)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().endswith("HEAVY="), done.stderr
    assert len(_utterances(done.stdout)) == count


@pytest.mark.parametrize("command", ["classify", "listen"])
def test_without_backend_onnx_is_chosen_when_the_directory_has_a_graph_and_torch_when_not(
    exported_logmel: Path, spoken_file: tuple[Path, int], tmp_path: Path, command: str
) -> None:
    import shutil

    path, count = spoken_file
    without_graph = tmp_path / "torch-only"
    shutil.copytree(exported_logmel, without_graph, ignore=shutil.ignore_patterns("*.onnx"))
    extra = ["--source", str(path), "--speed", "0"] if command == "listen" else [str(path)]
    runs = {
        model_dir: _run_cli_reporting_torch([command, "--json", "--model", str(model_dir), *extra], REPO)
        for model_dir in (exported_logmel, without_graph)
    }
    for done in runs.values():
        assert done.returncode == 0, done.stderr
        assert len(_utterances(done.stdout)) == count
    assert runs[exported_logmel].stderr.strip().endswith("HEAVY="), runs[exported_logmel].stderr
    assert runs[without_graph].stderr.strip().endswith("HEAVY=torch,transformers")
    forced = _run_cli_reporting_torch([command, "--json", "--backend", "torch", "--model",
                                       str(exported_logmel), *extra], REPO)  # fmt: skip
    assert forced.returncode == 0 and forced.stderr.strip().endswith("HEAVY=torch,transformers")


def test_a_model_without_an_onnx_graph_fails_start_up_in_one_line(tmp_path: Path) -> None:
    model_dir = build_tiny_model(tmp_path / "plain", WORDS, kind="logmel")
    clip = tmp_path / "clip.wav"
    sf.write(clip, spoken_word("yes"), 16000)
    args = ["classify", "--json", "--backend", "onnx", "--model", str(model_dir), str(clip)]
    done = _run_cli_reporting_torch(args, REPO)
    assert done.returncode == EXIT_STARTUP
    message = [line for line in done.stderr.splitlines() if not line.startswith("HEAVY=")]
    assert len(message) == 1 and "model.onnx" in message[0] and "trainer export" in message[0]


def test_unknown_front_end_and_bad_labels_are_start_up_errors(tmp_path: Path) -> None:
    from streamclf.onnx_backend import front_end_from, labels_from

    with pytest.raises(StartupError, match="no front end"):
        front_end_from({"feature_extractor_type": "WhisperFeatureExtractor"}, shown="m")
    with pytest.raises(StartupError, match="id2label"):
        labels_from({"id2label": {}}, shown="m")
    with pytest.raises(StartupError, match=r"0\.\.1"):
        labels_from({"id2label": {"0": "a", "2": "b"}}, shown="m")


def test_export_command_writes_both_graphs_and_rejects_a_missing_model(tmp_path: Path) -> None:
    model_dir = build_tiny_model(tmp_path / "cli", WORDS, kind="logmel")
    export = [sys.executable, "-m", "trainer", "export", "--onnx"]
    ok = subprocess.run([*export, "--int8", "--model", str(model_dir)],
                        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert ok.returncode == 0, ok.stderr
    assert (model_dir / "model.onnx").is_file() and (model_dir / "model.int8.onnx").is_file()
    missing = subprocess.run([*export, "--model", str(tmp_path / "absent")],
                             cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert missing.returncode == EXIT_STARTUP
    assert "Traceback" not in missing.stderr and "not found" in missing.stderr
