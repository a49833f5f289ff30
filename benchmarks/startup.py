"""Memory and start-up: peak RSS and time from launch to ``READY=1``, per backend.

    .venv/bin/python -m benchmarks.startup [--quick] [--repeats N]

Each run launches ``python -m streamclf listen --json --source FILE --speed 1`` with a private
``NOTIFY_SOCKET``; the daemon sends ``READY=1`` once the model is loaded and warmed up and audio
flows. *Time to READY* is from ``Popen`` to the datagram's arrival (interpreter start, imports,
model load, warm-up, source open). The file (3 s, two spoken commands) plays to its end, so the
process also classifies speech; *peak RSS* is the child's ``ru_maxrss`` from ``wait4`` once it
exits. Backends take turns within each repeat.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.common import (
    RATE,
    command_clips,
    default_model_dir,
    emit,
    onnx_copy,
    summarise,
    table,
    temp_dir,
)
from benchmarks.daemon_run import listen
from benchmarks.inference import wav2vec2_base_dir


def speech_file(path: Path) -> Path:
    import soundfile as sf

    clips = command_clips(48)
    gap = np.zeros(RATE // 2, np.float32)
    audio = np.concatenate([gap, clips[0][1], gap, clips[1][1], gap])
    sf.write(path, np.pad(audio, (0, max(0, 3 * RATE - len(audio)))), RATE)
    return path


def one_run(flags: list[str], audio: Path, work: Path) -> tuple[float, float]:
    with listen(["--source", str(audio), "--speed", "1", *flags], work) as child:
        code = child.reap(timeout=180)
    if code != 0 or child.notify.ready_at is None:
        raise RuntimeError(f"listen {flags} exited {code} (READY seen: {child.notify.ready_at is not None}): "
                           f"{child.stderr_tail()}")
    return child.notify.ready_at - child.started_at, (child.peak_rss_kib or 0) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run per backend, default model only")
    parser.add_argument("--repeats", type=int, default=None, help="runs per backend (default 5)")
    parser.add_argument("--no-w2v", action="store_true", help="skip the wav2vec2-base-sized model")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 4)
    model_dir, model_title = default_model_dir()
    onnx_dir = onnx_copy(model_dir, "default")
    backends = {
        "default / torch": ["--model", str(model_dir)],
        "default / onnx fp32": ["--backend", "onnx", "--model", str(onnx_dir)],
        "default / onnx int8": ["--backend", "onnx", "--model", str(onnx_dir / "model.int8.onnx")],
    }
    if not (args.quick or args.no_w2v):
        w2v = wav2vec2_base_dir()
        w2v_onnx = onnx_copy(w2v, "w2v-base")
        backends["w2v-base / torch"] = ["--model", str(w2v)]
        backends["w2v-base / onnx fp32"] = ["--backend", "onnx", "--model", str(w2v_onnx)]
        backends["w2v-base / onnx int8"] = ["--backend", "onnx", "--model", str(w2v_onnx / "model.int8.onnx")]
    ready: dict[str, list[float]] = {name: [] for name in backends}
    rss: dict[str, list[float]] = {name: [] for name in backends}
    with temp_dir("streamclf-startup-") as work:
        audio = speech_file(work / "two-commands.wav")
        for _ in range(repeats):
            for name, flags in backends.items():
                seconds, peak = one_run(flags, audio, work)
                ready[name].append(seconds)
                rss[name].append(peak)
    rows = [[name, summarise(ready[name]).show(2), summarise(rss[name]).show(0), len(ready[name])]
            for name in backends]
    base_ready = summarise(ready["default / torch"]).median
    base_rss = summarise(rss["default / torch"]).median
    for row, name in zip(rows, backends, strict=True):
        row.insert(3, f"{summarise(ready[name]).median / base_ready:.2f} / "
                      f"{summarise(rss[name]).median / base_rss:.2f}")
    header = ["model / backend", "launch → READY s", "peak RSS MiB", "ratio to default/torch (time / RSS)",
              "n"]
    notes = [f"- default model: {model_title}; threads: backend default."]
    emit("Memory and start-up per backend", table(header, rows), notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
