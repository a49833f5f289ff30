"""Audio capture: sources, the ring buffer between capture and processing, resampling."""

from .mic import (
    COMMON_RATES,
    DeviceInfo,
    MicSource,
    choose_rate,
    list_input_devices,
    refresh_devices,
    resolve_device,
)
from .resample import StreamResampler, to_mono
from .ringbuffer import RingBuffer
from .sources import DEFAULT_STDIN_RATE, FileSource, Source, StdinSource, open_sound_file, open_source

__all__ = [
    "COMMON_RATES",
    "DEFAULT_STDIN_RATE",
    "DeviceInfo",
    "FileSource",
    "MicSource",
    "RingBuffer",
    "Source",
    "StdinSource",
    "StreamResampler",
    "choose_rate",
    "list_input_devices",
    "open_sound_file",
    "open_source",
    "refresh_devices",
    "resolve_device",
    "to_mono",
]
