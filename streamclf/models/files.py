"""Reading a model directory's files, shared by the torch and the ONNX backends.

Both backends read ``config.json`` and ``preprocessor_config.json`` through :func:`read_model_json`,
so a missing or broken file is refused with the same one-line message whichever backend loads it.
Importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import StartupError

ONNX_GRAPH = "model.onnx"
"""The fp32 ONNX graph beside the safetensors weights; its presence makes backend "auto" choose ONNX."""


def read_model_json(path: Path, shown: str) -> dict[str, Any]:
    """A model directory's JSON file as a dict; StartupError (exit 3) naming the file otherwise."""
    if not path.is_file():
        raise StartupError(f"model {shown}: no {path.name}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StartupError(f"model {shown}: unreadable {path.name} ({exc})") from None
    if not isinstance(raw, dict):
        raise StartupError(f"model {shown}: {path.name} is not a JSON object")
    return raw
