"""Concurrent real-time streams one `streamclf serve` sustains, and the idle cost of a silent stream.

    .venv/bin/python -m benchmarks.streams [--quick] [--counts 1,8,16,32,40] [--seconds S]

One server (the bundled default model, ONNX Runtime) in a child process; this process is the
clients, one ``wyoming`` client per stream on one asyncio loop, each streaming its own S seconds
(default 30) of generated commands and quiet (``benchmarks.common.command_stream``: many voices,
pink noise 25 dB under the speech) in real time, in 60 ms chunks of 16 kHz 16-bit PCM, all at once.
For each stream count:

- *CPU per stream*: the server's user + system CPU seconds over the run, per stream and wall second,
  in % of one core (the clients' own CPU, on the same 2 cores, is not counted but competes);
- *end of speech → detection*: from sending the chunk that holds a word's last sample to
  receiving its ``detection`` (p50, p95; hangover included: the segmenter waits 160 ms of quiet);
- *classified / segments*: the server's own counters over the run (``dropped`` segments: none
  may be lost); *words found*: utterances whose end lies within 0.3 s of a word's end;
- *peak RSS*: the server's peak resident memory so far (each stream has its own segmenter);
- *held*: every segment classified and p95 under 300 ms.

Then the idle cost: N streams of digital silence for S seconds, the server's CPU per stream above
its CPU with no stream at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import (
    child_env,
    cli_command,
    command_stream,
    emit,
    machine_description,
    percentile,
    table,
    temp_dir,
)
from benchmarks.daemon_run import cpu_seconds
from tests.wyoming_client import connect, free_port, stream_audio
from trainer.streams import Stream

CHUNK_MS = 60
TARGET_P95_MS = 300.0
MATCH_S = 0.3


@dataclass(frozen=True)
class Level:
    streams: int
    cpu_per_stream: float
    p50_ms: float
    p95_ms: float
    segments: int
    classified: int
    dropped: int
    words: int
    found: int
    rss_mib: float

    @property
    def held(self) -> bool:
        return self.dropped == 0 and self.classified == self.segments and self.p95_ms < TARGET_P95_MS


class Server:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.out = workdir / "events.jsonl"
        config = workdir / "config.toml"
        config.write_text("[output]\nstatus_interval_s = 0.5\n[serve]\nmax_streams = 512\n")
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(
                cli_command("serve", "--uri", f"tcp://127.0.0.1:{self.port}", "--json",
                            "--config", str(config)),
                stdout=out, stderr=subprocess.DEVNULL, env=child_env())

    def counters(self) -> dict[str, int]:
        """The totals of the newest status event."""
        time.sleep(1.2)  # two status intervals: the counters include everything sent so far
        for line in reversed(self.out.read_text().splitlines()):
            event = json.loads(line)
            if event.get("type") == "status":
                return dict(event["counters"])
        return {}

    def utterances(self) -> list[dict]:
        events = (json.loads(line) for line in self.out.read_text().splitlines() if line.strip())
        return [e for e in events if e["type"] == "utterance"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _latencies(result: object, stream: Stream) -> list[float]:
    """Detection receipt minus the send time of the chunk holding the matching word's end."""
    out = []
    started = result.started  # type: ignore[attr-defined]
    for received, event in result.events:  # type: ignore[attr-defined]
        if event.type != "detection":
            continue
        ends = [w.end for w in stream.words if abs(w.end - event.data["end"]) <= MATCH_S]
        if ends:
            sent = started + math.floor(ends[0] * 1000 / CHUNK_MS) * CHUNK_MS / 1000
            out.append((received - sent) * 1000)
    return out


async def _all(port: int, streams: list[Stream]) -> list[object]:
    return list(await asyncio.gather(*(
        stream_audio(port, s.audio, rate=s.sample_rate, chunk_ms=CHUNK_MS) for s in streams)))


