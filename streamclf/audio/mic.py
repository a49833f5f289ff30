"""The microphone: input devices, and ``MicSource`` on a sounddevice ``InputStream``.

The stream callback only copies each block into a :class:`RingBuffer` and counts; it never
logs, computes or allocates. A failure inside it, or the stream ending on its own (device
unplugged, sound server gone), is noticed by ``read()``, which raises ``SourceLost`` once
the captured audio has been drained. ``reopen()`` re-initialises PortAudio (whose device
list is otherwise frozen at start) and opens the device again.

PortAudio is imported lazily, so files and stdin work on machines without libportaudio2.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import SourceLost, StartupError
from .resample import to_mono
from .ringbuffer import RingBuffer

log = logging.getLogger(__name__)

COMMON_RATES = (16000, 48000, 44100, 32000, 22050, 8000)
"""Rates tried, in order, when neither the requested nor the device's default rate is accepted."""

_streams_lock = threading.Lock()
_open_streams = 0  # InputStreams this process holds open; PortAudio may be re-initialised at 0


def _sounddevice() -> ModuleType:
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio shared library is missing
        raise StartupError(f"cannot use the microphone: {exc} (install libportaudio2)") from None
    return sounddevice


@dataclass(frozen=True)
class DeviceInfo:
    """One input device as PortAudio sees it."""

    index: int
    name: str
    channels: int
    """Most input channels the device offers."""
    default_rate: int
    """The device's default sample rate in Hz."""
    is_default: bool
    hostapi: str = ""

    def describe(self) -> str:
        mark = "*" if self.is_default else ""
        return f"{self.index}{mark} {self.name!r} ({self.channels} ch, {self.default_rate} Hz)"


def _default_input_index(sd: ModuleType) -> int:
    try:
        index = sd.default.device[0]
        if index is None or int(index) < 0:
            index = sd.query_devices(kind="input")["index"]
        return int(index)
    except (sd.PortAudioError, ValueError, TypeError, KeyError):
        return -1


