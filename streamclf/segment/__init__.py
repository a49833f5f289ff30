"""Utterance segmentation: fixed-length frames in, speech starts, ends and segments out.

``features`` says what one frame is, ``background`` what the noise is, ``machine`` runs the states,
``edges`` places an utterance's start and end, ``tuning`` holds every constant. The rest of the
daemon sees only :func:`make_segmenter` and the :class:`Segmenter` protocol.
"""

from __future__ import annotations

from ..config import VadSettings
from ..vad import FrameDetector
from .events import Segment, Segmenter, SegmentEvent, SpeechEnd, SpeechStart
from .segmenter import FrameSegmenter
from .tuning import TUNING, BackgroundKind, Tuning

__all__ = [
    "TUNING",
    "BackgroundKind",
    "FrameSegmenter",
    "Segment",
    "SegmentEvent",
    "Segmenter",
    "SpeechEnd",
    "SpeechStart",
    "Tuning",
    "make_segmenter",
]


def make_segmenter(settings: VadSettings, sample_rate: int, tuning: Tuning = TUNING) -> FrameSegmenter:
    """The segmenter for ``settings.backend``; StartupError when the backend cannot run here."""
    detector: FrameDetector
    if settings.backend == "silero":
        from ..vad.silero import SileroDetector

        detector = SileroDetector(sample_rate, settings.threshold, settings.reset_after_s)
        return FrameSegmenter(settings, detector, tuning=tuning)
    from ..vad.murmur import make_murmur_check
    from ..vad.webrtc import WebRtcDetector

    detector = WebRtcDetector(sample_rate, settings.frame_ms, settings.aggressiveness)
    murmur_check = make_murmur_check(sample_rate, settings.reset_after_s) if settings.murmur_check else None
    return FrameSegmenter(settings, detector, murmur_check, tuning=tuning)
