"""Run every benchmark and write one Markdown report with the machine description.

    .venv/bin/python -m benchmarks.run_all [--out benchmarks/RESULTS.md] [--quick] [--only a,b]

Each benchmark runs as its own child process (``python -m benchmarks.NAME``), one after the
other, so none inherits another's threads, caches or memory; their stdout (a Markdown section)
goes into the report and their stderr into ``build/bench/logs/NAME.log``. ``make bench`` calls
this; the full run takes about 15-20 minutes on a 2-core machine, ``--quick`` about 4.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import REPO, WORK_DIR, child_env, machine_description

BENCHMARKS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("inference", "3. per-segment inference vs the transformers pipeline", ()),
    ("latency", "1. processing latency", ()),
    ("end_of_speech", "2. end-of-speech latency", ()),
    ("throughput", "4. throughput of classify", ()),
    ("idle_cost", "5. idle cost", ()),
    ("startup", "6. memory and start-up", ()),
    ("int8_accuracy", "int8 accuracy change", ()),
    ("profile", "profiles of the per-segment paths", ()),
    ("segmentation", "segmentation quality (benchmarks/segmentation.py, its quick mode)", ("--quick",)),
    ("streams", "7. concurrent Wyoming streams of `serve` and the idle cost per stream", ()),
)
"""(module, what it measures, arguments always passed)."""
TIME_LIMIT_S = 15 * 60
"""Most seconds one benchmark may take before it is stopped."""


def run_one(name: str, quick: bool, fixed: tuple[str, ...], logs: Path) -> tuple[str, float, bool]:
    flags = list(fixed) + (["--quick"] if quick and "--quick" not in fixed else [])
    command = [sys.executable, "-m", f"benchmarks.{name}", *flags]
    log_path = logs / f"{name}.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        try:
            done = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, stderr=log, env=child_env(),
                                  timeout=TIME_LIMIT_S, check=False)
        except subprocess.TimeoutExpired:
            return f"### {name}\n\nstopped after {TIME_LIMIT_S} s (see {log_path}).\n", TIME_LIMIT_S, False
    elapsed = time.monotonic() - started
    output = done.stdout.decode(errors="replace").strip()
    if not output.startswith("#"):
        output = f"### {name}\n\n{output}"
    if done.returncode != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        output += f"\n\n**{name} failed (exit {done.returncode})**: " + " / ".join(tail)
    return output + "\n", elapsed, done.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "RESULTS.md")
    parser.add_argument("--quick", action="store_true", help="every benchmark in its --quick mode")
    parser.add_argument("--only", default=None, help="comma-separated benchmark names")
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    logs = WORK_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    machine = machine_description()
    sections = []
    failures = 0
    for name, title, fixed in BENCHMARKS:
        if wanted is not None and name not in wanted:
            continue
        if not (REPO / "benchmarks" / f"{name}.py").is_file():
            continue
        print(f"benchmark {name} ({title}) …", file=sys.stderr, flush=True)
        output, elapsed, ok = run_one(name, args.quick, fixed, logs)
        failures += not ok
        print(f"  {elapsed:.0f} s{'' if ok else ' FAILED'}", file=sys.stderr, flush=True)
        sections.append(output + f"\n_{title}: {elapsed:.0f} s_\n")
    total = time.monotonic() - started
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        "# streamclf benchmark results\n\n"
        f"{stamp}, {'quick smoke run' if args.quick else 'full run'} of `python -m benchmarks.run_all` "
        f"({total / 60:.1f} min).\n\n**Machine**: {machine}\n\n"
        "Figures: median (p25–p75) unless a column says otherwise; ratios compare figures measured in "
        "the same run. Each script documents its method in its docstring.\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(header + "\n" + "\n".join(sections), encoding="utf-8")
    print(f"wrote {args.out} in {total / 60:.1f} min", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
