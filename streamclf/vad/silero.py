"""silero-vad as a :class:`~streamclf.vad.FrameDetector`, run through ONNX Runtime.

Uses the ONNX model bundled inside the ``silero_vad`` package (never downloads). The model
is recurrent; its state is reset after a stretch of non-speech so that it does not stop
responding in long, loud noise.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

from ..errors import StartupError

log = logging.getLogger(__name__)

SUPPORTED_RATES = (8000, 16000)
_CONTEXT = {8000: 32, 16000: 64}
_FRAME = {8000: 256, 16000: 512}
_HYSTERESIS = 0.15


def bundled_model_path() -> Path:
    """The ONNX file shipped in the ``silero_vad`` package; StartupError when it is not installed."""
    try:
        spec = importlib.util.find_spec("silero_vad")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise StartupError(
            "vad.backend = \"silero\" needs the silero-vad package: pip install 'streamclf[silero]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise StartupError(f"vad: the silero-vad package has no bundled model at {path}")
    return path


class SileroDetector:
    """Speech probability per 32 ms frame, thresholded with hysteresis."""

    def __init__(self, sample_rate: int, threshold: float, reset_after_s: float) -> None:
        if sample_rate not in SUPPORTED_RATES:
            raise StartupError(f"vad: silero-vad needs a sample rate of 8000 or 16000 Hz, got {sample_rate}")
        path = bundled_model_path()
        try:
            import onnxruntime
        except ImportError:
            raise StartupError(
                "vad.backend = \"silero\" needs onnxruntime: pip install 'streamclf[silero]'"
            ) from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.sample_rate = sample_rate
        self.needs_every_frame = True
        self.frame_samples = _FRAME[sample_rate]
        self._threshold = threshold
        self._context_len = _CONTEXT[sample_rate]
        self._input = np.zeros((1, self._context_len + self.frame_samples), dtype=np.float32)
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._rate = np.array(sample_rate, dtype=np.int64)
        self._speaking = False
        self._quiet_frames = 0
        self._reset_after = max(1, round(reset_after_s * sample_rate / self.frame_samples))
        self.probability = 0.0

    def is_speech(self, frame: np.ndarray) -> bool:
        self._input[0, self._context_len :] = frame
        output, state = self._session.run(
            None, {"input": self._input, "state": self._state, "sr": self._rate}
        )
        self._state = state
        self._input[0, : self._context_len] = self._input[0, -self._context_len :]
        self.probability = float(output[0, 0])
        limit = self._threshold - _HYSTERESIS if self._speaking else self._threshold
        self._speaking = self.probability >= limit
        if self._speaking:
            self._quiet_frames = 0
        else:
            self._quiet_frames += 1
            if self._quiet_frames >= self._reset_after:
                self._clear_state()
        return self._speaking

    def _clear_state(self) -> None:
        self._state[:] = 0.0
        self._input[:] = 0.0
        self._quiet_frames = 0

    def reset(self) -> None:
        self._clear_state()
        self._speaking = False
        self.probability = 0.0
