"""`make demo`: run the daemon on the bundled default model.

With a working microphone it listens live. Without one it plays the bundled demo recording
(spoken commands in a voice held out of training) through the same pipeline, in real time,
with the live view on a terminal (JSON lines when stdout is not a terminal).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from importlib import resources
from pathlib import Path

from .config import Settings
from .errors import EXIT_STARTUP, StreamclfError

log = logging.getLogger(__name__)

DEMO_RECORDING = "demo.ogg"


def bundled_model_dir() -> Path:
    return Path(str(resources.files("streamclf") / "models" / "commands"))


def demo_recording() -> Path:
    return bundled_model_dir() / DEMO_RECORDING


def microphone_available() -> bool:
    """True when PortAudio can open the default input device."""
    try:
        import sounddevice as sd

        sd.check_input_settings(samplerate=16000, channels=1)
    except Exception:  # PortAudio raises several types for "no device"; any means no mic here
        return False
    return True


def demo_settings(use_mic: bool, recording: Path, speed: float) -> Settings:
    s = Settings()
    if use_mic:
        capture = replace(s.capture, source="mic")
    else:
        capture = replace(s.capture, source=str(recording), speed=speed)
    return replace(s, capture=capture, output=replace(s.output, status_interval_s=2.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streamclf-demo", description=__doc__)
    parser.add_argument("--no-mic", action="store_true", help="play the recording even with a mic present")
    parser.add_argument("--speed", type=float, default=1.0, help="pacing of the demo recording (0: fastest)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="streamclf: %(message)s")

    model_dir = bundled_model_dir()
    if not (model_dir / "config.json").is_file():
        print(
            f"streamclf: bundled default model not found at {model_dir}; "
            "build it with scripts/build-default-model",
            file=sys.stderr,
        )
        return EXIT_STARTUP
    recording = demo_recording()
    use_mic = not args.no_mic and microphone_available()
    if not use_mic and not recording.is_file():
        print(f"streamclf: no microphone and no demo recording at {recording}", file=sys.stderr)
        return EXIT_STARTUP
    if use_mic:
        log.info("listening on the default microphone with the bundled commands model (Ctrl-C stops)")
    else:
        log.info("no microphone: playing %s through the pipeline", recording.name)

    from .daemon import Daemon

    try:
        return Daemon(demo_settings(use_mic, recording, args.speed)).run()
    except StreamclfError as exc:
        print(f"streamclf: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
