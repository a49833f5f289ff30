"""Errors that carry their own exit code and a one-line message for the user."""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_STARTUP = 3
EXIT_SOME_INPUTS_FAILED = 4


class StreamclfError(Exception):
    """Base: ``str(err)`` is the one line shown to the user."""

    exit_code = EXIT_RUNTIME


class StartupError(StreamclfError):
    """Bad config, model or device: systemd must not restart us (RestartPreventExitStatus=3)."""

    exit_code = EXIT_STARTUP


class ConfigError(StartupError):
    """A configuration key is unknown or has a bad value; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"config: {key}: {problem}")
        self.key = key


class InputError(StreamclfError):
    """An input file or stream that cannot be read as audio."""


class SourceLost(StreamclfError):
    """The audio device went away; the supervisor reopens it."""
