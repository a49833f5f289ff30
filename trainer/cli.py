"""``python -m trainer``: fit and evaluate from the command line.

Errors with a known cause print one line and exit 3 (bad data or model) or 2 (usage), never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from streamclf.errors import EXIT_OK, StreamclfError

from . import settings as settings_module

log = logging.getLogger("trainer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser("fit", help="fine-tune an audio classifier")
    fit.add_argument("--config", type=Path, help="TOML file with [data], [model], [training] tables")
    settings_module.add_flags(fit, ("data", "model", "training"))

    evaluate = commands.add_parser("evaluate", help="score a model directory on labelled audio")
    evaluate.add_argument("--model", required=True, help="model directory (or hub id)")
    evaluate.add_argument("--config", type=Path, help="TOML file; only its [data] table is used")
    evaluate.add_argument("--split", default="test", help="train, validation or test (default: test)")
    evaluate.add_argument("--output", type=Path, help="report folder (default: MODEL/eval-SPLIT)")
    evaluate.add_argument("--batch-size", type=int, default=16)
    evaluate.add_argument("--seed", type=int, default=42, help="seed of the held-out split (as in fit)")
    evaluate.add_argument(
        "--source-split", dest="data.split", default=None,
        help="split of the data to split from when it has no test split (default: train)",
    )
    settings_module.add_flags(evaluate, ("data",), exclude=frozenset({"data.split"}))

    if importlib.util.find_spec("trainer.synth") is not None:
        importlib.import_module("trainer.synth").add_synth_parser(commands)
    importlib.import_module("trainer.export").add_export_parser(commands)
    if importlib.util.find_spec("trainer.synth") is not None:
        importlib.import_module("trainer.commands").add_commands_parser(commands)
    return parser


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("urllib3", "filelock", "fsspec", "matplotlib", "PIL", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fit(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .fit import run_fit
    from .report import fit_summary, show

    fit_settings = settings_module.fit_settings(args, args.config)
    result = run_fit(fit_settings, argv)
    show([fit_summary(result)])
    return EXIT_OK


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import run_evaluation
    from .report import evaluation_tables, show

    data = settings_module.resolve(args, args.config, ("data",))["data"]
    output = args.output if args.output is not None else Path(args.model) / f"eval-{args.split}"
    report = run_evaluation(args.model, data, args.split, output, args.batch_size, args.seed)
    show(evaluation_tables(report))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        if args.command == "fit":
            return _fit(args, argv)
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "export":
            return int(importlib.import_module("trainer.export").run_export(args))
        if args.command == "commands":
            return int(importlib.import_module("trainer.commands").run_commands_cli(args, argv))
        exit_code: int = importlib.import_module("trainer.synth").run_synth(args)  # the synth subcommand
        return exit_code
    except StreamclfError as err:
        sys.stderr.write(f"trainer: error: {err}\n")
        return err.exit_code
