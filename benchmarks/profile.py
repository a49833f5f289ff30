"""Where the per-segment time goes: pyinstrument profiles of each inference path.

    .venv/bin/python -m benchmarks.profile [--quick] [--model default|w2v-base] [--seconds S]

Profiles N classifications of one speech segment (default 1 s, 1 thread) through the torch
backend, the transformers pipeline and the ONNX backend, and prints the top of each call tree
(functions taking at least 5 % of the time). Full trees go to ``build/bench/profiles/``.
"""

from __future__ import annotations

import argparse
import logging
import warnings

from benchmarks.common import WORK_DIR, emit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    parser.add_argument("--model", default="default", choices=("default", "w2v-base"))
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    try:
        from pyinstrument import Profiler
    except ImportError:
        emit("Profiles", "not measured: pyinstrument is not installed (pip install -e '.[dev]')")
        return 0
    from benchmarks.inference import models, paths_for, speech_segment

    model = models([args.model])[0]
    repeats = (20 if args.quick else 200) if model.key == "default" else (3 if args.quick else 15)
    paths = paths_for(model, args.threads)
    audio = speech_segment(args.seconds)
    out_dir = WORK_DIR / "profiles"
    out_dir.mkdir(parents=True, exist_ok=True)
    blocks = []
    for name, run in paths.items():
        for _ in range(3):
            run(audio)
        profiler = Profiler(interval=0.0005)
        profiler.start()
        for _ in range(repeats):
            run(audio)
        profiler.stop()
        session = profiler.last_session
        per_call_ms = session.duration / repeats * 1000 if session is not None else float("nan")
        text = profiler.output_text(unicode=True, color=False, show_all=False)
        slug = name.replace(" ", "-")
        (out_dir / f"{model.key}-{slug}.txt").write_text(text, encoding="utf-8")
        lines = [line for line in text.splitlines() if line.strip()]
        start = next((i for i, line in enumerate(lines) if line.startswith("Profile at")), -1) + 1
        top = lines[start : start + 36]
        blocks.append(f"**{name}** ({per_call_ms:.2f} ms per call under the profiler)\n\n```\n"
                      + "\n".join(top) + "\n```")
    intro = (f"{model.key}, {args.seconds:g} s segment, {args.threads} thread(s), {repeats} calls per path; "
             f"full trees in {out_dir}.\n")
    emit("Profiles of the per-segment paths (pyinstrument)", intro + "\n" + "\n\n".join(blocks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
