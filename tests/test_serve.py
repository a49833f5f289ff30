"""`streamclf serve` against the ``wyoming`` package's own client: many streams at once, each at its
own rate and channel count, one shared model; clients that die, stop reading or send bad input.

The server is the real daemon in a subprocess with the bundled ONNX model; the clients stream
spoken words (espeak-ng) built with known word boundaries.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soxr
from wyoming.audio import AudioChunk, AudioStart
from wyoming.client import AsyncUnixClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info

from streamclf.events import is_command
from tests.audio import needs_espeak, spoken_words
from tests.wyoming_client import connect, free_port, stream_audio
from trainer.streams import Stream, build_stream

ROOT = Path(__file__).resolve().parent.parent
MODEL_CONFIG = ROOT / "streamclf" / "models" / "commands" / "config.json"
TOLERANCE_S = 0.15

pytestmark = [needs_espeak]


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    stdout: Path
    stderr: Path

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout.read_text().splitlines() if line.strip()]

    def log(self) -> str:
        return self.stderr.read_text()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("serve")
    config = tmp / "config.toml"
    # threshold 0.3: the labels are checked, with room for a retrained default model's scores
    config.write_text("[output]\nstatus_interval_s = 0.3\n[serve]\nsend_buffer_kib = 16\n"
                      "[model]\nthreshold = 0.3\n")
    port = free_port()
    out, err = tmp / "stdout.jsonl", tmp / "stderr.log"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamclf", "serve", "--uri", f"tcp://127.0.0.1:{port}", "--json",
             "--config", str(config)], stdout=o, stderr=e, cwd=ROOT)
    try:
        yield Server(proc, port, out, err)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def word_stream(words: tuple[str, ...], seed: int) -> Stream:
    rng = np.random.default_rng(seed)
    gaps = list(rng.uniform(0.6, 1.2, size=len(words) - 1))
    return build_stream(spoken_words(words), list(words), gaps, rng, lead_s=0.6, tail_s=0.8)


def at_rate(stream: Stream, rate: int, channels: int) -> np.ndarray:
    audio = stream.audio
    if rate != stream.sample_rate:
        audio = soxr.resample(audio, stream.sample_rate, rate)
    return np.repeat(audio[:, None], channels, axis=1) if channels > 1 else audio


def assert_detections(found: list[Event], stream: Stream) -> None:
    assert [e.data["name"] for e in found] == [w.text for w in stream.words], [e.data for e in found]
    for event, truth in zip(found, stream.words, strict=True):
        assert abs(event.data["end"] - truth.end) <= TOLERANCE_S, (event.data, truth)
        assert abs(event.data["start"] - truth.start) <= TOLERANCE_S, (event.data, truth)
        assert event.data["timestamp"] == round(event.data["end"] * 1000)
        ranked = event.data["intents"]
        assert ranked[0]["label"] == event.data["name"]
        assert all(a["score"] >= b["score"] for a, b in itertools.pairwise(ranked))


async def _describe(port: int) -> Info:
    client = await connect(port)
    try:
        await client.write_event(Describe().event())
        event = await client.read_event()
    finally:
        await client.disconnect()
    assert event is not None and Info.is_type(event.type)
    return Info.from_event(event)


def test_describe_lists_the_models_commands(server: Server) -> None:
    info = asyncio.run(_describe(server.port))
    labels = json.loads(MODEL_CONFIG.read_text())["id2label"].values()
    assert [m.name for m in info.wake[0].models] == [label for label in labels if is_command(label)]


@pytest.mark.slow
def test_three_clients_at_their_own_rates_each_get_exactly_their_own_detections(server: Server) -> None:
    clients = [  # (words, seed, rate, channels)
        (("yes", "stop", "seven"), 1, 48000, 2),
        (("left", "house", "go"), 2, 16000, 1),
        (("down", "happy", "zero"), 3, 8000, 1),
    ]
    streams = [word_stream(words, seed) for words, seed, _, _ in clients]

    async def run_all() -> list:
        return await asyncio.gather(*(
            stream_audio(server.port, at_rate(s, rate, ch), rate=rate, channels=ch)
            for s, (_, _, rate, ch) in zip(streams, clients, strict=True)))

    results = asyncio.run(run_all())
    for result, stream in zip(results, streams, strict=True):
        assert_detections(result.detections, stream)
    time.sleep(0.5)
    utterances = [e for e in server.events() if e["type"] == "utterance"]
    by_source: dict[str, list[str]] = {}
    for event in utterances:
        by_source.setdefault(event["source"], []).append(event["label"])
    for stream in streams:  # the same events on stdout, each under its own stream's name
        assert [w.text for w in stream.words] in by_source.values(), by_source
    busy = [e for e in server.events() if e["type"] == "status" and len(e.get("streams") or {}) == 3]
    assert busy, "no status event listed the three streams"
    wanted = {"classified", "detections", "rejected", "samples"}
    assert all(wanted <= set(c) for c in busy[-1]["streams"].values())


_KILLED_CLIENT = """
import asyncio, sys, numpy as np
from tests.audio import spoken_words
from tests.wyoming_client import stream_audio
words = spoken_words(("seven", "marvin", "happy", "house"))
audio = np.concatenate([np.zeros(8000, np.float32)] + words * 8)  # speech without pauses
print("ready", flush=True)
asyncio.run(stream_audio(int(sys.argv[1]), audio, rate=16000))
"""


@pytest.mark.slow
def test_a_killed_client_and_a_faster_than_real_time_one_leave_the_others_unaffected(server: Server) -> None:
    victim = subprocess.Popen([sys.executable, "-c", _KILLED_CLIENT, str(server.port)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert victim.stdout is not None and victim.stdout.readline() == "ready\n"
    stream = word_stream(("marvin", "house", "yes"), 4)
    fast = word_stream(("stop", "go", "left", "seven"), 5)

    async def scenario() -> list:
        live = asyncio.create_task(stream_audio(server.port, stream.audio, rate=16000))
        quick = asyncio.create_task(stream_audio(server.port, fast.audio, rate=16000, realtime=False))
        await asyncio.sleep(2.0)  # the victim has streamed about 2 s: half a second of lead, then words
        victim.send_signal(signal.SIGKILL)  # in the middle of its speech
        return [await live, await quick]

    live, quick = asyncio.run(scenario())
    victim.wait(10)
    assert_detections(live.detections, stream)
    assert_detections(quick.detections, fast)
    assert "Traceback" not in server.log()
    time.sleep(0.5)
    speech: dict[str, list[str]] = {}
    for event in server.events():
        if event["type"] == "speech":
            speech.setdefault(event["source"], []).append(event["state"])
    for states in speech.values():  # the victim's open utterance got its end too
        assert states == ["start", "end"] * (len(states) // 2), states


async def _bad_client(port: int, send: list[bytes | Event]) -> tuple[list[Event], bool]:
    """Send raw bytes or events; the server's replies and whether it closed the connection."""
    client = await connect(port)
    try:
        assert client._writer is not None
        for item in send:
            if isinstance(item, bytes):
                client._writer.write(item)
                await client._writer.drain()
            else:
                await client.write_event(item)
        replies: list[Event] = []
        while (event := await asyncio.wait_for(client.read_event(), timeout=30)) is not None:
            replies.append(event)
        return replies, True
    finally:
        await client.disconnect()


