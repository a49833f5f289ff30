"""The enrolment folder: an ``audiofolder`` of the user's own voice, appended to take by take.

``DIR/<label>/<label>_<n>.wav`` (16 kHz mono PCM16) beside one ``DIR/metadata.csv`` with the
columns of :data:`COLUMNS` (``file_name`` relative to DIR), which ``datasets.load_dataset(
"audiofolder", data_dir=DIR)`` and ``trainer.data.load_audio_folder`` both read. Every accepted
take rewrites metadata.csv whole through a temporary file and a rename, and each WAV is written
the same way, so an interrupted enrolment leaves a folder that is consistent up to its last take.
An existing folder is appended to: numbering goes on after the highest take on disk or in the
metadata, and nothing already there is overwritten.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
from collections.abc import Iterator
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import soundfile as sf

from ..errors import StartupError, StreamclfError

COLUMNS = ("file_name", "label", "text", "speaker", "take")
METADATA = "metadata.csv"
SAMPLE_RATE = 16000
"""Rate, in Hz, of every WAV written (the segmenter's rate)."""


@dataclass(frozen=True)
class Take:
    """One row of metadata.csv: a clip the user recorded."""

    file_name: str
    """Relative to the folder, with '/' separators: ``<label>/<label>_<take>.wav``."""
    label: str
    text: str
    """The phrase the user was asked to say."""
    speaker: str
    take: int
    """The clip's number within its label (1, 2, …), also in its file name."""


class EnrolFolder:
    """The folder's rows in memory, kept equal to metadata.csv on disk after every change."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rows: list[Take] = _read_rows(root / METADATA) if (root / METADATA).exists() else []

    def next_take(self, label: str) -> int:
        """One past the highest take of ``label`` in the metadata or among its files on disk."""
        numbers = [row.take for row in self.rows if row.label == label]
        pattern = re.compile(rf"{re.escape(label)}_(\d+)\.wav")
        folder = self.root / label
        if folder.is_dir():
            numbers += [int(m.group(1)) for p in folder.iterdir() if (m := pattern.fullmatch(p.name))]
        return max(numbers, default=0) + 1

    def add(self, label: str, text: str, speaker: str, audio: np.ndarray) -> Take:
        """Write ``audio`` (float32 mono at :data:`SAMPLE_RATE`) as the label's next take, then the
        metadata with its row."""
        take = self.next_take(label)
        row = Take(f"{label}/{label}_{take}.wav", label, text, speaker, take)
        path = self.root / row.file_name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_wav(path, audio)
            self._write_metadata([*self.rows, row])
        except (OSError, sf.LibsndfileError) as exc:  # a full disk: what was saved before stays
            raise StreamclfError(f"{path}: cannot write: {exc}; {self.root / METADATA} still lists the "
                                 f"{len(self.rows)} takes before it") from None
        self.rows.append(row)
        return row

    def remove(self, row: Take) -> None:
        """Forget ``row``: the metadata first (never a row without its file), then the file."""
        try:
            self._write_metadata([kept for kept in self.rows if kept != row])
        except OSError as exc:
            raise StreamclfError(f"{self.root / METADATA}: cannot write: {exc}") from None
        self.rows.remove(row)
        (self.root / row.file_name).unlink(missing_ok=True)

    def _write_metadata(self, rows: list[Take]) -> None:
        lines = [COLUMNS, *(tuple(map(str, astuple(row))) for row in rows)]
        with _replacing(self.root / METADATA, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(lines)


def _read_rows(path: Path) -> list[Take]:
    """The rows of an existing metadata.csv; one that enrolment did not write stops start-up."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise StartupError(f"{path}: columns {','.join(reader.fieldnames or ())} are not "
                                   f"{','.join(COLUMNS)}: enrol into another folder")
            return [_row(record, path, reader.line_num) for record in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StartupError(f"{path}: cannot read: {exc}") from None


def _row(record: dict[str, str], path: Path, line: int) -> Take:
    try:
        return Take(record["file_name"], record["label"], record["text"], record["speaker"],
                    int(record["take"]))
    except (TypeError, ValueError):
        raise StartupError(f"{path}: line {line}: not a row of file_name,label,text,speaker,take") from None


def _write_wav(path: Path, audio: np.ndarray) -> None:
    pcm = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    with _replacing(path, "wb") as handle:
        sf.write(handle, pcm, SAMPLE_RATE, subtype="PCM_16", format="WAV")


@contextlib.contextmanager
def _replacing(path: Path, mode: str, **options: Any) -> Iterator[IO[Any]]:
    """``open()`` on a temporary file beside ``path``, flushed to disk and renamed over ``path`` when
    the block ends without an error (removed when it fails): readers see the old file or the new one."""
    temp = path.with_name(f".{path.name}.part")
    try:
        with open(temp, mode, **options) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
