"""The event protocol: typed events and their JSON-lines encoding (schema version 1).

Every event is one JSON object on one line, UTF-8, with ``type`` and ``version``.
Transport (stdout, files, sockets) lives in :mod:`streamclf.sinks`; this module only
knows what an event is and how it is written and read.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Intent:
    """One ranked label with its softmax score (0..1)."""

    label: str
    score: float


def is_command(label: str) -> bool:
    """False for a model's non-command classes, named ``_like_this_`` (``_unknown_``: other speech,
    ``_background_``: no speech): an utterance whose top label is one of them is never accepted."""
    return not (len(label) > 2 and label.startswith("_") and label.endswith("_"))


@dataclass(frozen=True)
class UtteranceEvent:
    """A classified utterance. ``start``/``end`` are seconds since the stream started. ``label`` is the
    top label when it is a command scoring at least the threshold (``accepted``), else None."""

    id: int
    source: str
    start: float
    end: float
    intents: tuple[Intent, ...]
    label: str | None
    accepted: bool
    latency_ms: float
    model: str
    file: str | None = None
    type: Literal["utterance"] = "utterance"


@dataclass(frozen=True)
class SpeechEvent:
    """The segmenter opened (``start``) or closed (``end``) an utterance at ``t`` seconds."""

    state: Literal["start", "end"]
    t: float
    source: str = ""
    type: Literal["speech"] = "speech"


@dataclass(frozen=True)
class StatusEvent:
    """Periodic health report: where audio comes from, which model, and the counters. ``streams``
    (``serve`` only): each connected stream's own counters, by stream name."""

    source: str
    model: str
    state: str
    counters: dict[str, int] = field(default_factory=dict)
    streams: dict[str, dict[str, int]] | None = None
    type: Literal["status"] = "status"


@dataclass(frozen=True)
class ErrorEvent:
    """Something went wrong; the stream goes on where it can."""

    code: str
    message: str
    segment_id: int | None = None
    type: Literal["error"] = "error"


Event = UtteranceEvent | SpeechEvent | StatusEvent | ErrorEvent

_EVENT_TYPES: dict[str, type] = {
    "utterance": UtteranceEvent,
    "speech": SpeechEvent,
    "status": StatusEvent,
    "error": ErrorEvent,
}


def _finite(value: float, digits: int) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def to_dict(event: Event) -> dict[str, Any]:
    """The event as a plain JSON-ready dict, ``type`` and ``version`` first."""
    body = asdict(event)
    body.pop("type")
    if isinstance(event, UtteranceEvent):
        body["start"] = _finite(event.start, 3)
        body["end"] = _finite(event.end, 3)
        body["latency_ms"] = _finite(event.latency_ms, 2)
        body["intents"] = [{"label": i.label, "score": _finite(i.score, 4)} for i in event.intents]
        if event.file is None:
            body.pop("file")
    elif isinstance(event, SpeechEvent):
        body["t"] = _finite(event.t, 3)
    elif isinstance(event, ErrorEvent) and event.segment_id is None:
        body.pop("segment_id")
    elif isinstance(event, StatusEvent) and event.streams is None:
        body.pop("streams")
    return {"type": event.type, "version": SCHEMA_VERSION, **body}


def encode(event: Event) -> str:
    """One JSON line (with the trailing newline). Labels and paths are escaped by JSON,
    so a label holding a newline or a quote cannot break the stream."""
    return json.dumps(to_dict(event), ensure_ascii=False, allow_nan=False, separators=(", ", ": ")) + "\n"


class DecodeError(ValueError):
    """A line that is not a streamclf event."""


def decode(line: str | bytes) -> Event:
    """Parse one JSON line back into its event dataclass."""
    try:
        body = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc.msg}") from None
    if not isinstance(body, dict):
        raise DecodeError("not a JSON object")
    kind = body.pop("type", None)
    version = body.pop("version", None)
    if kind not in _EVENT_TYPES:
        raise DecodeError(f"unknown event type {kind!r}")
    if version != SCHEMA_VERSION:
        raise DecodeError(f"unsupported schema version {version!r}")
    if kind == "utterance":
        body["intents"] = tuple(Intent(**i) for i in body.get("intents", ()))
    try:
        return _EVENT_TYPES[kind](**body)
    except TypeError as exc:
        raise DecodeError(f"bad {kind} event: {exc}") from None
