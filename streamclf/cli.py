"""Command line: `streamclf listen | serve | classify | devices | tail | review | enroll`.

Parses arguments, sets up logging, and hands over to the daemon or the batch runner.
Every failure the user can cause ends in one line on stderr and a distinct exit code.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .config import Settings, load_settings
from .errors import EXIT_OK, EXIT_RUNTIME, EXIT_SOME_INPUTS_FAILED, EXIT_STARTUP, StreamclfError

log = logging.getLogger("streamclf")


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model directory or hub id (default: the bundled commands model)")
    p.add_argument(
        "--backend", choices=("auto", "torch", "onnx"),
        help="inference backend (default auto: ONNX Runtime when the model directory has model.onnx)",
    )
    p.add_argument("--top-k", type=int, dest="top_k", help="ranked intents per utterance")
    p.add_argument("--threshold", type=float, help="top score needed to accept a label (0..1)")
    p.add_argument("--threads", type=int, help="inference threads (0: backend default)")
    p.add_argument("--config", type=Path, help="TOML config file")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), dest="log_level")
    json_group = p.add_mutually_exclusive_group()
    json_group.add_argument("--json", action="store_true", default=None, help="JSON lines on stdout")
    json_group.add_argument("--no-json", action="store_false", dest="json", help="human-readable output")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamclf", description="Streaming spoken-command classifier.")
    parser.add_argument("--version", action="version", version=f"streamclf {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listen = sub.add_parser("listen", help="classify live audio (the daemon)")
    listen.add_argument("--source", help="mic, a file (WAV/FLAC/OGG), or - for raw s16le PCM on stdin")
    listen.add_argument("--device", help="input device: index or part of its name")
    listen.add_argument("--rate", type=int, dest="sample_rate", help="capture rate in Hz (stdin: its rate)")
    listen.add_argument("--channels", type=int, help="channels of stdin PCM / to open on the mic")
    listen.add_argument("--speed", type=float, help="file pacing: 1 real time, 0 as fast as possible")
    listen.add_argument("--vad", choices=("webrtc", "silero"), help="voice-activity backend")
    listen.add_argument("--publish", action="append", help="event socket URI (repeatable)")
    listen.add_argument("--wait-for-device", action="store_true", default=None, dest="wait_for_device")
    listen.add_argument("--keep", dest="keep_dir", metavar="DIR",
                        help="keep each utterance's audio and intents in DIR (an audiofolder) for review")
    listen.add_argument("--keep-max-mb", type=float, dest="keep_max_mb", metavar="MB",
                        help="most the --keep folder may hold; the oldest clips go first (default 200)")
    _add_model_flags(listen)

    _add_serve_parser(sub)

    classify = sub.add_parser("classify", help="classify audio files as fast as possible")
    classify.add_argument("files", nargs="+", metavar="FILE")
    classify.add_argument("--no-vad", action="store_true", help="classify each file whole")
    classify.add_argument("--vad", choices=("webrtc", "silero"), help="voice-activity backend")
    _add_model_flags(classify)

    sub.add_parser("devices", help="list audio input devices")
    _add_enroll_parser(sub)
    _add_tail_parser(sub)
    _add_review_parser(sub)
    return parser


def _add_serve_parser(sub: Any) -> None:
    serve = sub.add_parser("serve", help="a Wyoming server: classify the audio streams of many clients")
    serve.add_argument("--uri", help="where to listen: tcp://HOST:PORT or unix:///PATH (default "
                                     "tcp://127.0.0.1:10400)")
    serve.add_argument("--allow-remote", action="store_true", default=None, dest="serve_allow_remote",
                       help="let --uri bind an address other machines can reach")
    serve.add_argument("--max-streams", type=int, dest="max_streams", help="most clients at once")
    serve.add_argument("--vad", choices=("webrtc", "silero"), help="voice-activity backend")
    serve.add_argument("--publish", action="append",
                       help="event socket or broker: unix:///PATH, tcp://HOST:PORT, mqtt://HOST[:PORT]/TOPIC "
                            "(repeatable; MQTT credentials: config file or environment)")
    _add_model_flags(serve)


def _add_enroll_parser(sub: Any) -> None:
    enroll = sub.add_parser("enroll", help="record your own voice saying each command (an audiofolder)")
    enroll.add_argument("--vocab", type=Path, required=True,
                        help="vocabulary TOML: [labels] label = phrase or [phrases]")
    enroll.add_argument("--out", type=Path, required=True, help="audiofolder to write (appended to)")
    enroll.add_argument("--takes", type=_positive(int), default=5, help="takes of each label (default 5)")
    enroll.add_argument("--speaker", help="the metadata's speaker column (default: your login name)")
    enroll.add_argument("--timeout", type=_positive(float), default=5.0, dest="timeout_s",
                        help="seconds without speech before 'nothing heard' (default 5)")
    enroll.add_argument("--retries", type=int, default=3,
                        help="'nothing heard' in a row before giving up (default 3)")
    enroll.add_argument("--device", help="input device: index or part of its name")
    enroll.add_argument("--rate", type=int, dest="sample_rate", help="capture rate in Hz")
    enroll.add_argument("--channels", type=int, help="channels to open on the mic")
    enroll.add_argument("--vad", choices=("webrtc", "silero"), help="voice-activity backend")
    enroll.add_argument("--config", type=Path, help="TOML config file (its [capture] and [vad])")
    enroll.add_argument("--log-level", choices=("debug", "info", "warning", "error"), dest="log_level")


def _positive(kind: type[int] | type[float]) -> Any:
    """An argparse ``type`` for a number above 0."""
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in "invalid int value"
    return parse


def _add_tail_parser(sub: Any) -> None:
    try:
        from .tail import add_tail_parser
    except ImportError:
        return
    add_tail_parser(sub)


def _add_review_parser(sub: Any) -> None:
    from .review.command import add_review_parser

    add_review_parser(sub)


def one_line(text: str) -> str:
    """``text`` with control characters and line breaks escaped (``\\n``, ``\\u2028``…): a file
    name with a newline in it cannot split a message or forge a second line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def settings_from_args(args: argparse.Namespace) -> Settings:
    get = lambda name: getattr(args, name, None)  # noqa: E731
    overrides: dict[str, dict[str, Any]] = {
        "capture": {
            k: get(k) for k in ("source", "device", "sample_rate", "channels", "speed", "wait_for_device")
        },
        "vad": {"backend": get("vad")},
        "model": {k: get(k) for k in ("model", "backend", "top_k", "threshold", "threads")},
        "output": {"json": get("json"), "log_level": get("log_level")},
        "serve": {"uri": get("uri"), "allow_remote": get("serve_allow_remote"),
                  "max_streams": get("max_streams")},
        "keep": {"dir": get("keep_dir"), "max_mb": get("keep_max_mb")},
    }
    if get("publish"):
        overrides["output"]["publish"] = list(args.publish)
    return load_settings(args.config, overrides)


