"""A kept folder: WAV clips and the metadata.csv that lists them, changed only under its lock.

`listen --keep` adds clips while `review` may relabel or discard others in the same folder: every
change takes an exclusive ``flock`` on ``DIR/.lock``, re-reads metadata.csv when another process
changed it, and rewrites it atomically. A clip's audio is written before its row and deleted after
its row is gone, so a row never names a file that a crash left half-written; a crash can at worst
leave a clip file without a row, which audiofolder readers ignore.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..audiofolder import METADATA, PART, Row, Table, read_table, write_table, write_wav
from ..errors import StartupError
from .rows import COLUMNS, BadRow, reviewed_label

LOCK = ".lock"


class KeepError(StartupError):
    """A kept folder that cannot be used: missing, unwritable, or its metadata unreadable (exit 3)."""


class LowDiskSpace(Exception):
    """Writing would leave less free disk space than allowed; ``free_bytes`` is what is free."""

    def __init__(self, free_bytes: int) -> None:
        super().__init__(f"{free_bytes / 1e6:.0f} MB free")
        self.free_bytes = free_bytes


@dataclass(frozen=True)
class NewClip:
    """A clip to add: its WAV bytes and its row (``file_name`` is a wish; a taken name gets a suffix)."""

    wav: bytes
    row: Mapping[str, str]


@dataclass(frozen=True)
class Bound:
    """How much the folder may hold and how much disk it must leave free, in bytes."""

    max_bytes: int
    min_free_bytes: int


@dataclass(frozen=True)
class Added:
    """What one ``add`` did: the file names written, those dropped to stay in the bound, and how
    many clips were skipped because one alone is larger than the bound."""

    written: tuple[str, ...]
    pruned: tuple[str, ...]
    too_big: int


def oldest_to_drop(sizes: Sequence[int], fixed: int, incoming: int, max_bytes: int) -> int | None:
    """How many of the oldest entries (``sizes``, oldest first) must go for ``fixed`` + the rest +
    ``incoming`` to fit in ``max_bytes``; None when even dropping all is not enough."""
    total = fixed + sum(sizes) + incoming
    drop = 0
    while total > max_bytes and drop < len(sizes):
        total -= sizes[drop]
        drop += 1
    return drop if total <= max_bytes else None


class KeepFolder:
    """One kept folder. Open it with :meth:`for_writing` (listen) or :meth:`existing` (review)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.metadata = path / METADATA
        self._cache: tuple[tuple[int, int, int], Table] | None = None
        self._sizes: dict[str, int] = {}

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def for_writing(cls, directory: str) -> KeepFolder:
        """The folder, created when missing, checked writable and its metadata readable (KeepError)."""
        path = Path(directory).expanduser()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KeepError(f"keep folder {directory}: cannot create it: {exc.strerror or exc}") from None
        folder = cls(path)
        folder._check_writable(directory)
        with folder._locked():
            folder._current()
            folder._remove_leftovers()
        return folder

    @classmethod
    def existing(cls, directory: str) -> KeepFolder:
        """A folder that exists and holds a metadata.csv, checked writable (KeepError otherwise)."""
        path = Path(directory).expanduser()
        if not path.exists():
            raise KeepError(f"{directory}: no such folder")
        if not path.is_dir():
            raise KeepError(f"{directory}: not a folder")
        if not (path / METADATA).is_file():
            raise KeepError(f"{directory}: no {METADATA} (not a folder kept by `streamclf listen --keep`)")
        folder = cls(path)
        folder._check_writable(directory)
        folder.read()
        return folder

    def _check_writable(self, shown: str) -> None:
        if not self.path.is_dir():
            raise KeepError(f"keep folder {shown}: not a folder")
        probe = self.path / f".probe.{os.getpid()}{PART}"
        try:
            with self._locked():
                probe.write_bytes(b"")
                probe.unlink()
        except OSError as exc:
            raise KeepError(f"keep folder {shown}: cannot write there: {exc.strerror or exc}") from None

    def _remove_leftovers(self) -> None:
        """Clips and metadata a crash left half-written (only ever ours: hidden, ``.part``)."""
        for leftover in self.path.glob(f".*{PART}"):
            leftover.unlink(missing_ok=True)

    # -- reading --------------------------------------------------------------------------------
    def read(self) -> Table:
        """metadata.csv as it is now (empty with the standard columns when there is none yet)."""
        with self._locked():
            return self._current()

    def audio_path(self, file_name: str) -> Path:
        """Where ``file_name`` lies; BadRow when it points outside the folder."""
        path = self.path / file_name
        if not path.resolve().is_relative_to(self.path.resolve()) or path.resolve() == self.path.resolve():
            raise BadRow(f"file_name {file_name!r} points outside the folder")
        return path

    # -- changing -------------------------------------------------------------------------------
    def add(self, clips: Sequence[NewClip], bound: Bound) -> Added:
        """Write ``clips`` and their rows, dropping the oldest clips to stay within ``bound``.
        LowDiskSpace or OSError stop it; the clips written before that keep their rows."""
        with self._locked():
            table = self._current().with_columns(COLUMNS)
            rows, sizes = list(table.rows), [self._entry_bytes(r) for r in table.rows]
            fixed = len(",".join(table.columns)) + 1
            written: list[str] = []
            pruned: list[Row] = []
            too_big = 0
            try:
                for clip in clips:
                    need = len(clip.wav) + row_bytes(clip.row)
                    drop = oldest_to_drop(sizes, fixed, need, bound.max_bytes)
                    if drop is None:
                        too_big += 1
                        continue
                    self._check_free(len(clip.wav), bound.min_free_bytes)
                    row = self._write_clip(clip, {r.get("file_name", "") for r in rows})
                    pruned += rows[:drop]
                    rows, sizes = [*rows[drop:], row], [*sizes[drop:], need]
                    written.append(row["file_name"])
            finally:
                if written:
                    self._write(Table(table.columns, tuple(rows)))
                    self._delete_files(pruned)
        return Added(tuple(written), tuple(r.get("file_name", "") for r in pruned), too_big)

    def relabel(self, file_name: str, label: str) -> bool:
        """Give ``file_name`` its reviewed label; False when its row is gone (the clip was dropped)."""
        with self._locked():
            table = self._current()
            if table.find(file_name) is None:
                return False
            self._write(table.changed(file_name, reviewed_label(label)))
            return True

    def discard(self, file_name: str) -> bool:
        """Remove ``file_name``'s row, then its audio; False when the row was already gone."""
        with self._locked():
            table = self._current()
            row = table.find(file_name)
            if row is None:
                return False
            self._write(table.without([file_name]))
            self._delete_files([row])
            return True

    # -- inside ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _current(self) -> Table:
        """The metadata (caller holds the lock), re-read only when another process changed it."""
        try:
            st = os.stat(self.metadata)
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            if self._cache is not None and self._cache[0] == key:
                return self._cache[1]
            table = read_table(self.metadata, COLUMNS)
        except FileNotFoundError:
            return Table(COLUMNS, ())
        if "file_name" not in table.columns:
            raise KeepError(f"{self.metadata}: no file_name column: not an audiofolder's metadata")
        self._cache = (key, table)
        return table

    def _write(self, table: Table) -> None:
        write_table(self.metadata, table)
        st = os.stat(self.metadata)
        self._cache = ((st.st_ino, st.st_mtime_ns, st.st_size), table)

    def _entry_bytes(self, row: Row) -> int:
        """A kept clip's share of the folder: its audio file and its row."""
        name = row.get("file_name", "")
        if name not in self._sizes:
            try:
                self._sizes[name] = self.audio_path(name).stat().st_size
            except (OSError, BadRow):
                self._sizes[name] = 0
        return self._sizes[name] + row_bytes(row)

    def _check_free(self, size: int, min_free_bytes: int) -> None:
        free = shutil.disk_usage(self.path).free
        if free - size < min_free_bytes:
            raise LowDiskSpace(free)

    def _write_clip(self, clip: NewClip, taken: set[str]) -> dict[str, str]:
        """Write the clip under a name no row or file has yet; its row with that name."""
        wanted = Path(clip.row["file_name"])
        name, n = wanted.name, 1
        while name in taken or (self.path / name).exists():
            name, n = f"{wanted.stem}-{n}{wanted.suffix}", n + 1
        write_wav(self.path / name, clip.wav)
        self._sizes[name] = len(clip.wav)
        return {**clip.row, "file_name": name}

    def _delete_files(self, rows: Sequence[Row]) -> None:
        for row in rows:
            name = row.get("file_name", "")
            self._sizes.pop(name, None)
            with contextlib.suppress(OSError, BadRow):
                self.audio_path(name).unlink(missing_ok=True)


def row_bytes(row: Row) -> int:
    """About how many bytes ``row`` takes in the file (for the folder's size bound)."""
    return sum(len(v.encode("utf-8")) + 3 for v in row.values()) + 1
