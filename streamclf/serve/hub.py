"""The streams of all connections around one shared worker.

The hub names each stream, hands its segments to the worker (at most ``serve.stream_segments``
waiting per stream: a stream with more waits, and its client with it), and routes each result
back to the stream it came from: the worker calls :meth:`StreamHub.on_done` on its thread, the
hub moves it onto the event loop. Results of a stream whose client has gone are dropped there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ..bus import EventBus
from ..events import ErrorEvent, Event, SpeechEvent, UtteranceEvent
from ..pipeline import announce
from ..segment import Segment, Segmenter, SegmentEvent, SpeechStart
from ..worker import SegmentLike, Worker
from .stream import AudioStream, SegmenterFactory, StreamSegment

log = logging.getLogger(__name__)

Reply = Callable[[UtteranceEvent], None]


@dataclass
class _Entry:
    stream: AudioStream
    reply: Reply
    changed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class HubTotals:
    connections: int = 0
    refused: int = 0
    cut_off: int = 0
    bad_input: int = 0


class StreamHub:
    """Created and used on the event loop's thread; only :meth:`on_done` is called from another."""

    def __init__(self, bus: EventBus, make_segmenter: SegmenterFactory, *, max_streams: int,
                 stream_segments: int, speech_events: bool = True) -> None:
        self.bus = bus
        self.worker: Worker | None = None
        self.max_streams = max_streams
        self.stream_segments = stream_segments
        self.speech_events = speech_events
        self.totals = HubTotals()
        self._make_segmenter = make_segmenter
        self._idle_segmenters: list[Segmenter] = []
        self._entries: dict[int, _Entry] = {}
        self._next_key = 0
        self._loop = asyncio.get_running_loop()

    # ---- connections ---------------------------------------------------------------------

    def attach(self, peer: str, reply: Reply) -> AudioStream | None:
        """A stream for a new client; None when ``max_streams`` are connected (counted)."""
        if len(self._entries) >= self.max_streams:
            self.totals.refused += 1
            return None
        self._next_key += 1
        self.totals.connections += 1
        segmenter = self._idle_segmenters.pop() if self._idle_segmenters else self._make_segmenter()
        stream = AudioStream(self._next_key, self._free_name(f"wyoming:{peer}"), segmenter)
        self._entries[stream.key] = _Entry(stream, reply)
        return stream

    def detach(self, stream: AudioStream) -> None:
        """The client went away: its results still in the worker are dropped when they come, and an
        utterance it was in the middle of is dropped too (its speech start gets its end)."""
        if self._entries.pop(stream.key, None) is None:
            return
        self.drop_utterance(stream)
        self._idle_segmenters.append(stream.segmenter)  # a segmenter is costly to build

    def drop_utterance(self, stream: AudioStream) -> None:
        """Before the stream is reset or let go: an open utterance is dropped, its start gets its end."""
        if stream.speaking and self.speech_events:
            t = stream.segmenter.samples_seen / stream.segmenter.sample_rate
            self.bus.publish(SpeechEvent("end", t, stream.name))
        stream.speaking = False

    def _free_name(self, base: str) -> str:
        taken = {e.stream.name for e in self._entries.values()}
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}#{n}"
        return name

    @property
    def streams(self) -> list[AudioStream]:
        return [e.stream for e in self._entries.values()]

    def stream_counters(self) -> dict[str, dict[str, int]]:
        return {e.stream.name: {**e.stream.counters.as_dict(), "waiting": e.stream.pending}
                for e in self._entries.values()}

    # ---- segments in -----------------------------------------------------------------------

    def emit(self, stream: AudioStream, items: list[SegmentEvent]) -> None:
        """Speech events to the bus, segments to the worker (the caller awaits :meth:`room`)."""
        speech_bus = self.bus if self.speech_events else None
        if items:
            stream.speaking = _speaking_after(items, stream.speaking)
        for segment in announce(items, stream.segmenter.sample_rate, stream.name, speech_bus):
            self._submit(stream, segment)

    def _submit(self, stream: AudioStream, segment: Segment) -> None:
        assert self.worker is not None
        stream.counters.segments += 1
        stream.pending += 1
        self.worker.submit(stream.wrap(segment))

    async def room(self, stream: AudioStream) -> None:
        """Wait until the stream has fewer than ``stream_segments`` segments with the worker."""
        await self._wait(stream, lambda: stream.pending < self.stream_segments, count=True)

    async def settled(self, stream: AudioStream) -> None:
        """Wait until every segment of the stream has its result."""
        await self._wait(stream, lambda: stream.pending == 0, count=False)

    async def _wait(self, stream: AudioStream, ready: Callable[[], bool], *, count: bool) -> None:
        entry = self._entries.get(stream.key)
        if entry is None or ready():
            return
        if count:
            stream.counters.waits += 1
        while not ready() and stream.key in self._entries:
            entry.changed.clear()
            await entry.changed.wait()

    # ---- results out -------------------------------------------------------------------------

    def on_done(self, segment: SegmentLike, event: Event | None) -> None:
        """The worker's hook (its thread, or a submitter's): hand over to the event loop."""
        if isinstance(segment, StreamSegment):
            self._loop.call_soon_threadsafe(self._deliver, segment, event)

    def _deliver(self, segment: StreamSegment, event: Event | None) -> None:
        entry = self._entries.get(segment.key)
        if entry is None:
            return  # its client has gone
        counters = entry.stream.counters
        entry.stream.pending -= 1
        entry.changed.set()
        if event is None:
            counters.dropped_segments += 1
        elif isinstance(event, ErrorEvent):
            counters.errors += 1
        elif isinstance(event, UtteranceEvent):
            counters.classified += 1
            entry.reply(event)


def _speaking_after(items: list[SegmentEvent], speaking: bool) -> bool:
    """Whether an utterance is open after ``items``: a start opens one; an end or a segment closes it."""
    for item in items:
        speaking = isinstance(item, SpeechStart)
    return speaking
