"""A Wyoming client for tests and benchmarks, built on the ``wyoming`` package's own client.

    result = asyncio.run(stream_audio(port, audio, rate=48000, channels=2))
    result.detections        # [(wall time received, detection event)], in order

``audio`` is float32, ``(n,)`` or ``(n, channels)``; it is sent as 16-bit PCM in ``chunk_ms``
chunks, paced in real time unless ``realtime=False``, then ``audio-stop`` and a ``ping``: the
server answers the ping only after every detection of the stream, so ``pong`` ends the reply.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field

import numpy as np
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.ping import Ping


@dataclass
class StreamResult:
    events: list[tuple[float, Event]] = field(default_factory=list)
    started: float = 0.0
    """Wall time (time.monotonic) of the first chunk."""

    @property
    def detections(self) -> list[Event]:
        return [e for _, e in self.events if e.type == "detection"]

    def of_type(self, kind: str) -> list[Event]:
        return [e for _, e in self.events if e.type == kind]


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def connect(port: int, timeout_s: float = 60.0) -> AsyncTcpClient:
    """A connected client, retrying while the server starts."""
    deadline = time.monotonic() + timeout_s
    while True:
        client = AsyncTcpClient("127.0.0.1", port)
        try:
            await client.connect()
            return client
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _read_until_pong(client: AsyncTcpClient, result: StreamResult) -> None:
    while True:
        event = await client.read_event()
        if event is None:
            return
        result.events.append((time.monotonic(), event))
        if event.type == "pong":
            return


async def stream_audio(port: int, audio: np.ndarray, *, rate: int, channels: int = 1, chunk_ms: int = 30,
                       realtime: bool = True) -> StreamResult:
    """Stream ``audio`` to the server at ``port`` and collect its replies up to the final pong."""
    client = await connect(port)
    result = StreamResult()
    reader = asyncio.create_task(_read_until_pong(client, result))
    try:
        await client.write_event(AudioStart(rate=rate, width=2, channels=channels).event())
        data = pcm16(audio)
        step = rate * chunk_ms // 1000 * 2 * channels
        result.started = time.monotonic()
        for i, pos in enumerate(range(0, len(data), step)):
            if realtime:
                await asyncio.sleep(max(0.0, result.started + i * chunk_ms / 1000 - time.monotonic()))
            chunk = AudioChunk(rate=rate, width=2, channels=channels, audio=data[pos:pos + step])
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        await client.write_event(Ping(text="done").event())
        await asyncio.wait_for(reader, timeout=120)
    finally:
        reader.cancel()
        await client.disconnect()
    return result
