"""webrtcvad (``webrtcvad-wheels``) as a :class:`~streamclf.vad.FrameDetector`."""

from __future__ import annotations

import numpy as np
import webrtcvad

from ..errors import StartupError

SUPPORTED_RATES = (8000, 16000, 32000, 48000)
SUPPORTED_FRAME_MS = (10, 20, 30)


class WebRtcDetector:
    """webrtcvad decisions on 10, 20 or 30 ms frames (float32 in, int16 to the library)."""

    def __init__(self, sample_rate: int, frame_ms: int, aggressiveness: int) -> None:
        if sample_rate not in SUPPORTED_RATES:
            raise StartupError(
                f"vad: webrtcvad needs a sample rate of {', '.join(map(str, SUPPORTED_RATES))} Hz, "
                f"got {sample_rate}"
            )
        if frame_ms not in SUPPORTED_FRAME_MS:
            raise StartupError(f"vad.frame_ms: webrtcvad needs 10, 20 or 30 ms frames, got {frame_ms}")
        self.sample_rate = sample_rate
        self.needs_every_frame = False
        self.frame_samples = sample_rate * frame_ms // 1000
        self._aggressiveness = aggressiveness
        self._vad = webrtcvad.Vad(aggressiveness)
        self._pcm = np.zeros(self.frame_samples, dtype=np.int16)

    def is_speech(self, frame: np.ndarray) -> bool:
        np.multiply(np.clip(frame, -1.0, 1.0), 32767.0, out=self._pcm, casting="unsafe")
        return bool(self._vad.is_speech(self._pcm.tobytes(), self.sample_rate))

    def reset(self) -> None:
        self._vad = webrtcvad.Vad(self._aggressiveness)
