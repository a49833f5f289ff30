"""SocketPublisher over real unix and TCP sockets: fan-out, slow clients, addresses, files."""

from __future__ import annotations

import io
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamclf.bus import EventBus
from streamclf.errors import StartupError
from streamclf.events import ErrorEvent, Intent, SpeechEvent, StatusEvent, UtteranceEvent, decode, encode
from streamclf.sinks.socket import SocketPublisher, make_publisher, parse_publish_uri, start_publishers
from streamclf.tail import _Printer

WAIT_S = 20.0


def _wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.005)


class Reader(threading.Thread):
    """Reads lines from a connected socket as fast as it can, until EOF."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.lines: list[bytes] = []
        self.eof = threading.Event()

    def run(self) -> None:
        with self.sock.makefile("rb") as stream:
            for line in stream:
                self.lines.append(line)
        self.eof.set()


def _unix_client(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.fspath(path))
    return sock


def _tcp_client(address: str) -> socket.socket:
    target = parse_publish_uri(address)
    return socket.create_connection((target.host, target.port), timeout=5.0)  # type: ignore[union-attr]


@pytest.fixture
def socket_dir(tmp_path: Path) -> Path:
    # short paths: AF_UNIX addresses are limited to 107 bytes
    return tmp_path


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def unix_publisher(bus: EventBus, socket_dir: Path) -> Iterator[SocketPublisher]:
    publisher = make_publisher(f"unix://{socket_dir}/run/events.sock", bus, buffer_events=20)
    publisher.start()
    yield publisher
    publisher.close()


def _big_event(n: int) -> ErrorEvent:
    return ErrorEvent(code="test", message=f"event {n} " + "x" * 8000, segment_id=n)


def test_fan_out_identical_sequences_and_slow_client_is_dropped(
        bus: EventBus, socket_dir: Path, unix_publisher: SocketPublisher) -> None:
    tcp_publisher = make_publisher("tcp://127.0.0.1:0", bus, buffer_events=20)
    tcp_publisher.start()
    try:
        path = socket_dir / "run" / "events.sock"
        readers = [Reader(_unix_client(path)) for _ in range(3)]
        readers.append(Reader(_tcp_client(tcp_publisher.address)))
        never_reads = _unix_client(path)
        never_reads.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        for reader in readers:
            reader.start()
        _wait_until(lambda: unix_publisher.clients == 4 and tcp_publisher.clients == 1, "clients accepted")

        total = 400
        for batch_start in range(0, total, 10):
            for n in range(batch_start, batch_start + 10):
                bus.publish(_big_event(n))
            # fast readers keep up; the one that never reads falls behind and is cut off
            _wait_until(lambda end=batch_start + 10: all(len(r.lines) >= end for r in readers),
                        "fast readers to catch up")

        assert unix_publisher.disconnected == 1
        assert unix_publisher.clients == 3
        assert bus.disconnected == 1
        expected = [_big_event(n) for n in range(total)]
        for reader in readers:
            assert [decode(line) for line in reader.lines] == expected
        # the dropped client sees end of stream once it drains what reached its buffer
        never_reads.settimeout(5.0)
        received = b""
        while chunk := never_reads.recv(65536):
            received += chunk
        assert 0 < received.count(b"\n") < total
        never_reads.close()
    finally:
        tcp_publisher.close()
    unix_publisher.close()
    for reader in readers:
        assert reader.eof.wait(5.0)


def test_subscriber_gets_events_from_the_moment_it_connects(
        bus: EventBus, socket_dir: Path, unix_publisher: SocketPublisher) -> None:
    bus.publish(ErrorEvent(code="before", message="nobody saw this"))
    reader = Reader(_unix_client(socket_dir / "run" / "events.sock"))
    reader.start()
    _wait_until(lambda: unix_publisher.clients == 1, "client accepted")
    bus.publish(ErrorEvent(code="after", message="first one seen"))
    _wait_until(lambda: len(reader.lines) == 1, "first event")
    assert decode(reader.lines[0]) == ErrorEvent(code="after", message="first one seen")


def test_close_flushes_queued_events_then_ends_the_stream(bus: EventBus, socket_dir: Path) -> None:
    publisher = make_publisher(f"unix://{socket_dir}/flush.sock", bus, buffer_events=1000)
    publisher.start()
    reader = Reader(_unix_client(socket_dir / "flush.sock"))
    reader.start()
    _wait_until(lambda: publisher.clients == 1, "client accepted")
    for n in range(100):
        bus.publish(ErrorEvent(code="last", message=str(n)))
    publisher.close(flush_timeout_s=5.0)
    assert reader.eof.wait(5.0)
    assert [decode(line).message for line in reader.lines] == [str(n) for n in range(100)]  # type: ignore[union-attr]


def test_client_that_vanishes_mid_write_is_dropped_cleanly(bus: EventBus, socket_dir: Path) -> None:
    publisher = make_publisher("tcp://:0", bus, buffer_events=1000)
    publisher.start()
    try:
        assert publisher.address.startswith("tcp://127.0.0.1:")
        gone = _tcp_client(publisher.address)
        gone.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        survivor = Reader(_tcp_client(publisher.address))
        survivor.start()
        _wait_until(lambda: publisher.clients == 2, "clients accepted")
        for n in range(50):
            bus.publish(_big_event(n))
        # reset the connection with unread data: the publisher's next send fails
        gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        gone.close()
        for n in range(50, 100):
            bus.publish(_big_event(n))
        _wait_until(lambda: len(survivor.lines) == 100, "survivor to get everything")
        _wait_until(lambda: publisher.clients == 1, "vanished client dropped")
        assert publisher.vanished == 1
        assert publisher.disconnected == 0
        assert [decode(line) for line in survivor.lines] == [_big_event(n) for n in range(100)]
    finally:
        publisher.close()


def test_unix_socket_mode_parent_directory_and_removal(bus: EventBus, socket_dir: Path) -> None:
    path = socket_dir / "made" / "here" / "events.sock"
    publisher = make_publisher(f"unix://{path}", bus)
    publisher.start()
    mode = os.stat(path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660
    assert publisher.address == f"unix://{path}"
    publisher.close()
    assert not path.exists()


def test_stale_socket_file_is_removed(bus: EventBus, socket_dir: Path) -> None:
    path = socket_dir / "stale.sock"
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(os.fspath(path))
    leftover.close()  # the file stays, nobody listens: what a crashed daemon leaves behind
    assert path.exists()
    with make_publisher(f"unix://{path}", bus) as publisher:
        reader = Reader(_unix_client(path))
        reader.start()
        _wait_until(lambda: publisher.clients == 1, "client accepted")
    assert reader.eof.wait(5.0)


def test_live_socket_is_not_stolen(bus: EventBus, socket_dir: Path) -> None:
    path = socket_dir / "busy.sock"
    with make_publisher(f"unix://{path}", bus), pytest.raises(StartupError, match="already serving"):
        make_publisher(f"unix://{path}", bus).start()


def test_regular_file_in_the_way_is_not_removed(bus: EventBus, socket_dir: Path) -> None:
    path = socket_dir / "events.sock"
    path.write_text("precious")
    with pytest.raises(StartupError, match="not a socket"):
        make_publisher(f"unix://{path}", bus).start()
    assert path.read_text() == "precious"


def test_non_loopback_tcp_needs_allow_remote(bus: EventBus) -> None:
    with pytest.raises(StartupError, match="allow_remote"):
        make_publisher("tcp://0.0.0.0:0", bus).start()
    with make_publisher("tcp://0.0.0.0:0", bus, allow_remote=True) as publisher:
        assert publisher.address.startswith("tcp://0.0.0.0:")


@pytest.mark.parametrize("uri, problem", [
    ("udp://127.0.0.1:9", "unknown scheme"),
    ("/run/events.sock", "unknown scheme"),
    ("tcp://127.0.0.1", "needs a port"),
    ("tcp://127.0.0.1:99999", "out of range"),
    ("unix://relative.sock", "absolute path"),
    ("unix:///" + "x" * 200, "longer than"),
])
def test_bad_uris_fail_start_up_clearly(bus: EventBus, uri: str, problem: str) -> None:
    with pytest.raises(StartupError, match=problem):
        make_publisher(uri, bus)


def test_port_in_use_is_a_start_up_error(bus: EventBus) -> None:
    with make_publisher("tcp://127.0.0.1:0", bus) as first, pytest.raises(StartupError, match="cannot bind"):
        make_publisher(first.address, bus).start()


# ---- streamclf tail, as a real subprocess --------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def _start_tail(uri: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "streamclf", "tail", uri], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)


def test_tail_passes_json_lines_through_when_piped_and_exits_1_when_the_daemon_goes(
        bus: EventBus, socket_dir: Path) -> None:
    publisher = make_publisher(f"unix://{socket_dir}/tail.sock", bus)
    publisher.start()
    tail = _start_tail(publisher.address)
    try:
        _wait_until(lambda: publisher.clients == 1, "tail to connect")
        sent = [ErrorEvent(code="e", message=f"line {n} \u00e9 \"quoted\"\nnext") for n in range(5)]
        for event in sent:
            bus.publish(event)
    finally:
        publisher.close(flush_timeout_s=5.0)
    out, err = tail.communicate(timeout=WAIT_S)
    assert tail.returncode == 1
    assert [decode(line) for line in out.splitlines()] == sent
    assert out == "".join(encode(e) for e in sent)
    assert err.count("\n") == 1 and "closed the connection" in err


def test_tail_cannot_connect_exits_3_with_one_line(socket_dir: Path) -> None:
    tail = _start_tail(f"unix://{socket_dir}/nobody.sock")
    out, err = tail.communicate(timeout=WAIT_S)
    assert tail.returncode == 3
    assert out == ""
    assert err.count("\n") == 1 and "cannot connect" in err and "Traceback" not in err
    bad = _start_tail("ftp://example")
    _, err = bad.communicate(timeout=WAIT_S)
    assert bad.returncode == 3 and "unknown scheme" in err and "Traceback" not in err


def test_tail_pretty_lines_are_short_and_readable() -> None:
    buffer = io.StringIO()
    printer = _Printer(pretty=True, out=buffer)
    utterance = UtteranceEvent(id=3, source="stdin", start=1.25, end=2.0,
                               intents=(Intent("stop", 0.93), Intent("[go]", 0.03)), label="stop",
                               accepted=True, latency_ms=8.4, model="tiny")
    for event in (utterance, SpeechEvent(state="start", t=1.25),
                  StatusEvent(source="stdin", model="tiny", state="listening", counters={"segments": 4}),
                  ErrorEvent(code="reload", message="config: model.threshold: must be between 0 and 1")):
        printer.line(encode(event).encode())
    printer.line(b"not json\n")
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 5
    assert "stop" in lines[0] and "[go] 0.03" in lines[0] and "8.4 ms" in lines[0] and "{" not in lines[0]
    assert "speech start" in lines[1]
    assert "segments=4" in lines[2] and "listening" in lines[2]
    assert "reload" in lines[3] and "model.threshold" in lines[3]
    assert "not an event" in lines[4]


def test_start_publishers_is_all_or_nothing(bus: EventBus, socket_dir: Path) -> None:
    good = socket_dir / "good.sock"
    with pytest.raises(StartupError, match="allow_remote"):
        start_publishers([f"unix://{good}", "tcp://0.0.0.0:0"], bus)
    assert not good.exists()
    publishers = start_publishers([f"unix://{good}", f"unix://{good}", "tcp://:0"], bus)
    try:
        assert [p.address.split(":")[0] for p in publishers] == ["unix", "tcp"]
    finally:
        for publisher in publishers:
            publisher.close()
    assert not good.exists()
