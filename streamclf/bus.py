"""Event fan-out: every subscriber has its own bounded queue; publishing never blocks.

A subscriber that falls behind loses events (``overflow="drop"``: counted) or is cut off
(``overflow="close"``: the subscription closes and the sink disconnects its client).
Either way the producer and the other subscribers go on at full speed.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Literal

from .events import Event

Overflow = Literal["drop", "close"]


class Subscription:
    """A bounded queue of events for one consumer."""

    def __init__(self, name: str, maxsize: int, overflow: Overflow) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be ≥ 1")
        self.name = name
        self.maxsize = maxsize
        self.overflow = overflow
        self.dropped = 0
        self.overflowed = False
        self._queue: collections.deque[Event] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self.on_event: Callable[[], None] | None = None
        """Called (outside the lock, on the publisher's thread) after each offer: lets a
        selector-based consumer wake up instead of polling. It must not block."""

    @property
    def closed(self) -> bool:
        return self._closed

    def offer(self, event: Event) -> None:
        """Queue ``event`` without ever blocking (called by the bus)."""
        with self._cond:
            if self._closed:
                return
            if len(self._queue) >= self.maxsize:
                self.dropped += 1
                if self.overflow == "close":
                    self.overflowed = True
                    self._closed = True
                self._cond.notify_all()
            else:
                self._queue.append(event)
                self._cond.notify()
        if self.on_event is not None:
            self.on_event()

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None on timeout or once closed and drained."""
        with self._cond:
            if not self._queue and not self._closed:
                self._cond.wait(timeout)
            return self._queue.popleft() if self._queue else None

    def drain(self) -> list[Event]:
        """Everything queued now, without waiting."""
        with self._cond:
            items = list(self._queue)
            self._queue.clear()
            return items

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def close(self) -> None:
        """Stop accepting events; ``get`` returns what is left, then None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class EventBus:
    """Publishes each event to every open subscription."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self.published = 0
        self.disconnected = 0
        self._dropped_by_closed = 0

    def subscribe(self, name: str, maxsize: int = 1000, overflow: Overflow = "drop") -> Subscription:
        sub = Subscription(name, maxsize, overflow)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)
                self._dropped_by_closed += sub.dropped
                if sub.overflowed:
                    self.disconnected += 1

    def publish(self, event: Event) -> None:
        with self._lock:
            subs = list(self._subs)
            self.published += 1
        for sub in subs:
            sub.offer(event)

    @property
    def dropped(self) -> int:
        """Events lost by slow subscribers, current and past."""
        with self._lock:
            return self._dropped_by_closed + sum(s.dropped for s in self._subs)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return sum(1 for s in self._subs if not s.closed)
