"""Where audio comes from: the ``Source`` protocol, files, raw PCM on stdin, and the factory.

Every source yields mono float32 blocks at its own native ``sample_rate``; the pipeline
resamples once, afterwards. ``read(timeout)`` returns ``None`` at the end of the stream and
an empty array when nothing arrived within ``timeout``.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

import numpy as np
import soundfile as sf

from ..config import CaptureSettings
from ..errors import InputError, StartupError
from .resample import to_mono

log = logging.getLogger(__name__)

DEFAULT_STDIN_RATE = 16000
"""Rate assumed for raw PCM on stdin when none is given."""

FAST_BLOCK_MS = 500
"""Block length, in ms, of a file read as fast as possible (speed 0): fewer, larger reads."""


@runtime_checkable
class Source(Protocol):
    name: str
    """Shown in events, e.g. "mic:USB Audio", "file:cmds.wav", "stdin"."""
    sample_rate: int
    """Native rate, in Hz, of the blocks ``read`` returns."""
    live: bool
    """A device that runs at its own pace: the pipeline never waits for the worker (a full queue drops
    a segment, counted). Files and pipes are not live: the pipeline waits rather than drop."""

    def open(self) -> None:
        """Start delivering audio; raises StartupError/InputError with a one-line message."""

    def reopen(self) -> None:
        """Deliver audio again after ``read`` raised SourceLost (the device may come back at another
        rate); raises StartupError or SourceLost while it is still unavailable."""

    def read(self, timeout: float) -> np.ndarray | None:
        """Next mono float32 block (any length ≥ 0); None at end of stream.

        Raises SourceLost when a device disappears."""

    def close(self) -> None:
        """Stop and release; safe to call twice."""

    @property
    def counters(self) -> dict[str, int]:
        """At least ``frames`` (samples captured), ``overflows`` and ``overflow_samples``."""


# --------------------------------------------------------------------------- files

_MAGIC = {b"RIFF": "WAV", b"RIFX": "WAV", b"RF64": "WAV", b"fLaC": "FLAC", b"OggS": "OGG", b"FORM": "AIFF"}


def _describe_unreadable(path: Path, error: Exception) -> str:
    """Why libsndfile refused ``path``, in words: not audio, or a known format that is cut short."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError:
        head = b""
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    detail = detail.replace(f"Error opening {str(path)!r}: ", "")
    kind = _MAGIC.get(head[:4])
    if "channel count is zero" in detail.lower():
        return "has 0 channels"
    if kind is None:
        return f"not an audio file (WAV, FLAC or OGG expected): {detail}"
    if len(head) < 64:
        return f"truncated or corrupt {kind} header: {detail}"
    return f"truncated or corrupt {kind} file: {detail}"


def open_sound_file(path: Path) -> sf.SoundFile:
    """Open an audio file for reading, or raise InputError naming the file and what is wrong."""
    shown = str(path)
    if not path.exists():
        raise InputError(f"{shown}: no such file")
    if path.is_dir():
        raise InputError(f"{shown}: is a directory, not an audio file")
    if not path.is_file():
        raise InputError(f"{shown}: not a regular file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{shown}: permission denied")
    if path.stat().st_size == 0:
        raise InputError(f"{shown}: empty file")
    try:
        handle = sf.SoundFile(path)
    except PermissionError:
        raise InputError(f"{shown}: permission denied") from None
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise InputError(f"{shown}: {_describe_unreadable(path, exc)}") from None
    if handle.channels < 1:
        handle.close()
        raise InputError(f"{shown}: has 0 channels")
    if handle.samplerate < 1:
        handle.close()
        raise InputError(f"{shown}: invalid sample rate {handle.samplerate}")
    return handle


