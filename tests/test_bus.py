"""The event bus: fan-out, bounded queues, and a slow subscriber never holds back the others."""

from __future__ import annotations

import threading

from streamclf.bus import EventBus
from streamclf.events import SpeechEvent


def ev(i: int) -> SpeechEvent:
    return SpeechEvent("start", float(i))


def test_every_subscriber_gets_every_event_in_order() -> None:
    bus = EventBus()
    subs = [bus.subscribe(f"s{i}", 100) for i in range(3)]
    for i in range(50):
        bus.publish(ev(i))
    for sub in subs:
        assert [e.t for e in sub.drain()] == [float(i) for i in range(50)]  # type: ignore[union-attr]


def test_slow_subscriber_drops_and_counts_without_blocking() -> None:
    bus = EventBus()
    slow = bus.subscribe("slow", 10, "drop")
    fast = bus.subscribe("fast", 10_000, "drop")
    done = threading.Event()

    def produce() -> None:
        for i in range(5000):
            bus.publish(ev(i))
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    t.join(10)
    assert done.is_set()
    assert slow.pending() == 10 and slow.dropped == 4990
    assert fast.pending() == 5000 and fast.dropped == 0
    assert bus.dropped == 4990


def test_close_policy_cuts_off_and_counts_disconnection() -> None:
    bus = EventBus()
    sub = bus.subscribe("client", 3, "close")
    for i in range(5):
        bus.publish(ev(i))
    assert sub.closed and sub.overflowed
    assert [e.t for e in sub.drain()] == [0.0, 1.0, 2.0]  # type: ignore[union-attr]
    bus.unsubscribe(sub)
    assert bus.disconnected == 1
    assert bus.subscribers == 0


def test_get_wakes_on_publish_and_on_close() -> None:
    bus = EventBus()
    sub = bus.subscribe("s", 10)
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(sub.get(timeout=5)))
    t.start()
    bus.publish(ev(1))
    t.join(5)
    assert got and got[0] == ev(1)
    t = threading.Thread(target=lambda: got.append(sub.get(timeout=5)))
    t.start()
    sub.close()
    t.join(5)
    assert got[-1] is None and not t.is_alive()