def list_input_devices() -> list[DeviceInfo]:
    """Every device with at least one input channel, in PortAudio's order."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
    except sd.PortAudioError as exc:
        raise StartupError(f"cannot list audio devices: {exc}") from None
    default = _default_input_index(sd)
    found = []
    for index, dev in enumerate(devices):
        if dev["max_input_channels"] < 1:
            continue
        api = hostapis[dev["hostapi"]]["name"] if dev["hostapi"] < len(hostapis) else ""
        found.append(
            DeviceInfo(
                index=index,
                name=str(dev["name"]),
                channels=int(dev["max_input_channels"]),
                default_rate=round(float(dev["default_samplerate"])),
                is_default=index == default,
                hostapi=str(api),
            )
        )
    return found


def _device_list_text(devices: list[DeviceInfo]) -> str:
    if not devices:
        return "no input devices found (no sound card, or the sound server is not reachable)"
    return "input devices: " + "; ".join(d.describe() for d in devices)


def resolve_device(spec: str | int | None) -> DeviceInfo:
    """The input device ``spec`` names: None (the default), an index, or a case-insensitive
    substring of the name (an exact name wins over substrings). No match, or several,
    raises StartupError listing the devices."""
    devices = list_input_devices()
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        for dev in devices:
            if dev.is_default:
                return dev
        if devices:
            return devices[0]
        raise StartupError(f"no default input device; {_device_list_text(devices)}")
    text = str(spec).strip()
    if text.isdigit():
        for dev in devices:
            if dev.index == int(text):
                return dev
        raise StartupError(f"no input device with index {text}; {_device_list_text(devices)}")
    wanted = text.casefold()
    exact = [d for d in devices if d.name.casefold() == wanted]
    if len(exact) == 1:
        return exact[0]
    matches = exact or [d for d in devices if wanted in d.name.casefold()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise StartupError(f"input device {text!r} matches nothing; {_device_list_text(devices)}")
    raise StartupError(
        f"input device {text!r} matches {len(matches)} devices, name one exactly or by index: "
        + "; ".join(d.describe() for d in matches)
    )


def refresh_devices() -> bool:
    """Re-initialise PortAudio so devices plugged in since start-up appear.

    Only possible while this process has no input stream open; returns whether it happened."""
    sd = _sounddevice()
    with _streams_lock:
        if _open_streams:
            return False
        sd._terminate()
        sd._initialize()
    return True


def choose_rate(device: DeviceInfo, requested: int | None, channels: int) -> int:
    """The requested rate if the device takes it, else its default rate, else a common rate."""
    sd = _sounddevice()
    candidates = [r for r in (requested, device.default_rate, *COMMON_RATES) if r]
    tried: list[int] = []
    for rate in dict.fromkeys(candidates):
        try:
            sd.check_input_settings(device=device.index, channels=channels, dtype="float32", samplerate=rate)
        except (sd.PortAudioError, ValueError):
            tried.append(rate)
            continue
        if requested and rate != requested:
            log.warning("%s refuses %d Hz; capturing at %d Hz and resampling", device.name, requested, rate)
        return rate
    raise StartupError(
        f"input device {device.name!r} accepts none of the sample rates {', '.join(map(str, tried))} Hz"
    )


class MicSource:
    """Capture from an input device through a sounddevice ``InputStream`` into a ring buffer.

    ``sample_rate`` is the rate actually opened (see :func:`choose_rate`); ``first_audio`` is
    set when the first callback delivers audio. Counters survive ``reopen()``.
    """

    live = True  # a live device: the pipeline never waits for the worker

    def __init__(
        self,
        device: str | int | None = None,
        sample_rate: int | None = None,
        channels: int = 1,
        block_ms: int = 30,
        ring_seconds: float = 10.0,
        stall_timeout_s: float = 3.0,
    ) -> None:
        self.device_spec = device
        self.requested_rate = sample_rate
        self.requested_channels = max(1, channels)
        self.block_ms = block_ms
        self.ring_seconds = ring_seconds
        self.stall_timeout_s = stall_timeout_s
        self.name = "mic"
        self.sample_rate = sample_rate or 0
        self.channels = self.requested_channels
        self.device: DeviceInfo | None = None
        self.first_audio = threading.Event()
        self._sd: Any = None  # the sounddevice module, imported by open()
        self._stream: Any = None
        self._ring: RingBuffer | None = None
        self._finished = threading.Event()
        self._closing = False
        self._callback_error: BaseException | None = None
        self._lost_reason: str | None = None  # set once a loss was reported, until reopened
        self._callbacks = 0
        self._driver_overflows = 0
        self._stall_seen = (0, 0.0)
        self._past = {"frames": 0, "overflows": 0, "overflow_samples": 0}  # from earlier streams

    # -- the audio thread --------------------------------------------------------------

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        try:
            if status.input_overflow:
                self._driver_overflows += 1
            self._ring.write(indata)  # type: ignore[union-attr]  # None only after close()
            self._callbacks += 1
            if not self.first_audio.is_set():
                self.first_audio.set()
        except Exception as exc:  # reported by read(), never lost inside PortAudio's thread
            self._callback_error = exc
            raise self._sd.CallbackAbort from exc

    def _on_finished(self) -> None:
        self._finished.set()
        if self._ring is not None:
            self._ring.wake()

    # -- life cycle --------------------------------------------------------------------

    def open(self) -> None:
        global _open_streams
        if self._stream is not None:
            return
        self._sd = _sounddevice()
        info = resolve_device(self.device_spec)
        channels = min(self.requested_channels, info.channels)
        rate = choose_rate(info, self.requested_rate, channels)
        ring = RingBuffer(max(1, int(self.ring_seconds * rate)), channels)
        self._ring = ring
        self._finished.clear()
        self.first_audio.clear()
        self._callback_error = None
        self._closing = False
        self._callbacks = 0
        self._stall_seen = (0, time.monotonic())
        try:
            stream = self._sd.InputStream(
                device=info.index,
                samplerate=rate,
                channels=channels,
                dtype="float32",
                blocksize=max(1, rate * self.block_ms // 1000),
                callback=self._callback,
                finished_callback=self._on_finished,
            )
        except (self._sd.PortAudioError, ValueError) as exc:
            raise StartupError(f"cannot open input device {info.describe()}: {exc}") from None
        with _streams_lock:
            _open_streams += 1
        self._stream = stream
        try:
            stream.start()
        except self._sd.PortAudioError as exc:
            self.close()
            raise StartupError(f"cannot start input device {info.describe()}: {exc}") from None
        self.device = info
        self.name = f"mic:{info.name}"
        self.sample_rate = rate
        self.channels = channels
        log.info("capturing from %s at %d Hz, %d channel(s)", info.describe(), rate, channels)

    def close(self) -> None:
        """Stop capturing; ``read`` then returns None (end of stream). Safe to call twice."""
        self._release_stream()
        self._lost_reason = None

    def _release_stream(self) -> None:
        global _open_streams
        stream, self._stream = self._stream, None
        if stream is None:
            return
        self._closing = True
        try:
            stream.abort(ignore_errors=True)
            stream.close(ignore_errors=True)
        finally:
            with _streams_lock:
                _open_streams -= 1
            self._bank_counters()

    def reopen(self) -> None:
        """Open the device again after a loss, re-initialising PortAudio first so a device that
        came back (or a new default) is seen; only done while no other stream is open.

        Raises SourceLost while the device is still unavailable: call again after a pause."""
        self._release_stream()
        if not refresh_devices():
            log.debug("another input stream is open; reusing PortAudio's device list")
        try:
            self.open()
        except StartupError as exc:
            self._lost_reason = f"{self.name}: still unavailable: {exc}"
            raise SourceLost(self._lost_reason) from None
        self._lost_reason = None

    # -- the consumer ------------------------------------------------------------------

    def read(self, timeout: float) -> np.ndarray | None:
        ring = self._ring
        if self._stream is None or ring is None:
            if self._lost_reason is not None:
                raise SourceLost(self._lost_reason)
            return None
        if ring.available == 0:
            self._raise_if_lost()
            ring.wait(timeout)
        block = ring.read()
        if len(block) == 0:
            self._raise_if_lost()
        return to_mono(block)

    def _raise_if_lost(self) -> None:
        reason = self._loss()
        if reason is not None:
            self._lost_reason = f"{self.name}: {reason}"
            raise SourceLost(self._lost_reason)

    def _loss(self) -> str | None:
        """Why capture has stopped, or None while it runs."""
        if self._callback_error is not None:
            return f"capture failed: {self._callback_error!r}"
        if self._finished.is_set() and not self._closing:
            return "the input stream stopped (device unplugged or sound server gone)"
        calls = self._callbacks
        now = time.monotonic()
        seen_calls, seen_at = self._stall_seen
        if calls != seen_calls:
            self._stall_seen = (calls, now)
        elif self.first_audio.is_set() and now - seen_at > self.stall_timeout_s:
            return f"no audio for {now - seen_at:.1f} s (device stalled)"
        return None

    # -- counters ----------------------------------------------------------------------

    def _bank_counters(self) -> None:
        ring = self._ring
        if ring is None:
            return
        self._past["frames"] += ring.total_written
        self._past["overflows"] += ring.overflows + self._driver_overflows
        self._past["overflow_samples"] += ring.overflow_samples
        self._driver_overflows = 0
        self._ring = None

    @property
    def counters(self) -> dict[str, int]:
        ring = self._ring
        live = {"frames": 0, "overflows": self._driver_overflows, "overflow_samples": 0}
        if ring is not None:
            live["frames"] = ring.total_written
            live["overflows"] += ring.overflows
            live["overflow_samples"] = ring.overflow_samples
        return {key: self._past[key] + live[key] for key in live}
