"""The vocabulary file: which labels exist and the phrases that say each one.

TOML, one table ``[labels]`` mapping a label to a phrase or a list of phrases::

    [labels]
    stop = ["stop"]
    go = ["go", "go!"]
    _background_ = []        # the non-speech class: no phrases

A label whose name starts and ends with ``_`` and has no phrases is a non-speech class.
"""

from __future__ import annotations

import re
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
    except tomllib.TOMLDecodeError as err:
        if str(err).startswith("Cannot overwrite a value"):
            where = str(err).split("(", 1)[-1].rstrip(")")
            raise ConfigError(str(path), f"duplicate label ({where})") from None
        raise ConfigError(str(path), f"not valid TOML: {err}") from None
    except UnicodeDecodeError as err:
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
        cleaned = tuple(p.strip() for p in items)
        if "" in cleaned:
            raise ConfigError(key, "has an empty phrase")
        if not cleaned:
            if not (label.startswith("_") and label.endswith("_")):
                raise ConfigError(key, "has no phrases (only a _name_ label may be non-speech)")
            if background is not None:
                raise ConfigError(key, f"a second non-speech class (already {background})")
            background = label
            continue
        same = next((known for known in phrases if normalise(known) == normalise(label)), None)
        if same is not None:
            raise ConfigError(key, f"duplicate label (same as {same!r})")
        phrases[label] = cleaned
    if not phrases:
        raise ConfigError("labels", "the vocabulary has no spoken labels")
    _check_shared_phrases(phrases)
    return Vocabulary(phrases=phrases, background=background)


def normalise(text: str) -> str:
    """Lower case, punctuation gone, single spaces: how two spellings of the same words compare."""
    return " ".join(re.sub(r"[^\w' ]+", " ", text.lower()).split())


def spoken_forms(vocabulary: Vocabulary, include_unknown: bool = False) -> frozenset[str]:
    """Every label name and phrase of the vocabulary's spoken labels, normalised (``_unknown_``'s
    phrases only when asked: they are other speech)."""
    forms: set[str] = set()
    for label, phrases in vocabulary.phrases.items():
        if label == UNKNOWN and not include_unknown:
            continue
        forms.add(normalise(label))
        forms.update(normalise(p) for p in phrases)
    return frozenset(forms)


def _check_shared_phrases(phrases: dict[str, tuple[str, ...]]) -> None:
    """A phrase under two labels would teach the model both answers: refuse it."""
    owner: dict[str, str] = {}
    for label, items in phrases.items():
        for phrase in items:
            first = owner.setdefault(normalise(phrase), label)
            if first != label:
                raise ConfigError(f"labels.{label}", f"phrase {phrase!r} is also under {first!r}")