def setup_logging(level: str) -> None:
    try:
        from .logs import setup_logging as setup
    except ImportError:
        logging.basicConfig(
            level=level.upper(), stream=sys.stderr, format="streamclf: %(levelname)s %(message)s"
        )
        return
    setup(level)


def cmd_listen(args: argparse.Namespace) -> int:
    from .daemon import Daemon

    settings = settings_from_args(args)
    setup_logging(settings.output.log_level)
    return Daemon(settings, args.config, loader=lambda: settings_from_args(args)).run()


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve.service import ServeService

    settings = settings_from_args(args)
    setup_logging(settings.output.log_level)
    return ServeService(settings).run()


def cmd_classify(args: argparse.Namespace) -> int:
    from .batch import classify_files
    from .bus import EventBus
    from .classifier import load_classifier
    from .daemon import want_json
    from .sinks.jsonl import JsonlSink

    settings = settings_from_args(args)
    setup_logging(settings.output.log_level)
    classifier = load_classifier(settings.model)
    # the first inference on the main thread sets torch up; without it, the worker thread's
    # first batches run about 4x slower (20 min of speech: 10.4 s → 2.6 s)
    classifier.warm_up()
    bus = EventBus()
    if want_json(settings):
        sink: Any = JsonlSink(bus.subscribe("stdout", 10_000_000, "drop"))
    else:
        from .sinks.pretty import PrettySink

        sink = PrettySink(bus.subscribe("stdout", 10_000_000, "drop"))
    sink.start()

    def report(path: str, why: str) -> None:
        print(f"streamclf: {one_line(why)}", file=sys.stderr, flush=True)

    try:
        reader_gone = getattr(sink, "closed_by_reader", None)  # `| head`: stop classifying
        should_stop = reader_gone.is_set if reader_gone is not None else (lambda: False)
        result = classify_files(
            args.files, classifier, bus, settings,
            no_vad=args.no_vad, on_error=report, should_stop=should_stop,
        )
    finally:
        sink.close(timeout=30.0)
    if result.failed:
        print(f"streamclf: {len(result.failed)} of {result.files} files failed", file=sys.stderr)
        return EXIT_SOME_INPUTS_FAILED
    return EXIT_OK


def cmd_devices(args: argparse.Namespace) -> int:
    from .audio.mic import list_input_devices

    devices = list_input_devices()
    if not devices:
        print("streamclf: no audio input devices found", file=sys.stderr)
        return EXIT_STARTUP
    for d in devices:
        mark = "*" if d.is_default else " "
        print(f"{mark}{d.index:3d}  {d.name}  ({d.channels} ch, {d.default_rate:g} Hz)")
    return EXIT_OK


def cmd_review(args: argparse.Namespace) -> int:
    from .review.command import run_review

    setup_logging("info")
    return run_review(args)


def cmd_enroll(args: argparse.Namespace) -> int:
    import getpass

    from .enroll.command import run_enroll
    from .enroll.session import EnrolOptions

    settings = settings_from_args(args)
    setup_logging(args.log_level or "warning")  # the panel owns stderr; only problems are logged
    try:
        speaker = args.speaker or getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        speaker = "me"
    options = EnrolOptions(takes=args.takes, timeout_s=args.timeout_s, retries=max(0, args.retries),
                           speaker=speaker)
    return run_enroll(settings, args.vocab, args.out, options)


COMMANDS = {"listen": cmd_listen, "serve": cmd_serve, "classify": cmd_classify, "devices": cmd_devices,
            "review": cmd_review, "enroll": cmd_enroll}


ONEDNN_CACHE_ENTRIES = "32"
"""oneDNN compiles and caches a primitive per input shape (1024 by default, ~20 KB each). Segments
come in every length, so a long-running daemon's memory crept up ~20 MB over 2 h of speech
(benchmarks/soak.py); a small cache keeps it flat at no measurable speed cost."""


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE_ENTRIES)  # before torch runs
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = COMMANDS.get(args.command)
    if handler is None:  # `tail` lives in its own module
        from .tail import run_tail_command

        handler = run_tail_command
    try:
        return int(handler(args))
    except StreamclfError as exc:
        print(f"streamclf: {one_line(str(exc))}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except MemoryError:
        print("streamclf: out of memory", file=sys.stderr)
        return EXIT_RUNTIME
