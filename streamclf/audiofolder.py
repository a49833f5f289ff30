"""An ``audiofolder`` on disk: 16 kHz mono 16-bit WAV clips beside one ``metadata.csv`` that lists
them (``file_name`` relative to the folder), as ``datasets.load_dataset("audiofolder", data_dir=DIR)``
and the trainer read it. `listen --keep` / `review` (``keep/``) and `enroll` (``enroll/``) write
their folders through this module.

metadata.csv is read whole and rewritten whole. Rows stay the text they were read as, columns the
caller does not know included, so a rewrite never loses what a person or another tool put there.
Every file (metadata.csv and each clip) is written to a hidden temporary file beside it, flushed to
disk and renamed over the old one: a crash leaves the old file or the new one, never half of either
(at worst a leftover ``.<name>.<pid>.part``, which audiofolder readers ignore).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import soundfile as sf

from .errors import StartupError

METADATA = "metadata.csv"
SAMPLE_RATE = 16000
"""Sample rate of every clip written, in Hz."""
PART = ".part"
"""Suffix of a file being written (hidden, and not audio or metadata to a dataset reader)."""

Row = Mapping[str, str]


class BadMetadata(StartupError):
    """A metadata.csv that cannot be read (exit 3)."""


class BadClip(ValueError):
    """A clip that cannot be read as audio; ``str()`` says why in a few words."""


# -- metadata.csv ------------------------------------------------------------------------------
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
    """The table in ``path`` (a missing field reads as ""); an empty table with ``default_columns``
    when the file is empty. FileNotFoundError when there is none; BadMetadata when it cannot be read
    as CSV text. Which columns it must have is the caller's to check."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            columns = tuple(reader.fieldnames or ())
            rows = tuple({k: v or "" for k, v in row.items() if isinstance(k, str)} for row in reader)
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BadMetadata(f"{path}: cannot read: {exc}") from None
    return Table(columns, rows) if columns else Table(default_columns, ())


def write_table(path: Path, table: Table) -> None:
    """Replace ``path`` with ``table`` atomically. OSError on failure, the old file untouched."""
    with _replacing(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=table.columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(table.rows)


# -- clips -------------------------------------------------------------------------------------
def encode_wav(audio: np.ndarray, rate: int) -> bytes:
    """``audio`` (float32 mono at ``rate``) as the bytes of a 16 kHz mono 16-bit WAV file, encoded in
    memory so that its size is known before anything is written."""
    samples = np.asarray(audio, dtype=np.float32)
    if rate != SAMPLE_RATE and samples.size:
        import soxr

        samples = np.asarray(soxr.resample(samples, rate, SAMPLE_RATE), dtype=np.float32)
    buffer = io.BytesIO()
    # clipped first: libsndfile wraps out-of-range floats around instead of saturating
    sf.write(buffer, np.clip(samples, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def write_wav(path: Path, wav: bytes) -> None:
    """Replace ``path`` with ``wav`` (from :func:`encode_wav`) atomically. OSError on failure."""
    with _replacing(path, "wb") as fh:
        fh.write(wav)


def read_clip(path: Path) -> tuple[np.ndarray, int]:
    """The clip's samples (float32, mono) and rate; BadClip when missing or not audio."""
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise BadClip("audio file missing") from None
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        if not path.exists():
            raise BadClip("audio file missing") from None
        why = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise BadClip(f"not readable audio ({why})") from None
    if audio.shape[0] == 0:
        raise BadClip("audio file is empty")
    return np.ascontiguousarray(audio.mean(axis=1), dtype=np.float32), int(rate)


# -- inside ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _replacing(path: Path, mode: str, **options: Any) -> Iterator[IO[Any]]:
    """``open()`` on a temporary file beside ``path``, flushed to disk and renamed over ``path`` when
    the block ends without an error (removed when it fails): readers see the old file or the new one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}{PART}")
    try:
        with open(temporary, mode, **options) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
