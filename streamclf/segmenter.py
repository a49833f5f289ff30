"""Moved to :mod:`streamclf.segment`; this name stays only until every importer uses the new one."""

from .segment import Segment, Segmenter, SegmentEvent, SpeechEnd, SpeechStart, make_segmenter

__all__ = ["Segment", "SegmentEvent", "Segmenter", "SpeechEnd", "SpeechStart", "make_segmenter"]
