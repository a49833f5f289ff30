"""What to ask the user to say: the spoken labels of a vocabulary file, one phrase each.

The file is read by the trainer's own parser, ``trainer.vocab.load_vocabulary`` (it imports only
tomllib and ``streamclf.errors``, so it runs without the train extras; it names a label written
twice "duplicate label" and refuses empty phrases). On top of it, enrolment leaves out the
``_name_`` classes (no one is asked to say "unknown" or silence) and checks that each label can
name a folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError


@dataclass(frozen=True)
class Prompt:
    """One label the user says: ``phrase`` (its first phrase) is shown and written to ``text``."""

    label: str
    phrase: str


def is_spoken(label: str) -> bool:
    """False for the ``_name_`` classes (``_unknown_``, ``_background_``): nothing to enrol."""
    return not (label.startswith("_") and label.endswith("_"))


def load_prompts(path: Path) -> tuple[Prompt, ...]:
    """The labels to enrol, in file order; a bad file raises :class:`ConfigError` (one line)."""
    from trainer.vocab import load_vocabulary

    vocabulary = load_vocabulary(path)
    prompts = tuple(
        Prompt(label, phrases[0]) for label, phrases in vocabulary.phrases.items() if is_spoken(label)
    )
    if not prompts:
        raise ConfigError(str(path), "no spoken labels to enrol (only _unknown_/_background_ classes)")
    for prompt in prompts:
        check_folder_name(prompt.label)
    return prompts


def check_folder_name(label: str) -> None:
    """A label names a folder under the output directory: no separators, hidden or parent names."""
    unsafe = any(c in label for c in "/\\") or not label.isprintable()
    if unsafe or not label.strip() or label.startswith("."):
        raise ConfigError(f"labels.{label!r}", "cannot name a folder (no '/', '\\', leading '.' or "
                                               "control characters)")