class FileSource:
    """A WAV/FLAC/OGG file, down-mixed to mono and read in blocks.

    ``speed`` 1.0 paces blocks in real time (a block is returned when its last sample would
    have been heard); 2.0 twice as fast; 0 as fast as possible. A file that is cut short
    yields what is readable; NaN/Inf samples become 0 and are counted (``nonfinite_samples``).
    """

    live = False

    def __init__(self, path: str | Path, speed: float = 1.0, block_ms: int = 30) -> None:
        if speed < 0:
            raise StartupError(f"file speed must be ≥ 0, got {speed}")
        self.path = Path(path)
        self.name = f"file:{self.path.name}"
        self.speed = speed
        self.sample_rate = 0
        self._block_ms = block_ms
        self._block = 0
        self._handle: sf.SoundFile | None = None
        self._started_at = 0.0
        self._frames = 0
        self._nonfinite = 0
        self._ended = False

    @property
    def duration(self) -> float:
        """Seconds of audio the file header announces (0 before ``open``)."""
        if self._handle is None or self.sample_rate == 0:
            return 0.0
        return self._handle.frames / self.sample_rate

    @property
    def counters(self) -> dict[str, int]:
        return {
            "frames": self._frames,
            "overflows": 0,
            "overflow_samples": 0,
            "nonfinite_samples": self._nonfinite,
        }

    def reopen(self) -> None:
        """A file never raises SourceLost; reopened, it is read again from the start."""
        self.open()

    def open(self) -> None:
        self.close()
        self._handle = open_sound_file(self.path)
        self.sample_rate = int(self._handle.samplerate)
        block_ms = self._block_ms if self.speed > 0 else max(self._block_ms, FAST_BLOCK_MS)
        self._block = max(1, self.sample_rate * block_ms // 1000)
        self._frames = 0
        self._ended = False
        self._started_at = time.monotonic()

    def _due_at(self, end_sample: int) -> float:
        return self._started_at + end_sample / (self.sample_rate * self.speed)

    def read(self, timeout: float) -> np.ndarray | None:
        if self._handle is None or self._ended:
            return None
        if self.speed > 0:
            # The next block (at most) ends here; it is due when that sample would be heard.
            wait = self._due_at(self._frames + self._block) - time.monotonic()
            if wait > timeout:
                time.sleep(max(0.0, timeout))
                return np.zeros(0, dtype=np.float32)
            if wait > 0:
                time.sleep(wait)
        block = self._read_block()
        if block is None:
            self._ended = True
            return None
        self._frames += len(block)
        return block

    def _read_block(self) -> np.ndarray | None:
        assert self._handle is not None
        try:
            data = self._handle.read(self._block, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            log.warning("%s: stopped reading at %.2f s: %s", self.path, self._frames / self.sample_rate, exc)
            return None
        if len(data) == 0:
            return None
        mono = to_mono(data)
        bad = ~np.isfinite(mono)
        if bad.any():
            if self._nonfinite == 0:  # one line per file, not one per block
                log.warning("%s: NaN/Inf samples replaced by 0 (counted in nonfinite_samples)", self.path)
            self._nonfinite += int(bad.sum())
            mono = np.where(bad, np.float32(0.0), mono)
        return np.ascontiguousarray(mono, dtype=np.float32)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


# --------------------------------------------------------------------------- stdin

_BYTES_PER_SAMPLE = 2  # s16le
_END = None


class StdinSource:
    """Raw signed 16-bit little-endian PCM from a byte stream (stdin by default).

    A background thread reads the stream and hands complete blocks over through a small
    bounded queue; when the consumer lags, the reader stops reading and the pipe pushes back
    on the writer (no audio is dropped, nothing grows without bound). A partial frame at
    the end of the stream is dropped and counted (``dropped_bytes``).
    """

    live = False

    def __init__(
        self,
        rate: int = DEFAULT_STDIN_RATE,
        channels: int = 1,
        stream: IO[bytes] | None = None,
        block_ms: int = 30,
        queue_blocks: int = 64,
    ) -> None:
        if rate <= 0:
            raise StartupError(f"stdin sample rate must be positive, got {rate}")
        if channels <= 0:
            raise StartupError(f"stdin channel count must be positive, got {channels}")
        self.name = "stdin"
        self.sample_rate = rate
        self.channels = channels
        self._stream = stream if stream is not None else sys.stdin.buffer
        self._frame_bytes = _BYTES_PER_SAMPLE * channels
        self._block_bytes = max(1, rate * block_ms // 1000) * self._frame_bytes
        self._queue: queue.Queue[np.ndarray | BaseException | None] = queue.Queue(maxsize=queue_blocks)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ended = False
        self._frames = 0
        self._dropped_bytes = 0

    @property
    def counters(self) -> dict[str, int]:
        return {
            "frames": self._frames,
            "overflows": 0,
            "overflow_samples": 0,
            "dropped_bytes": self._dropped_bytes,
        }

    def reopen(self) -> None:
        """Standard input never raises SourceLost; its reader thread keeps running."""
        self.open()

    def open(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._reader, name="stdin-reader", daemon=True)
        self._thread.start()

    def _chunk(self) -> bytes:
        # a raw read on the file descriptor: a buffered reader blocked in another thread
        # makes the interpreter abort at exit when a signal stops the daemon
        try:
            fd = self._stream.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None
        if fd is not None:
            return os.read(fd, self._block_bytes)
        read1 = getattr(self._stream, "read1", None)
        if read1 is not None:
            return bytes(read1(self._block_bytes))
        return bytes(self._stream.read(self._block_bytes))

    def _put(self, item: np.ndarray | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _reader(self) -> None:
        pending = bytearray()
        try:
            while not self._stop.is_set():
                chunk = self._chunk()
                if not chunk:
                    break
                pending += chunk
                usable = len(pending) - len(pending) % self._frame_bytes
                if usable >= self._block_bytes:
                    if not self._put(self._decode(bytes(pending[:usable]))):
                        return
                    del pending[:usable]
            usable = len(pending) - len(pending) % self._frame_bytes
            if usable and not self._put(self._decode(bytes(pending[:usable]))):
                return
            self._dropped_bytes = len(pending) - usable
            if self._dropped_bytes:
                log.warning("stdin: dropped a partial frame of %d bytes at the end", self._dropped_bytes)
        except (OSError, ValueError) as exc:  # a closed or broken stream: report it to the consumer
            self._put(exc)
            return
        self._put(_END)

    def _decode(self, raw: bytes) -> np.ndarray:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
        return to_mono(samples.reshape(-1, self.channels))

    def read(self, timeout: float) -> np.ndarray | None:
        if self._ended or self._thread is None:
            return None
        try:
            item = self._queue.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return np.zeros(0, dtype=np.float32)
        if item is None:
            self._ended = True
            return None
        if isinstance(item, BaseException):
            self._ended = True
            raise InputError(f"stdin: read failed: {item}")
        self._frames += len(item)
        return item

    def close(self) -> None:
        """Stop the reader; a thread blocked in a read of the stream is left to end with it."""
        self._stop.set()
        self._ended = True
        if self._thread is not None:
            self._thread.join(timeout=0.2)


# --------------------------------------------------------------------------- factory


def open_source(settings: CaptureSettings) -> Source:
    """The source ``settings.source`` names ("mic", "-" or a file path), not yet opened."""
    if settings.source == "mic":
        from .mic import MicSource  # PortAudio is only needed for the microphone

        return MicSource(
            device=settings.device,
            sample_rate=settings.sample_rate,
            channels=settings.channels,
            block_ms=settings.block_ms,
            ring_seconds=settings.ring_seconds,
        )
    if settings.source == "-":
        return StdinSource(
            rate=settings.sample_rate or DEFAULT_STDIN_RATE,
            channels=settings.channels,
            block_ms=settings.block_ms,
        )
    return FileSource(settings.source, speed=settings.speed, block_ms=settings.block_ms)
