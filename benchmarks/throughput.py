"""Throughput of ``streamclf classify`` on 30 minutes of generated speech and silence, in × real time.

    .venv/bin/python -m benchmarks.throughput [--quick] [--minutes M] [--repeats N]

The stream: spoken commands (many espeak-ng/flite voices, -32..-14 dBFS, 0.8-2.5 s gaps) in
pink noise at 25 dB SNR, one 16 kHz WAV file. Each backend runs ``python -m streamclf classify
--json FILE`` as a child process (the whole pipeline: decode, resample, VAD, segmenter, worker,
JSON). *× real time (whole run)* counts the process's start-up; *× real time (steady)*
subtracts the median wall time of the same command on a 1 s file (start-up and exit).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks.common import (
    RATE,
    WORK_DIR,
    child_env,
    cli_command,
    command_stream,
    default_model_dir,
    emit,
    onnx_copy,
    summarise,
    table,
)
from trainer.streams import write_wav


def stream_file(minutes: float) -> tuple[Path, int]:
    path = WORK_DIR / f"throughput-{minutes:g}min.wav"
    words_file = path.with_suffix(".json")
    if not (path.is_file() and words_file.is_file()):
        stream = command_stream(minutes * 60, seed=3)
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        write_wav(path, stream)
        words_file.write_text(json.dumps(len(stream.words)))
    return path, int(json.loads(words_file.read_text()))


def run_classify(args: list[str], audio: Path) -> tuple[float, int]:
    started = time.monotonic()
    done = subprocess.run(cli_command("classify", "--json", *args, str(audio)), capture_output=True,
                          env=child_env(), check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"classify {args} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    utterances = sum(1 for line in done.stdout.splitlines() if b'"utterance"' in line)
    return elapsed, utterances


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 minutes of audio, one repeat (smoke run)")
    parser.add_argument("--minutes", type=float, default=None, help="stream length (default 30)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per backend (default 3)")
    args = parser.parse_args()
    minutes = args.minutes or (2.0 if args.quick else 30.0)
    repeats = args.repeats or (1 if args.quick else 3)
    audio, word_count = stream_file(minutes)
    one_second = WORK_DIR / "one-second.wav"
    sf.write(one_second, np.zeros(RATE, np.float32), RATE)
    model_dir, model_title = default_model_dir()
    onnx_dir = onnx_copy(model_dir, "default")
    backends = {
        "torch": ["--backend", "torch", "--model", str(model_dir)],
        "torch, 1 thread": ["--model", str(model_dir), "--threads", "1"],
        "onnx fp32": ["--backend", "onnx", "--model", str(onnx_dir)],
        "onnx int8": ["--backend", "onnx", "--model", str(onnx_dir / "model.int8.onnx")],
    }
    seconds = minutes * 60
    walls: dict[str, list[float]] = {name: [] for name in backends}
    fixed: dict[str, list[float]] = {name: [] for name in backends}
    utterances: dict[str, int] = {}
    for _ in range(repeats):  # backends take turns, so background load hits them alike
        for name, flags in backends.items():
            wall, count = run_classify(flags, audio)
            walls[name].append(wall)
            utterances[name] = count
            fixed[name].append(run_classify(flags, one_second)[0])
    rows = []
    for name in backends:
        whole = summarise([seconds / w for w in walls[name]])
        start = summarise(fixed[name])
        steady = summarise([seconds / max(w - start.median, 1e-3) for w in walls[name]])
        rows.append([name, whole.show(0), steady.show(0), summarise(walls[name]).show(1), start.show(2),
                     utterances[name], len(walls[name])])
    header = ["backend", "× real time (whole run)", "× real time (steady)", "wall s", "start-up + exit s",
              "utterances", "n"]
    notes = [f"- {minutes:g} min of audio ({word_count} spoken commands); model: {model_title}; "
             "threads: backend default (2 here) unless stated."]
    title = f"Throughput of streamclf classify ({minutes:g} min of speech and silence)"
    emit(title, table(header, rows), notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
