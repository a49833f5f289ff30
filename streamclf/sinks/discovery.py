"""Home Assistant MQTT discovery: what streamclf announces, and the topics its entities read.

Pure functions from names to (topic, JSON payload) messages; :mod:`streamclf.sinks.mqtt` sends
them (retained) on every connect. One ``event`` entity per stream, whose event types are the
model's commands and which fires on each accepted utterance, and one ``sensor`` for the status.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..events import UtteranceEvent


@dataclass(frozen=True)
class Message:
    topic: str
    payload: str
    retain: bool = True


@dataclass(frozen=True)
class Topics:
    """The topics under the publish URI's base topic."""

    base: str

    def events(self, kind: str) -> str:
        """Every event of one type (``utterance``, ``speech``, ``status``, ``error``), as JSON."""
        return f"{self.base}/{kind}"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    def stream(self, source: str) -> str:
        """Accepted utterances of one stream, with ``event_type`` (what a Home Assistant event reads)."""
        return f"{self.base}/stream/{slug(source)}"


def slug(name: str) -> str:
    """``name`` as a Home Assistant object id: lower-case letters, digits and _."""
    text = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return text[:64] or "stream"


def _device(node_id: str, model: str) -> dict[str, Any]:
    name = "streamclf" if node_id == "streamclf" else f"streamclf {node_id}"
    return {"identifiers": [node_id], "name": name, "manufacturer": "streamclf",
            "model": model, "sw_version": __version__}


def status_sensor(prefix: str, node_id: str, topics: Topics, model: str) -> Message:
    """The status sensor: state is the status event's ``state``, its counters are attributes."""
    config = {
        "name": "Status",
        "unique_id": f"{node_id}_status",
        "object_id": f"{node_id}_status",
        "state_topic": topics.events("status"),
        "value_template": "{{ value_json.state }}",
        "json_attributes_topic": topics.events("status"),
        "json_attributes_template": "{{ value_json.counters | tojson }}",
        "availability_topic": topics.availability,
        "icon": "mdi:microphone-message",
        "device": _device(node_id, model),
    }
    return Message(f"{prefix}/sensor/{node_id}/status/config", json.dumps(config))


def stream_entity(prefix: str, node_id: str, topics: Topics, source: str, commands: Sequence[str],
                  model: str) -> Message:
    """The event entity of one stream."""
    object_id = f"{node_id}_{slug(source)}"
    config = {
        "name": source,
        "unique_id": object_id,
        "object_id": object_id,
        "state_topic": topics.stream(source),
        "event_types": list(commands),
        "availability_topic": topics.availability,
        "icon": "mdi:account-voice",
        "device": _device(node_id, model),
    }
    return Message(f"{prefix}/event/{node_id}/{slug(source)}/config", json.dumps(config))


def stream_event(topics: Topics, event: UtteranceEvent) -> Message | None:
    """An accepted utterance as its stream entity's event; None for a rejected one."""
    if not event.accepted or event.label is None:
        return None
    payload = {
        "event_type": event.label,
        "score": round(event.intents[0].score, 4) if event.intents else None,
        "id": event.id,
        "start": round(event.start, 3),
        "end": round(event.end, 3),
    }
    return Message(topics.stream(event.source), json.dumps(payload), retain=False)
