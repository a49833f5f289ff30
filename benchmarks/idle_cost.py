"""Idle cost: CPU and wake-ups of ``streamclf listen`` on silence from the virtual microphone.

    .venv/bin/python -m benchmarks.idle_cost [--quick] [--seconds S] [--backends torch,onnx]

A private PulseAudio server (``tests/pulse.py``) with a null sink is the microphone; its monitor
delivers digital silence in real time. For each backend the daemon (``listen --source mic
--device pulse --json``) starts, says ``READY=1`` on a private NOTIFY_SOCKET, settles for 3 s, and
is then watched for S seconds (default 60):

- *CPU % of one core*: (user + system CPU seconds) / wall seconds × 100, from /proc/PID/stat;
- *wake-ups/s*: voluntary + involuntary context switches summed over every thread
  (/proc/PID/task/*/status), per second;
- per thread: the wake-ups of each named thread, to show who wakes up.

Each backend is measured ``--repeats`` times (median and range).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import default_model_dir, emit, onnx_copy, summarise, table, temp_dir
from benchmarks.daemon_run import cpu_seconds, listen, task_switches

SETTLE_S = 3.0


def thread_names(pid: int) -> dict[int, str]:
    names = {}
    for comm in Path(f"/proc/{pid}/task").glob("*/comm"):
        try:
            names[int(comm.parent.name)] = comm.read_text().strip()
        except OSError:
            continue
    return names


def watch(pid: int, seconds: float) -> tuple[float, float, dict[str, float]]:
    """CPU % of one core, wake-ups per second, and wake-ups per second by thread name."""
    cpu0, sw0, t0 = cpu_seconds(pid), task_switches(pid), time.monotonic()
    time.sleep(seconds)
    cpu1, sw1, t1 = cpu_seconds(pid), task_switches(pid), time.monotonic()
    names = thread_names(pid)
    wall = t1 - t0
    per_thread: dict[str, float] = {}
    total = 0
    for tid, count in sw1.items():
        delta = count - sw0.get(tid, 0)
        total += delta
        name = names.get(tid, str(tid))
        per_thread[name] = per_thread.get(name, 0.0) + delta / wall
    return (cpu1 - cpu0) / wall * 100, total / wall, per_thread


def measure(
    backend_args: list[str], env: dict[str, str], seconds: float, work: Path
) -> tuple[float, float, dict[str, float]]:
    args = ["--source", "mic", "--device", "pulse", *backend_args]
    with listen(args, work, env) as child:
        if not child.notify.ready.wait(120):
            raise RuntimeError(f"no READY=1 within 120 s: {child.stderr_tail()}")
        time.sleep(SETTLE_S)
        result = watch(child.process.pid, seconds)
        child.stop()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s per backend, once (smoke run)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds watched (default 60)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per backend (default 1)")
    parser.add_argument("--backends", default="torch,onnx")
    args = parser.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    repeats = args.repeats or 1
    from tests.pulse import PulseServer, PulseUnavailable, alsa_pulse_plugin_present

    model_dir, model_title = default_model_dir()
    choices = {
        "torch": ["--backend", "torch", "--model", str(model_dir)],
        "onnx": ["--backend", "onnx", "--model", str(onnx_copy(model_dir, "default"))],
    }
    server = PulseServer(16000, 1)
    rows = []
    busiest: dict[str, dict[str, float]] = {}
    try:
        if not alsa_pulse_plugin_present():
            raise PulseUnavailable("ALSA's pulse plugin is missing (libasound2-plugins)")
        server.start()
        with temp_dir("streamclf-idle-") as work:
            for name in args.backends.split(","):
                cpu, wakeups = [], []
                for _ in range(repeats):
                    c, w, per_thread = measure(choices[name], server.env, seconds, work)
                    cpu.append(c)
                    wakeups.append(w)
                    busiest[name] = per_thread
                rows.append([name, summarise(cpu).show(2), summarise(wakeups).show(0), len(cpu)])
    except PulseUnavailable as exc:
        emit("Idle cost (silence from the virtual microphone)", f"not measured: {exc}")
        return 0
    finally:
        server.stop()
    header = ["backend", "CPU % of one core", "wake-ups / s", "n"]
    notes = [f"- {seconds:g} s of silence per run after READY + {SETTLE_S:g} s; model: {model_title}."]
    for name, per_thread in busiest.items():
        top = sorted(per_thread.items(), key=lambda kv: -kv[1])[:6]
        notes.append(f"- {name}: wake-ups/s by thread: " + ", ".join(f"{k} {v:.0f}" for k, v in top))
    emit("Idle cost (silence from the virtual microphone)", table(header, rows), notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
