"""Which key does what in `review`: five action keys, then one key per label.

Action keys: ``a`` accept the top intent, ``d`` discard, ``r`` replay, ``s`` skip, ``q`` quit. Labels
get the digits 1…9, 0, then the other lower-case letters, then upper-case ones, in label order (the
model's order with ``--model``, else sorted, the ``_unknown_``/``_background_`` classes last).
"""

from __future__ import annotations

import enum
import json
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..audiofolder import Row
from ..events import is_command

NON_COMMANDS = ("_unknown_", "_background_")
"""Offered whatever the model or the recorded intents say: a clip may be other speech or no speech."""


class Action(enum.Enum):
    ACCEPT = "accept"
    RELABEL = "relabel"
    DISCARD = "discard"
    REPLAY = "replay"
    SKIP = "skip"
    QUIT = "quit"


ACTION_KEYS: dict[str, Action] = {
    "a": Action.ACCEPT,
    "d": Action.DISCARD,
    "r": Action.REPLAY,
    "s": Action.SKIP,
    "q": Action.QUIT,
    "\x03": Action.QUIT,  # Ctrl-C and Ctrl-D, should the terminal pass them on as keys
    "\x04": Action.QUIT,
}

LABEL_KEY_ORDER = "1234567890" + "".join(
    c for c in string.ascii_lowercase + string.ascii_uppercase if c not in ACTION_KEYS
)


@dataclass(frozen=True)
class Choice:
    """A decoded key: the action, and the label for RELABEL."""

    action: Action
    label: str | None = None


def label_keys(labels: Sequence[str]) -> dict[str, str]:
    """key → label for the first ``len(LABEL_KEY_ORDER)`` labels, in order."""
    return dict(zip(LABEL_KEY_ORDER, labels, strict=False))


def decode_key(key: str, keymap: Mapping[str, str]) -> Choice | None:
    """The choice ``key`` makes; None for a key that means nothing here."""
    if key in ACTION_KEYS:
        return Choice(ACTION_KEYS[key])
    if key in keymap:
        return Choice(Action.RELABEL, keymap[key])
    return None


def ordered_labels(labels: Iterable[str], keep_order: bool = False) -> tuple[str, ...]:
    """Unique labels, commands first (sorted unless ``keep_order``), then the non-command classes."""
    unique = list(dict.fromkeys(label for label in labels if label))
    commands = [label for label in unique if is_command(label)]
    others = [label for label in unique if not is_command(label)]
    others += [label for label in NON_COMMANDS if label not in others]
    return tuple(commands if keep_order else sorted(commands)) + tuple(others)


def recorded_labels(rows: Iterable[Row]) -> list[str]:
    """Every label in the rows' recorded intents, predictions and reviewed labels (bad JSON skipped)."""
    found: list[str] = []
    for row in rows:
        found += [row.get("label", ""), row.get("predicted", "")]
        try:
            found += [str(i["label"]) for i in json.loads(row.get("intents", "") or "[]")]
        except (ValueError, TypeError, KeyError):
            continue
    return found


def model_labels(model_dir: str) -> list[str]:
    """The labels in ``model_dir``'s config.json ``id2label``, by id (StartupError when unreadable)."""
    from ..errors import StartupError
    from ..models.files import read_model_json

    config = read_model_json(Path(model_dir).expanduser() / "config.json", model_dir)
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise StartupError(f"model {model_dir}: config.json has no id2label")
    try:
        return [str(id2label[k]) for k in sorted(id2label, key=int)]
    except ValueError:
        raise StartupError(f"model {model_dir}: config.json id2label keys are not numbers") from None
