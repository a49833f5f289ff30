"""Soak benchmark: hours of speech and silence through the full `listen` pipeline, as fast as possible.

    nice .venv/bin/python -m benchmarks.soak [--hours 2] [--model DIR] [--seed N]

Builds (once, cached under /tmp) a WAV of command words from several TTS voices laid out with
0.4-6 s of silence and a faint noise bed, then runs

1. ``streamclf listen --source WAV --speed 0 --json`` in a subprocess, sampling its RSS every
   second, and
2. ``streamclf classify --json WAV`` on the same file,

and checks: RSS growth after the warm-up (the first 10 % of the utterances) is at most 10 MB; both
find the same number of utterances at the same sample-exact times; the final status event's
sample count equals the file's length exactly; the last utterance ends inside the file.
Prints one Markdown table; exits 1 when a check fails. Not part of `make test` (`make soak`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf

from trainer.noise import make_noise, set_level_dbfs
from trainer.streams import COMMAND_WORDS
from trainer.tts import TtsError, Voice, synthesize

RATE = 16000
CHUNK_S = 60.0
"""The WAV is written a minute at a time: memory stays small however long the soak."""
RSS_LIMIT_MB = 10.0
WARM_UP_SHARE = 0.1
"""The warm-up is the first 10 % of the utterances (model and allocators settle). Before the CLI
capped oneDNN's per-shape primitive cache, RSS crept up ~20 MB over the run (segments of every
length each compiled a primitive); now it stays within ~1 MB."""
VOICES = (
    Voice("espeak-ng", "en-us", 160, 50),
    Voice("espeak-ng", "en", 190, 35),
    Voice("espeak-ng", "en-gb", 140, 70),
    Voice("flite", "slt", 170, 50),
)


def word_pool(seed: int) -> list[np.ndarray]:
    pool = []
    for voice in VOICES:
        for word in COMMAND_WORDS[: 12 if voice.engine == "flite" else 24]:
            try:
                pool.append(synthesize(word, voice, RATE))
            except TtsError:
                continue
    if not pool:
        raise SystemExit("soak: no TTS engine produced speech (install espeak-ng)")
    return pool


def build_soak_wav(path: Path, hours: float, seed: int) -> None:
    """Words and silence, written chunk by chunk; the same seed gives the same file."""
    rng = np.random.default_rng(seed)
    pool = word_pool(seed)
    chunk = int(CHUNK_S * RATE)
    total = int(hours * 3600 * RATE)
    tmp = path.with_suffix(".partial.wav")
    with sf.SoundFile(tmp, "w", samplerate=RATE, channels=1, subtype="PCM_16") as out:
        written = 0
        pos = 0  # where the next word starts, relative to this chunk
        while written < total:
            n = min(chunk, total - written)
            block = set_level_dbfs(make_noise("pink", n, rng, RATE), -65.0).astype(np.float32)
            while pos < n:
                word = pool[int(rng.integers(len(pool)))]
                level = 10 ** (rng.uniform(-30, -12) / 20) / max(1e-6, float(np.sqrt(np.mean(word**2))))
                if pos + len(word) > n:
                    break  # words never straddle chunks: start it in the next one
                block[pos : pos + len(word)] += word * np.float32(level)
                pos += len(word) + int(rng.uniform(0.4, 6.0) * RATE)
            pos = max(0, pos - n)
            out.write(np.clip(block, -1.0, 1.0))
            written += n
    tmp.rename(path)


def cached_wav(hours: float, seed: int) -> Path:
    key = hashlib.sha1(f"{hours}:{seed}:{VOICES}:v1".encode()).hexdigest()[:12]
    path = Path("/tmp") / f"streamclf-soak-{key}.wav"
    if not path.exists():
        started = time.monotonic()
        print(f"soak: building {hours:g} h of audio at {path} …", file=sys.stderr)
        build_soak_wav(path, hours, seed)
        print(f"soak: built in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return path


@dataclass
class ListenRun:
    utterances: list[tuple[float, float]] = field(default_factory=list)
    last_status: dict = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    rss: list[tuple[int, int]] = field(default_factory=list)
    """(utterances published so far, RSS in bytes), sampled every second."""
    wall_s: float = 0.0
    returncode: int = 0


def run_listen(wav: Path, model_args: list[str]) -> ListenRun:
    result = ListenRun()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamclf",
            "listen",
            "--source",
            str(wav),
            "--speed",
            "0",
            "--json",
            *model_args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    started = time.monotonic()
    done = threading.Event()

    def sample_rss() -> None:
        process = psutil.Process(proc.pid)
        while not done.wait(1.0):
            try:
                result.rss.append((len(result.utterances), process.memory_info().rss))
            except psutil.NoSuchProcess:
                return

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event["type"] == "utterance":
            result.utterances.append((event["start"], event["end"]))
        elif event["type"] == "status":
            result.last_status = event
        elif event["type"] == "error":
            result.errors.append(event)
    result.returncode = proc.wait()
    done.set()
    result.wall_s = time.monotonic() - started
    return result


def run_classify(wav: Path, model_args: list[str]) -> tuple[list[tuple[float, float]], float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "streamclf", "classify", "--json", *model_args, str(wav)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"soak: classify failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    return [(e["start"], e["end"]) for e in events if e["type"] == "utterance"], time.monotonic() - started


def rss_growth_mb(run: ListenRun) -> tuple[float, float, float]:
    """(RSS at the end of the warm-up, peak after it, growth) in MB."""
    warm = WARM_UP_SHARE * len(run.utterances)
    after = [rss for done, rss in run.rss if done >= warm]
    if len(after) < 2:
        return 0.0, 0.0, 0.0
    base, peak = after[0] / 2**20, max(after) / 2**20
    return base, peak, peak - base


def rss_trace(run: ListenRun) -> str:
    total = max(1, len(run.utterances))
    points = []
    for share in (0.1, 0.3, 0.5, 0.7, 0.9, 1.0):
        reached = [rss for done, rss in run.rss if done >= share * total]
        points.append(f"{reached[0] / 2**20:.0f}" if reached else "-")
    return " / ".join(points)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", help="model directory (default: the bundled commands model)")
    args = parser.parse_args(argv)
    model_args = ["--model", args.model] if args.model else []

    wav = cached_wav(args.hours, args.seed)
    frames = sf.info(str(wav)).frames
    listen = run_listen(wav, model_args)
    classified, classify_s = run_classify(wav, model_args)
    base, peak, growth = rss_growth_mb(listen)
    duration = frames / RATE
    counters = listen.last_status.get("counters", {})

    checks = {
        "listen exited 0": listen.returncode == 0,
        f"RSS growth after warm-up ≤ {RSS_LIMIT_MB:g} MB": growth <= RSS_LIMIT_MB,
        "utterances: listen == classify": len(listen.utterances) == len(classified),
        "utterance times: listen == classify": listen.utterances == classified,
        "final status samples == file samples": counters.get("samples") == frames,
        "last utterance ends inside the file": not listen.utterances or listen.utterances[-1][1] <= duration,
        "nothing dropped": counters.get("dropped_segments", 0) == 0
        and counters.get("dropped_events", 0) == 0,
        "no error events": not listen.errors,
    }
    print(f"| soak ({args.hours:g} h, {wav.name}) | value |")
    print("|---|---|")
    print(f"| audio | {duration:.0f} s, {frames} samples |")
    print(
        f"| listen wall time | {listen.wall_s:.0f} s ({duration / max(listen.wall_s, 1e-9):.0f}× real time) |"
    )
    print(f"| classify wall time | {classify_s:.0f} s |")
    print(f"| utterances listen / classify | {len(listen.utterances)} / {len(classified)} |")
    print(f"| final status samples | {counters.get('samples')} |")
    print(f"| RSS after warm-up / peak / growth | {base:.1f} / {peak:.1f} / {growth:+.1f} MB |")
    print(
        f"| segments / classified / dropped / errors | {counters.get('segments')} / "
        f"{counters.get('classified')} / {counters.get('dropped_segments')} / {counters.get('errors')} |"
    )
    print(f"| RSS at 10/30/50/70/90/100 % of utterances | {rss_trace(listen)} MB |")
    for name, ok in checks.items():
        print(f"| {name} | {'ok' if ok else 'FAILED'} |")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
