"""The vocabulary file: which labels exist and the phrases that say each one.

TOML, one table ``[labels]`` mapping a label to a phrase or a list of phrases::

    [labels]
    stop = ["stop"]
    go = ["go", "go!"]
    _background_ = []        # the non-speech class: no phrases

A label whose name starts and ends with ``_`` and has no phrases is a non-speech class.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from streamclf.errors import ConfigError

BACKGROUND = "_background_"
UNKNOWN = "_unknown_"
"""The label of speech that is none of the commands (a spoken label: its phrases are other words)."""


@dataclass(frozen=True)
class Vocabulary:
    phrases: dict[str, tuple[str, ...]]
    """Spoken label → the phrases that say it (non-empty)."""
    background: str | None
    """Name of the non-speech class, if the vocabulary has one."""

    @property
    def labels(self) -> tuple[str, ...]:
        """All labels: the spoken ones in file order, then the background class."""
        spoken = tuple(self.phrases)
        return (*spoken, self.background) if self.background is not None else spoken


def load_vocabulary(path: Path) -> Vocabulary:
    """Read and check a vocabulary file; problems raise :class:`ConfigError` naming the key."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "vocabulary file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(str(path), f"not valid TOML: {err}") from None
    unknown = set(document) - {"labels"}
    if unknown:
        raise ConfigError(sorted(unknown)[0], "unknown table in the vocabulary (expected [labels])")
    table = document.get("labels")
    if not isinstance(table, dict) or not table:
        raise ConfigError("labels", "the vocabulary needs a non-empty [labels] table")
    phrases: dict[str, tuple[str, ...]] = {}
    background: str | None = None
    for label, value in table.items():
        key = f"labels.{label}"
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(p, str) for p in items):
            raise ConfigError(key, "must be a phrase or a list of phrases")
        cleaned = tuple(p.strip() for p in items if p.strip())
        if not cleaned:
            if not (label.startswith("_") and label.endswith("_")):
                raise ConfigError(key, "has no phrases (only a _name_ label may be non-speech)")
            if background is not None:
                raise ConfigError(key, f"a second non-speech class (already {background})")
            background = label
            continue
        phrases[label] = cleaned
    if not phrases:
        raise ConfigError("labels", "the vocabulary has no spoken labels")
    return Vocabulary(phrases=phrases, background=background)
