"""``metadata.csv`` of a kept folder: read whole, rewritten whole and atomically.

Rows stay the text they were read as, columns this version does not know included, so rewriting
the file never loses what a person or another tool put there. A rewrite goes to a temporary file
that is flushed to disk and renamed over the old one: a crash leaves the old file or the new one,
never half of either.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import StartupError

METADATA = "metadata.csv"

Row = Mapping[str, str]


class KeepError(StartupError):
    """A kept folder that cannot be used: missing, unwritable, or its metadata unreadable (exit 3)."""


@dataclass(frozen=True)
class Table:
    """The columns (in file order) and the rows, oldest first."""

    columns: tuple[str, ...]
    rows: tuple[Row, ...]

    def with_columns(self, wanted: Iterable[str]) -> Table:
        """The same rows with any of ``wanted`` that are missing appended as columns."""
        extra = tuple(c for c in wanted if c not in self.columns)
        return Table(self.columns + extra, self.rows) if extra else self

    def find(self, file_name: str) -> Row | None:
        return next((r for r in self.rows if r.get("file_name") == file_name), None)

    def changed(self, file_name: str, changes: Mapping[str, str]) -> Table:
        """``file_name``'s row with ``changes`` applied (columns added when new)."""
        rows = tuple({**r, **changes} if r.get("file_name") == file_name else r for r in self.rows)
        return Table(self.columns, rows).with_columns(changes)

    def without(self, file_names: Iterable[str]) -> Table:
        gone = set(file_names)
        return Table(self.columns, tuple(r for r in self.rows if r.get("file_name") not in gone))


def read_table(path: Path, default_columns: tuple[str, ...]) -> Table:
    """The table in ``path``; an empty table with ``default_columns`` when the file is empty.
    FileNotFoundError when there is none; KeepError when it cannot be read as a metadata file."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            columns = tuple(reader.fieldnames or ())
            rows = tuple({k: v or "" for k, v in row.items() if isinstance(k, str)} for row in reader)
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise KeepError(f"{path}: cannot read: {exc}") from None
    if not columns:
        return Table(default_columns, ())
    if "file_name" not in columns:
        raise KeepError(f"{path}: no file_name column: not an audiofolder's metadata")
    return Table(columns, rows)


def write_table(path: Path, table: Table) -> None:
    """Replace ``path`` with ``table`` atomically (temporary file, fsync, rename). OSError on failure,
    the old file untouched."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=table.columns, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows(table.rows)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def row_bytes(row: Row) -> int:
    """About how many bytes ``row`` takes in the file (for the folder's size bound)."""
    return sum(len(v.encode("utf-8")) + 3 for v in row.values()) + 1
