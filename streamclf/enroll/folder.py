"""The enrolment folder: an ``audiofolder`` of the user's own voice, appended to take by take.

``DIR/<label>/<label>_<n>.wav`` (16 kHz mono PCM16) beside one ``DIR/metadata.csv`` with the
columns of :data:`COLUMNS` (``file_name`` relative to DIR), which ``datasets.load_dataset(
"audiofolder", data_dir=DIR)`` and ``trainer.data.load_audio_folder`` both read. Every accepted
take writes its WAV, then rewrites metadata.csv whole, each atomically (``streamclf.audiofolder``,
as `listen --keep` writes), so an interrupted enrolment leaves a folder that is consistent up to its
last take.
An existing folder is appended to: numbering goes on after the highest take on disk or in the
metadata, and nothing already there is overwritten.
"""

from __future__ import annotations

import re
from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audiofolder import METADATA, SAMPLE_RATE, Row, Table, encode_wav, read_table, write_table, write_wav
from ..errors import StartupError, StreamclfError

COLUMNS = ("file_name", "label", "text", "speaker", "take")


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
            write_wav(path, encode_wav(audio, SAMPLE_RATE))
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
        records = tuple(dict(zip(COLUMNS, map(str, astuple(row)), strict=True)) for row in rows)
        write_table(self.root / METADATA, Table(COLUMNS, records))


def _read_rows(path: Path) -> list[Take]:
    """The rows of an existing metadata.csv; one that enrolment did not write stops start-up."""
    table = read_table(path, default_columns=())
    if table.columns != COLUMNS:
        raise StartupError(f"{path}: columns {','.join(table.columns)} are not "
                           f"{','.join(COLUMNS)}: enrol into another folder")
    return [_row(record, path, line) for line, record in enumerate(table.rows, start=2)]


def _row(record: Row, path: Path, line: int) -> Take:
    try:
        return Take(record["file_name"], record["label"], record["text"], record["speaker"],
                    int(record["take"]))
    except ValueError:
        raise StartupError(f"{path}: line {line}: not a row of file_name,label,text,speaker,take") from None
