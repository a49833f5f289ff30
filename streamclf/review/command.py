"""`streamclf review DIR`: arguments, and the parts of a review wired together.

Exit codes: 0 done (or quit), 3 the folder cannot be reviewed (missing, no metadata.csv, unreadable
metadata, not writable, a bad ``--model``), 4 some clips were skipped because their audio is missing
or unreadable, 1 metadata.csv could not be rewritten (what was decided before is saved).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import EXIT_OK, EXIT_SOME_INPUTS_FAILED


def add_review_parser(sub: Any) -> None:
    review = sub.add_parser(
        "review", help="label kept utterances (listen --keep): hear each, accept, relabel or discard"
    )
    review.add_argument("dir", metavar="DIR", help="a folder written by `streamclf listen --keep DIR`")
    review.add_argument("--model", help="model directory whose labels (config.json id2label) get keys "
                                        "(default: the labels in the recorded intents)")
    review.add_argument("--all", action="store_true", help="also clips already reviewed")
    review.add_argument("--no-play", action="store_true", dest="no_play", help="do not play the clips")


def run_review(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..keep.folder import KeepFolder
    from ..keep.rows import is_reviewed
    from .keymap import label_keys, model_labels, ordered_labels, recorded_labels
    from .keys import open_keys
    from .playback import Player
    from .session import Reviewer, review
    from .view import ReviewView

    folder = KeepFolder.existing(args.dir)
    table = folder.read()
    given = model_labels(args.model) if args.model else []
    labels = ordered_labels([*given, *recorded_labels(table.rows)], keep_order=bool(given))
    keymap = label_keys(labels)
    rows = [row for row in table.rows if args.all or not is_reviewed(row)]
    view = ReviewView(Console(stderr=True, soft_wrap=True, highlight=False), keymap)
    if not rows:
        view.note(f"{args.dir}: nothing to review ({len(table.rows)} clips, all reviewed)")
        return EXIT_OK
    view.keys()
    with open_keys(sys.stdin) as next_key:
        result = review(rows, Reviewer(folder, next_key, Player(enabled=not args.no_play), view, keymap))
    view.summary({**result.counts, "left": len(rows) - sum(result.counts.values())})
    if result.unreadable:
        view.note(f"{result.unreadable} clips could not be reviewed (missing or unreadable audio)")
        return EXIT_SOME_INPUTS_FAILED
    return EXIT_OK