def measure(server: Server, count: int, seconds: float) -> Level:
    streams = [command_stream(seconds, seed=100 + i) for i in range(count)]
    before, seen = server.counters(), len(server.utterances())
    cpu0, wall0 = cpu_seconds(server.proc.pid), time.monotonic()
    results = asyncio.run(_all(server.port, streams))
    cpu, wall = cpu_seconds(server.proc.pid) - cpu0, time.monotonic() - wall0
    after = server.counters()
    latencies = [ms for r, s in zip(results, streams, strict=True) for ms in _latencies(r, s)]
    ends = [u["end"] for u in server.utterances()[seen:]]
    words = [w.end for s in streams for w in s.words]
    found = sum(1 for end in words if any(abs(end - e) <= MATCH_S for e in ends))
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in ("classified", "dropped_segments", "errors")}
    segments = delta["classified"] + delta["dropped_segments"] + delta["errors"]
    return Level(count, 100 * cpu / wall / count, percentile(latencies, 50), percentile(latencies, 95),
                 segments, delta["classified"], delta["dropped_segments"], len(words), found,
                 peak_rss_mib(server.proc.pid))


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _silent(port: int, count: int, seconds: float, server: Server) -> float:
    clients = [await connect(port) for _ in range(count)]
    silence = b"\0" * (16000 * 2 * CHUNK_MS // 1000)
    from wyoming.audio import AudioChunk, AudioStart

    for c in clients:
        await c.write_event(AudioStart(rate=16000, width=2, channels=1).event())
    cpu0, start = cpu_seconds(server.proc.pid), time.monotonic()
    for i in range(int(seconds * 1000 / CHUNK_MS)):
        await asyncio.sleep(max(0.0, start + i * CHUNK_MS / 1000 - time.monotonic()))
        for c in clients:
            await c.write_event(AudioChunk(rate=16000, width=2, channels=1, audio=silence).event())
    cpu = cpu_seconds(server.proc.pid) - cpu0
    wall = time.monotonic() - start
    for c in clients:
        await c.disconnect()
    return 100 * cpu / wall


def idle_cost(server: Server, count: int, seconds: float) -> tuple[float, float]:
    """(server CPU % with no stream, extra CPU % per silent stream)."""
    cpu0, start = cpu_seconds(server.proc.pid), time.monotonic()
    time.sleep(seconds)
    base = 100 * (cpu_seconds(server.proc.pid) - cpu0) / (time.monotonic() - start)
    busy = asyncio.run(_silent(server.port, count, seconds, server))
    return base, (busy - base) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1, 4 and 8 streams for 10 s; idle: 8 for 10 s")
    parser.add_argument("--counts", help="stream counts to try, e.g. 1,8,16,32,40")
    parser.add_argument("--seconds", type=float, help="seconds each stream runs")
    parser.add_argument("--idle-streams", type=int, default=None)
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")] if args.counts else (
        [1, 4, 8] if args.quick else [1, 8, 16, 24, 32, 40, 48])
    seconds = args.seconds or (10.0 if args.quick else 30.0)
    idle_streams = args.idle_streams or (8 if args.quick else 32)
    with temp_dir("streamclf-streams-") as workdir:
        server = Server(workdir)
        try:
            asyncio.run(_wait_ready(server.port))
            levels = [measure(server, n, seconds) for n in counts]
            base, per_stream = idle_cost(server, idle_streams, seconds)
        finally:
            server.stop()
    report(levels, seconds, base, per_stream, idle_streams)


async def _wait_ready(port: int) -> None:
    client = await connect(port, timeout_s=120)
    await client.disconnect()


def report(levels: list[Level], seconds: float, base: float, per_stream: float, idle_streams: int) -> None:
    rows = [(lv.streams, f"{lv.cpu_per_stream:.1f}", f"{lv.p50_ms:.0f}", f"{lv.p95_ms:.0f}",
             f"{lv.classified}/{lv.segments}", lv.dropped, f"{lv.found}/{lv.words}", f"{lv.rss_mib:.0f}",
             "yes" if lv.held else "no") for lv in levels]
    held = [lv.streams for lv in levels if lv.held]
    emit(
        f"Concurrent real-time streams ({seconds:g} s each, default model, ONNX Runtime)",
        table(("streams", "CPU % of a core per stream", "end of speech → detection p50 ms", "p95 ms",
               "classified / segments", "dropped", "words found", "peak RSS MiB", "held"), rows),
        [f"Most streams held (every segment classified, p95 < {TARGET_P95_MS:.0f} ms): "
         f"{max(held) if held else 0} of those tried ({', '.join(str(lv.streams) for lv in levels)}).",
         f"Idle: the server alone {base:.1f} % of a core; each silent stream adds {per_stream:.2f} % "
         f"({idle_streams} streams of digital silence in {CHUNK_MS} ms chunks).",
         f"Machine: {machine_description()}"],
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
