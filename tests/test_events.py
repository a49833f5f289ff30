"""Event encoding: one JSON object per line, round-trips, and hostile labels cannot break the stream."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamclf.events import (
    DecodeError,
    ErrorEvent,
    Intent,
    SpeechEvent,
    StatusEvent,
    UtteranceEvent,
    decode,
    encode,
)


def utterance(label: str = "stop", file: str | None = None) -> UtteranceEvent:
    return UtteranceEvent(
        id=17,
        source="mic:USB Audio",
        start=12.34,
        end=13.1,
        intents=(Intent(label, 0.93), Intent("go", 0.03)),
        label=label,
        accepted=True,
        latency_ms=8.4,
        model="default-commands",
        file=file,
    )


def test_schema_example_shape() -> None:
    body = json.loads(encode(utterance()))
    assert list(body)[:2] == ["type", "version"]
    assert body["type"] == "utterance" and body["version"] == 1
    assert body["intents"][0] == {"label": "stop", "score": 0.93}
    assert "file" not in body
    assert set(body) == {"type", "version", "id", "source", "start", "end", "intents", "label", "accepted",
                         "latency_ms", "model"}


@pytest.mark.parametrize(
    "event",
    [
        utterance(),
        utterance(file="/tmp/a b.wav"),
        SpeechEvent("start", 1.25, "file:x.wav"),
        StatusEvent("mic", "m", "listening", {"segments": 3, "overflows": 0}),
        ErrorEvent("inference_failed", "boom", segment_id=4),
        ErrorEvent("device_lost", "gone"),
    ],
)
def test_round_trip(event: object) -> None:
    line = encode(event)  # type: ignore[arg-type]
    assert line.endswith("\n") and line.count("\n") == 1
    assert decode(line) == event


@given(st.text())
def test_any_label_or_path_stays_on_one_line(text: str) -> None:
    event = utterance(label=text, file=text)
    line = encode(event)
    assert line.count("\n") == 1
    assert decode(line) == event


def test_decode_rejects_garbage() -> None:
    for bad in ("", "nope", "[]", '{"type": "x", "version": 1}', '{"type": "speech", "version": 2}',
                '{"type": "speech", "version": 1, "colour": 3}'):
        with pytest.raises(DecodeError):
            decode(bad)
