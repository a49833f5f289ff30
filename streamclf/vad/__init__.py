"""Frame-level voice detectors behind one protocol: webrtcvad, silero-vad, and silero-vad's
second opinion over murmur.

The segmenter (``streamclf/segment/``) turns per-frame decisions into utterances; this package
only answers "is this frame speech?" for fixed-length frames.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class FrameDetector(Protocol):
    """Says whether one frame of ``frame_samples`` float32 samples at ``sample_rate`` is speech."""

    sample_rate: int
    frame_samples: int
    needs_every_frame: bool
    """True for recurrent models that must see the whole stream; False: only frames loud enough."""

    def is_speech(self, frame: np.ndarray) -> bool: ...

    def reset(self) -> None: ...
