"""RingBuffer: order, wrap-around, drop-oldest overflow accounting, and SPSC threading."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamclf.audio import RingBuffer


def ramp(start: int, count: int) -> np.ndarray:
    return np.arange(start, start + count, dtype=np.float32)


def test_reads_back_in_order_across_the_wrap() -> None:
    ring = RingBuffer(10)
    ring.write(ramp(0, 7))
    assert ring.read(5).tolist() == list(range(5))
    ring.write(ramp(7, 6))  # 2 left + 6 new = 8; the write wraps past the end
    assert ring.available == 8
    assert ring.read().tolist() == list(range(5, 13))
    assert ring.available == 0
    assert ring.overflows == 0 and ring.overflow_samples == 0


def test_full_buffer_drops_the_oldest_and_counts_it() -> None:
    ring = RingBuffer(8)
    ring.write(ramp(0, 6))
    ring.write(ramp(6, 5))  # 11 samples into 8: 0, 1, 2 are lost
    assert ring.overflows == 1
    assert ring.overflow_samples == 3
    assert ring.read().tolist() == list(range(3, 11))
    assert ring.total_written == 11


def test_a_block_longer_than_the_buffer_keeps_its_newest_samples() -> None:
    ring = RingBuffer(4)
    ring.write(ramp(0, 2))
    ring.write(ramp(2, 9))
    assert ring.read().tolist() == [7.0, 8.0, 9.0, 10.0]
    assert ring.overflow_samples == 7
    assert ring.overflows == 1


def test_read_limits_and_empty_reads() -> None:
    ring = RingBuffer(5)
    assert ring.read().shape == (0,)
    ring.write(ramp(0, 3))
    assert ring.read(0).shape == (0,)
    assert ring.read(2).tolist() == [0.0, 1.0]
    assert ring.read(10).tolist() == [2.0]


def test_multichannel_frames_stay_together() -> None:
    ring = RingBuffer(4, channels=2)
    block = np.stack([ramp(0, 6), -ramp(0, 6)], axis=1)
    ring.write(block[:3])
    ring.write(block[3:])
    out = ring.read()
    assert out.shape == (4, 2)
    assert out[:, 0].tolist() == [2.0, 3.0, 4.0, 5.0]
    assert (out[:, 1] == -out[:, 0]).all()


def test_wait_wakes_on_write_and_on_wake() -> None:
    ring = RingBuffer(16)
    assert ring.wait(0.01) is False
    timer = threading.Timer(0.05, ring.write, args=(ramp(0, 4),))
    timer.start()
    assert ring.wait(10.0) is True
    timer.join()
    ring.read()
    threading.Timer(0.05, ring.wake).start()
    assert ring.wait(10.0) is False  # woken, but nothing to read


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        RingBuffer(0)
    with pytest.raises(ValueError):
        RingBuffer(4, channels=0)


@settings(max_examples=150, deadline=None)
@given(
    capacity=st.integers(1, 40),
    ops=st.lists(st.tuples(st.booleans(), st.integers(0, 60)), max_size=40),
)
def test_matches_a_model_of_drop_oldest(capacity: int, ops: list[tuple[bool, int]]) -> None:
    """Any mix of writes and reads returns exactly what a plain list with drop-oldest would."""
    ring = RingBuffer(capacity)
    model: list[float] = []
    next_value = 0
    dropped = 0
    for is_write, count in ops:
        if is_write:
            ring.write(ramp(next_value, count))
            model.extend(range(next_value, next_value + count))
            next_value += count
            if len(model) > capacity:
                dropped += len(model) - capacity
                del model[: len(model) - capacity]
        else:
            got = ring.read(count).tolist()
            assert got == model[:count]
            del model[:count]
    assert ring.read().tolist() == model
    assert ring.overflow_samples == dropped


def test_threaded_producer_and_consumer_lose_nothing_when_the_buffer_keeps_up() -> None:
    """A producer writes 200 000 numbered samples in blocks; the consumer gets them all, in order."""
    total, block = 200_000, 160
    ring = RingBuffer(total)  # big enough: nothing may be dropped, only ordering is tested
    received: list[np.ndarray] = []
    done = threading.Event()

    def produce() -> None:
        for start in range(0, total, block):
            ring.write(ramp(start, block))
        done.set()
        ring.wake()

    def consume() -> None:
        while True:
            ring.wait(1.0)
            chunk = ring.read(1000)
            if len(chunk):
                received.append(chunk)
            elif done.is_set() and ring.available == 0:
                return

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    got = np.concatenate(received)
    assert len(got) == total
    assert (np.diff(got) == 1).all()


def test_threaded_overflow_keeps_order_and_accounts_every_sample() -> None:
    """A small buffer and a slow consumer: what arrives is increasing, and arrived + dropped = written."""
    total, block = 100_000, 100
    ring = RingBuffer(500)
    received: list[np.ndarray] = []
    done = threading.Event()

    def produce() -> None:
        for start in range(0, total, block):
            ring.write(ramp(start, block))
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    while not (done.is_set() and ring.available == 0):
        ring.wait(0.01)
        received.append(ring.read(37))
    producer.join()
    got = np.concatenate(received)
    assert (np.diff(got) > 0).all()
    assert len(got) + ring.overflow_samples == total
