"""One kept utterance as a metadata.csv row, and the typed view `review` reads.

``label`` is the human's: empty until the clip is reviewed (a label the model only guessed would
teach a retrained model its own mistakes); ``predicted`` is the model's top intent and ``intents``
the ranked intents as JSON. ``reviewed`` is ``true`` once a person accepted or relabelled the clip.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime

from ..audiofolder import Row
from ..events import Intent, UtteranceEvent

COLUMNS = (
    "file_name", "label", "reviewed", "predicted", "score", "accepted", "intents", "time", "source",
    "model", "duration",
)
"""metadata.csv's columns, in this order in a new file (``file_name`` relative to the folder)."""


class BadRow(ValueError):
    """A row that cannot be reviewed; ``str()`` says why in a few words."""


@dataclass(frozen=True)
class KeptClip:
    """What `review` shows and decides on."""

    file_name: str
    predicted: str
    score: float
    intents: tuple[Intent, ...]
    label: str
    reviewed: bool
    time: str


def new_row(event: UtteranceEvent, file_name: str, duration_s: float, when: datetime) -> dict[str, str]:
    """The row of a freshly kept utterance: not yet reviewed, the model's ranking recorded."""
    top = event.intents[0] if event.intents else Intent("", 0.0)
    intents = [{"label": i.label, "score": round(i.score, 4)} for i in event.intents]
    return {
        "file_name": file_name,
        "label": "",
        "reviewed": "false",
        "predicted": top.label,
        "score": f"{top.score:.4f}",
        "accepted": "true" if event.accepted else "false",
        "intents": json.dumps(intents, ensure_ascii=False),
        "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "source": event.source,
        "model": event.model,
        "duration": f"{duration_s:.3f}",
    }


def reviewed_label(label: str) -> dict[str, str]:
    """The changes a review decision makes to a row."""
    return {"label": label, "reviewed": "true"}


def parse_row(row: Row) -> KeptClip:
    """The typed view of ``row``; BadRow when a field `review` needs is missing or malformed."""
    file_name = row.get("file_name", "")
    if not file_name:
        raise BadRow("no file_name")
    intents = _intents(row.get("intents", ""))
    predicted = row.get("predicted", "") or (intents[0].label if intents else "")
    try:
        score = float(row.get("score", "") or (intents[0].score if intents else "nan"))
    except ValueError:
        raise BadRow(f"score {row.get('score')!r} is not a number") from None
    return KeptClip(
        file_name=file_name,
        predicted=predicted,
        score=score,
        intents=intents,
        label=row.get("label", ""),
        reviewed=is_reviewed(row),
        time=row.get("time", ""),
    )


def is_reviewed(row: Row) -> bool:
    return row.get("reviewed", "").strip().lower() in ("true", "1", "yes")


def _intents(text: str) -> tuple[Intent, ...]:
    if not text.strip():
        return ()
    try:
        raw = json.loads(text)
        intents = tuple(Intent(str(i["label"]), float(i["score"])) for i in raw)
    except (ValueError, TypeError, KeyError):
        raise BadRow("intents is not a JSON list of {label, score}") from None
    if not all(math.isfinite(i.score) for i in intents):
        raise BadRow("intents has a score that is not a number")
    return intents