BAD_INPUTS = {
    "not-wyoming": [b"\x00\x01 this is not json\n"],
    "bad-rate": [AudioStart(rate=16000, width=2, channels=1).event(),
                 AudioChunk(rate=1, width=2, channels=1, audio=b"\0\0" * 10).event()],
    "bad-width": [AudioStart(rate=16000, width=7, channels=1).event()],
    "no-audio-start": [AudioChunk(rate=16000, width=2, channels=1, audio=b"\0\0" * 10).event()],
    "bad-chunk": [AudioStart(rate=16000, width=2, channels=2).event(),
                  AudioChunk(rate=16000, width=2, channels=2, audio=b"\0" * 7).event()],
}


@pytest.mark.parametrize("code", sorted(BAD_INPUTS))
def test_bad_input_gets_one_clear_line_and_only_that_connection_closes(server: Server, code: str) -> None:
    async def scenario() -> tuple[tuple[list[Event], bool], Info]:
        other = await connect(server.port)  # a good client connected all along
        try:
            bad = await _bad_client(server.port, BAD_INPUTS[code])
            await other.write_event(Describe().event())
            answer = await other.read_event()
        finally:
            await other.disconnect()
        assert answer is not None
        return bad, Info.from_event(answer)

    (replies, closed), info = asyncio.run(scenario())
    assert closed and len(replies) == 1 and Error.is_type(replies[0].type), replies
    error = Error.from_event(replies[0])
    assert error.code == code and "\n" not in error.text and error.text
    assert info.wake  # the server goes on serving
    lines = [line for line in server.log().splitlines() if f"({code})" in line]
    assert len(lines) >= 1 and "Traceback" not in server.log()


