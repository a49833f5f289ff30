"""The enrolment loop: each spoken label, ``takes`` times, one captured utterance per take.

A take is the first utterance the segmenter closes after the prompt (on a terminal: after Enter).
"r" discards the last saved take of this session and asks for it again; "q" stops, keeping what
was saved. When nothing is heard for ``timeout_s`` (speech in progress extends it), the user is
told to check the microphone and asked again; after ``retries`` such misses in a row the
enrolment stops with :class:`NothingHeard` (exit 1), keeping what was saved.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from ..errors import StreamclfError
from ..segment import Segment
from .folder import EnrolFolder, Take
from .keys import ENTER, Keys
from .listener import MicListener
from .prompts import Prompt
from .view import Asking, EnrolView

POLL_S = 0.05
"""Longest wait for audio between looks at the keyboard, in seconds."""
REDO, QUIT = "r", "q"


class NothingHeard(StreamclfError):
    """The microphone stayed silent through every retry (exit 1)."""


class Outcome(enum.Enum):
    REDO = "redo"
    QUIT = "quit"
    SILENCE = "silence"


@dataclass(frozen=True)
class EnrolOptions:
    takes: int = 5
    """Takes of each label."""
    timeout_s: float = 5.0
    """Seconds without speech after which a take counts as nothing heard."""
    retries: int = 3
    """Nothing-heard prompts in a row before giving up."""
    speaker: str = "me"
    """The ``speaker`` column."""


@dataclass(frozen=True)
class EnrolResult:
    saved: tuple[Take, ...]
    """This session's takes, in order."""
    stopped: bool
    """The user quit before the last take."""


class Session:
    def __init__(self, prompts: tuple[Prompt, ...], folder: EnrolFolder, listener: MicListener,
                 keys: Keys, view: EnrolView, options: EnrolOptions) -> None:
        self.plan = [prompt for prompt in prompts for _ in range(options.takes)]
        self.folder = folder
        self.listener = listener
        self.keys = keys
        self.view = view
        self.options = options
        self.saved: list[Take] = []

    def run(self) -> EnrolResult:
        misses = 0
        while len(self.saved) < len(self.plan):
            prompt = self.plan[len(self.saved)]
            outcome = self._take(prompt)
            if outcome is Outcome.QUIT:
                return EnrolResult(tuple(self.saved), stopped=True)
            if outcome is Outcome.SILENCE:
                misses += 1
                self._nothing_heard(misses)
                continue
            misses = 0
            if outcome is Outcome.REDO:
                self._redo()
            else:
                self._save(prompt, outcome)
        return EnrolResult(tuple(self.saved), stopped=False)

    # -- one take ---------------------------------------------------------------------------------
    def _take(self, prompt: Prompt) -> Segment | Outcome:
        take_of = 1 + sum(1 for take in self.saved if take.label == prompt.label)
        number = self.folder.next_take(prompt.label)
        self.view.ask(Asking(prompt.label, prompt.phrase, take_of, self.options.takes,
                             f"{prompt.label}/{prompt.label}_{number}.wav", self.keys.interactive))
        if self.keys.interactive:
            key = self._wait_for_enter()
            if key is not None:
                return key
            self.view.recording()
        self.listener.discard()
        return self._listen()

    def _wait_for_enter(self) -> Outcome | None:
        """None on Enter; the meter stays live and what is said meanwhile is dropped."""
        while True:
            key = self.keys.poll()
            if key == ENTER:
                return None
            if (outcome := _outcome(key)) is not None:
                return outcome
            self.listener.poll(POLL_S)
            self.listener.discard()

    def _listen(self) -> Segment | Outcome:
        deadline = time.monotonic() + self.options.timeout_s
        while True:
            if (outcome := _outcome(self.keys.poll())) is not None:
                return outcome
            segment = self.listener.poll(POLL_S)
            if segment is not None:
                return segment
            now = time.monotonic()
            if self.listener.speaking:
                deadline = now + self.options.timeout_s
            elif now >= deadline:
                return Outcome.SILENCE

    # -- outcomes ---------------------------------------------------------------------------------
    def _save(self, prompt: Prompt, segment: Segment) -> None:
        take = self.folder.add(prompt.label, prompt.phrase, self.options.speaker, segment.audio)
        self.saved.append(take)
        cut = f", cut at {segment.end - segment.start:.0f} s" if segment.reason == "max_length" else ""
        self.view.say(f"saved {take.file_name} ({len(segment.audio) / segment.sample_rate:.2f} s{cut})",
                      "green")

    def _redo(self) -> None:
        if not self.saved:
            self.view.say("nothing to redo yet", "yellow")
            return
        take = self.saved.pop()
        self.folder.remove(take)
        self.view.say(f"discarded {take.file_name}: say it again", "yellow")

    def _nothing_heard(self, misses: int) -> None:
        seconds = f"{self.options.timeout_s:g} s"
        advice = f"check the microphone ({self.listener.device}) and speak closer"
        if misses > self.options.retries:
            raise NothingHeard(f"nothing heard in {misses} tries of {seconds}: {advice}; "
                               f"{len(self.saved)} takes saved in {self.folder.root}")
        self.view.say(f"nothing heard in {seconds}: {advice}", "yellow")


def _outcome(key: str | None) -> Outcome | None:
    return {REDO: Outcome.REDO, QUIT: Outcome.QUIT}.get(key or "")
