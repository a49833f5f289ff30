"""``python -m trainer export --onnx [--int8] --model DIR``: an ONNX graph beside the model.

Writes ``DIR/model.onnx`` (float32) with the legacy TorchScript exporter (``dynamo=False``,
opset 17, dynamic batch and time axes) and checks it against PyTorch on a probe input. With
``--int8`` it also writes ``DIR/model.int8.onnx``: dynamic quantisation of the MatMul/Gemm
weights only (quantising the convolutions was slower and less accurate on CPU). The daemon's
ONNX backend (``streamclf listen --backend onnx``) loads these without torch.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamclf.errors import EXIT_OK, StartupError

log = logging.getLogger(__name__)

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
OPSET = 17
PROBE_SECONDS = (1.0, 0.6)
"""Lengths of the probe clips traced and compared (two different lengths: a padded batch)."""
CHECK_TOLERANCE = 1e-4
"""Largest |ONNX − PyTorch| logit difference accepted for the fp32 graph."""
QUANTISED_OPS = ("MatMul", "Gemm")


@dataclass(frozen=True)
class ExportResult:
    fp32: Path
    int8: Path | None
    inputs: tuple[str, ...]
    max_abs_diff: float
    """Largest fp32 logit difference against PyTorch on the probe batch."""


def add_export_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``export`` subcommand to ``python -m trainer``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "export",
        help="write model.onnx (and model.int8.onnx) beside a model for the ONNX backend",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--model", type=Path, required=True, help="model directory (config.json, weights)")
    parser.add_argument("--onnx", action="store_true", required=True, help="export to ONNX (the only format)")
    parser.add_argument("--int8", action="store_true", help="also write model.int8.onnx (MatMul/Gemm int8)")
    return parser


def run_export(args: argparse.Namespace) -> int:
    """Entry point of ``python -m trainer export``; errors propagate as :class:`StreamclfError`."""
    result = export_onnx(args.model, int8=args.int8)
    log.info("wrote %s (inputs: %s; max |onnx - torch| = %.2e)", result.fp32, ", ".join(result.inputs),
             result.max_abs_diff)
    if result.int8 is not None:
        log.info("wrote %s", result.int8)
    return EXIT_OK


def export_onnx(model_dir: Path, *, int8: bool = False) -> ExportResult:
    """Export ``model_dir`` to ``model_dir/model.onnx`` (and ``model.int8.onnx`` with ``int8``)."""
    model, extractor = _load(model_dir)
    probe = _probe_inputs(extractor)
    names = tuple(probe)
    fp32 = model_dir / FP32_FILE
    _torch_export(model, probe, fp32)
    diff = _check_against_torch(model, probe, fp32)
    if diff > CHECK_TOLERANCE:
        raise StartupError(
            f"export {model_dir}: ONNX differs from PyTorch by {diff:.2e} (limit {CHECK_TOLERANCE:g})"
        )
    int8_path = None
    if int8:
        int8_path = model_dir / INT8_FILE
        quantise_int8(fp32, int8_path)
    return ExportResult(fp32, int8_path, names, diff)


def quantise_int8(fp32: Path, out: Path) -> None:
    """Dynamic int8 quantisation of the MatMul/Gemm weights of ``fp32`` into ``out``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs one line per tensor on the root logger
    try:
        quantize_dynamic(
            model_input=str(fp32),
            model_output=str(out),
            op_types_to_quantize=list(QUANTISED_OPS),
            weight_type=QuantType.QInt8,
        )
    finally:
        root.setLevel(level)


def _load(model_dir: Path) -> tuple[Any, Any]:
    import streamclf  # noqa: F401  (registers the project's log-mel model with the Auto classes)
    from streamclf.classifier import TorchClassifier

    if not model_dir.is_dir():
        raise StartupError(f"export: model directory not found: {model_dir}")
    classifier = TorchClassifier.load(str(model_dir))  # same checks and loading as the daemon
    return classifier.model.eval(), classifier.feature_extractor


def _probe_inputs(extractor: Any) -> dict[str, Any]:
    """A padded batch of two noise clips, as the feature extractor makes it (torch tensors)."""
    rate = int(extractor.sampling_rate)
    rng = np.random.default_rng(0)
    clips = [(rng.standard_normal(round(s * rate)) * 0.1).astype(np.float32) for s in PROBE_SECONDS]
    batch = extractor(clips, sampling_rate=rate, padding=True, return_tensors="pt")
    main_name = "input_features" if "input_features" in batch else "input_values"
    inputs = {main_name: batch[main_name].float()}
    if "attention_mask" in batch:
        inputs["attention_mask"] = batch["attention_mask"].long()
    return inputs


class _LogitsOnly:
    """Wraps the transformers model so the traced graph returns the logits tensor alone."""

    @staticmethod
    def build(model: Any, names: tuple[str, ...]) -> Any:
        import torch

        class Wrapper(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
                kwargs = dict(zip(names, tensors, strict=True))
                logits: torch.Tensor = self.model(**kwargs, return_dict=True).logits
                return logits

        return Wrapper().eval()


def _torch_export(model: Any, probe: dict[str, Any], out: Path) -> None:
    import torch

    names = tuple(probe)
    dynamic_axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "time"} for name in names}
    dynamic_axes["logits"] = {0: "batch"}
    wrapper = _LogitsOnly.build(model, names)
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(
            wrapper,
            tuple(probe[name] for name in names),
            str(out),
            input_names=list(names),
            output_names=["logits"],
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )


def _check_against_torch(model: Any, probe: dict[str, Any], graph: Path) -> float:
    import onnxruntime as ort
    import torch

    with torch.no_grad():
        expected = model(**probe, return_dict=True).logits.float().numpy()
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    feeds = {name: tensor.numpy() for name, tensor in probe.items()}
    (actual,) = session.run(["logits"], feeds)
    return float(np.abs(np.asarray(actual) - expected).max())
