"""One Wyoming client: ``describe`` → ``info``; ``audio-start`` / ``audio-chunk`` / ``audio-stop`` →
its own stream, answered with a ``detection`` per accepted utterance.

Built on the ``wyoming`` package's event handler and framing. Replies never wait on the client:
each is queued on the connection's transport, and a client whose unread replies pass
``serve.send_buffer_kib`` is cut off. Bad input (garbage, an impossible format, a chunk before
``audio-start``) gets one ``error`` event and one log line, and closes only that connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.info import Describe
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler
from wyoming.wake import Detect, Detection, NotDetected

from ..events import UtteranceEvent
from .hub import StreamHub
from .pcm import BadInput, audio_format, decode
from .stream import AudioStream

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HandlerOptions:
    info: Event
    """The ``info`` answer to ``describe``."""
    send_buffer_bytes: int
    max_chunk_s: float


def detection_event(event: UtteranceEvent) -> Event:
    """A ``detection`` (name = label, timestamp = end of the utterance in ms of its stream) with the
    ranked intents, the utterance's id, start and end in its data."""
    wyoming_event = Detection(name=event.label, timestamp=round(event.end * 1000)).event()
    wyoming_event.data.update({
        "intents": [{"label": i.label, "score": round(i.score, 4)} for i in event.intents],
        "id": event.id, "start": round(event.start, 3), "end": round(event.end, 3),
    })
    return wyoming_event


class StreamHandler(AsyncEventHandler):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hub: StreamHub,
                 options: HandlerOptions) -> None:
        super().__init__(reader, writer)
        self.hub = hub
        self.options = options
        self._sends: set[asyncio.Task[None]] = set()
        self._wanted: frozenset[str] | None = None
        self._detected = False
        peer = writer.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else "unix"
        self.stream: AudioStream | None = hub.attach(self.peer, self._reply)

    # ---- the connection ----------------------------------------------------------------

    async def run(self) -> None:
        """The package's receive loop, telling garbage apart from a client that hung up."""
        try:
            if self.stream is None:
                await self._refuse()
                return
            while True:
                try:
                    event = await async_read_event(self.reader)
                except (KeyError, AttributeError, TypeError, asyncio.IncompleteReadError):
                    event = None
                if event is None:
                    if not self.reader.at_eof():
                        self._bad(BadInput("not-wyoming", "sent something that is not a Wyoming event"))
                    break
                if not await self.handle_event(event):
                    break
        except ConnectionError:
            pass
        except Exception as exc:  # a bug must end only this connection, with one line
            log.error("serve: %s: %s: %s; closing its connection", self._name(), type(exc).__name__, exc)
            self.send(Error(text=f"internal error: {type(exc).__name__}", code="internal").event())
        finally:
            await self._close()

    async def _refuse(self) -> None:
        message = f"server full: {self.hub.max_streams} streams connected (serve.max_streams)"
        log.warning("serve: refused a client from %s: %s", self.peer, message)
        self.send(Error(text=message, code="server-full").event())

    async def _close(self) -> None:
        if self.stream is not None:
            self.hub.detach(self.stream)
        if self._sends:
            await asyncio.wait(set(self._sends), timeout=1.0)
        self.writer.close()

    async def handle_event(self, event: Event) -> bool:
        try:
            return await self._dispatch(event)
        except BadInput as exc:
            self._bad(exc)
            return False

    async def _dispatch(self, event: Event) -> bool:
        assert self.stream is not None
        if Describe.is_type(event.type):
            self.send(self.options.info)
        elif Ping.is_type(event.type):
            self.send(Pong(text=Ping.from_event(event).text).event())
        elif Detect.is_type(event.type):
            names = Detect.from_event(event).names
            self._wanted = frozenset(names) if names else None
        elif AudioStart.is_type(event.type):
            fmt = audio_format(event.data, "audio-start")
            self.hub.drop_utterance(self.stream)  # a new stream: what the old one held open is dropped
            self.stream.start(fmt)
            self._detected = False
        elif AudioChunk.is_type(event.type):
            await self._chunk(event)
        elif AudioStop.is_type(event.type):
            await self._stop()
        return True  # other events are not for us: ignored, as Wyoming servers do

    async def _chunk(self, event: Event) -> None:
        assert self.stream is not None
        if not self.stream.started:
            raise BadInput("no-audio-start", "audio-chunk before audio-start: send audio-start first")
        fmt = audio_format(event.data, "audio-chunk")
        frames = decode(event.payload or b"", fmt, self.options.max_chunk_s)
        self.hub.emit(self.stream, self.stream.push(frames, fmt))
        await self.hub.room(self.stream)  # its own backpressure: this client's audio waits
        await asyncio.sleep(0)  # a client far ahead of real time takes its turn with the others

    async def _stop(self) -> None:
        assert self.stream is not None
        if not self.stream.started:
            return
        self.hub.emit(self.stream, self.stream.finish())
        await self.hub.settled(self.stream)
        if not self._detected:
            self.send(NotDetected().event())

    # ---- replies -----------------------------------------------------------------------

    def _reply(self, event: UtteranceEvent) -> None:
        """A classified utterance of this stream (on the event loop)."""
        assert self.stream is not None
        counters = self.stream.counters
        if not event.accepted or event.label is None:
            counters.rejected += 1
        elif self._wanted is not None and event.label not in self._wanted:
            counters.ignored += 1
        else:
            counters.detections += 1
            self._detected = True
            self.send(detection_event(event))

    def send(self, event: Event) -> None:
        """Queue ``event`` for the client without waiting; cut it off when its replies pile up."""
        transport = self.writer.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size() > self.options.send_buffer_bytes:
            self.hub.totals.cut_off += 1
            log.warning("serve: %s stopped reading its replies; disconnected", self._name())
            transport.abort()
            return
        task = asyncio.create_task(_write(event, self.writer))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    def _bad(self, exc: BadInput) -> None:
        self.hub.totals.bad_input += 1
        if self.stream is not None:
            self.stream.counters.bad_input += 1
        log.warning("serve: %s: %s (%s); closing its connection", self._name(), exc, exc.code)
        self.send(Error(text=str(exc), code=exc.code).event())

    def _name(self) -> str:
        return self.stream.name if self.stream is not None else f"wyoming:{self.peer}"


async def _write(event: Event, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):  # gone: its handler ends on the next read
        await async_write_event(event, writer)
