"""The training vocabulary of a custom-command model: the user's labels, ``_unknown_`` and ``_background_``.

The user writes only their commands. ``_unknown_`` gets the other-speech phrases of the default model's
vocabulary (``configs/commands.toml``), less every phrase that shares a word with a command (a phrase
such as "music" would teach the model to reject "play music"), and ``_background_`` is added as the
non-speech class.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from streamclf.errors import ConfigError

from . import tts
from .vocab import BACKGROUND, UNKNOWN, Vocabulary, load_vocabulary, normalise

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OTHER_PHRASES = REPO / "configs" / "commands.toml"
"""Where the ``_unknown_`` phrases come from unless ``--unknown-phrases`` names another vocabulary."""


def other_phrases(source: Path, commands: Vocabulary) -> tuple[str, ...]:
    """``source``'s ``_unknown_`` phrases and its spoken words, less those that share a word with a
    command, in file order."""
    other = load_vocabulary(source)
    command_words = {word for form in _command_forms(commands) for word in form.split()}
    kept: list[str] = []
    for label, phrases in other.phrases.items():
        candidates = phrases if label == UNKNOWN else phrases[:1]
        for phrase in candidates:
            words = set(normalise(phrase).split())
            if words and not words & command_words and phrase not in kept:
                kept.append(phrase)
    if not kept:
        raise ConfigError(str(source), "no other-speech phrase is left once the commands' words are removed")
    return tuple(kept)


def _command_forms(commands: Vocabulary) -> set[str]:
    forms = {normalise(label) for label in commands.phrases}
    for phrases in commands.phrases.values():
        forms.update(normalise(p) for p in phrases)
    return forms


def training_vocabulary_toml(commands: Vocabulary, unknown: tuple[str, ...]) -> str:
    """The ``[labels]`` TOML that ``trainer synth`` and ``trainer fit`` read."""
    lines = ["# Written by python -m trainer commands: the commands, other speech, non-speech.", "[labels]"]
    for label, phrases in commands.phrases.items():
        lines.append(f"{json.dumps(label)} = {json.dumps(list(phrases), ensure_ascii=False)}")
    lines.append(f"{UNKNOWN} = {json.dumps(list(unknown), ensure_ascii=False)}")
    lines.append(f"{BACKGROUND} = []")
    return "\n".join(lines) + "\n"


def read_commands(path: Path) -> Vocabulary:
    """The user's vocabulary: their commands only (``_unknown_`` and the non-speech class are added)."""
    vocabulary = load_vocabulary(path)
    reserved = [label for label in vocabulary.phrases if label == UNKNOWN]
    if reserved:
        raise ConfigError(f"labels.{reserved[0]}", "is added by trainer commands; list only your commands")
    if len(vocabulary.phrases) < 1:
        raise ConfigError("labels", "name at least one command")
    return vocabulary


def check_speakable(commands: Vocabulary, engines: tuple[str, ...]) -> None:
    """Every phrase has letters and at least one installed engine speaks it (not silence)."""
    voices = [tts.list_voices(engine)[0] for engine in engines if engine in tts.available_engines()]
    if not voices:
        raise ConfigError("engines", "no text-to-speech engine found (install espeak-ng, flite or festival)")
    for label, phrases in commands.phrases.items():
        for phrase in phrases:
            if not any(character.isalpha() for character in phrase):
                raise ConfigError(f"labels.{label}", f"phrase {phrase!r} has no letters to speak")
            failures = []
            for voice in voices:
                try:
                    tts.synthesize(phrase, voice)
                    break
                except tts.TtsError as err:
                    failures.append(str(err))
            else:
                raise ConfigError(
                    f"labels.{label}", f"no TTS engine can speak {phrase!r} ({failures[0]})"
                )