def test_a_client_that_never_reads_its_replies_is_cut_off(server: Server) -> None:
    said = "stopped reading its replies; disconnected"
    before = server.log().count(said)

    async def scenario() -> None:
        client = await connect(server.port)
        assert client._writer is not None and client._reader is not None
        sock = client._writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel holds little for it
        try:
            for n in range(20000):  # each info reply is a few KB; the client reads none of them
                client._writer.write(b'{"type": "describe"}\n')
                if n % 50 == 0:
                    await client._writer.drain()
                    if server.log().count(said) > before:
                        break
            await _wait_for_line(server, said, before)
            while await asyncio.wait_for(client._reader.read(1 << 16), timeout=30):
                pass  # what was sent before the cut, then the end
        except ConnectionError:
            pass  # the reset reached us first
        finally:
            with contextlib.suppress(ConnectionError):
                await client.disconnect()

    asyncio.run(scenario())
    assert asyncio.run(_describe(server.port)).wake  # still serving


async def _wait_for_line(server: Server, text: str, seen_before: int = 0) -> None:
    for _ in range(300):
        if server.log().count(text) > seen_before:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the server never logged {text!r}")


def test_bad_serve_addresses_fail_with_one_line_and_exit_3(tmp_path: Path) -> None:
    regular = tmp_path / "not-a-socket"
    regular.write_text("keep me")
    for uri, words in [("tcp://127.0.0.1:99999", "bad port"), ("tcp://192.0.2.1:10400", "not a loopback"),
                       ("udp://127.0.0.1:1", "use tcp://"), (f"unix://{regular}", "not a socket")]:
        proc = subprocess.run([sys.executable, "-m", "streamclf", "serve", "--uri", uri], capture_output=True,
                              text=True, timeout=60, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert proc.returncode == 3, (uri, proc.stderr)
        assert proc.stderr.count("\n") == 1 and words in proc.stderr, (uri, proc.stderr)
    assert regular.read_text() == "keep me"


def test_serve_on_a_unix_socket_answers_and_removes_it_at_exit(tmp_path: Path) -> None:
    path = tmp_path / "wyoming.sock"
    proc = subprocess.Popen([sys.executable, "-m", "streamclf", "serve", "--uri", f"unix://{path}", "--json"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    async def describe() -> Info:
        for _ in range(600):
            if path.exists():
                break
            await asyncio.sleep(0.1)
        client = AsyncUnixClient(path)
        await client.connect()
        try:
            await client.write_event(Describe().event())
            event = await client.read_event()
        finally:
            await client.disconnect()
        assert event is not None
        return Info.from_event(event)

    try:
        assert asyncio.run(describe()).wake[0].models
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert not path.exists()
