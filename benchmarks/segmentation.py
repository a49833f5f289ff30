"""Segmentation benchmark: recall, false segments and boundary errors per backend and condition.

    .venv/bin/python -m benchmarks.segmentation [--quick] [--seed N | --seeds 1234,1-24] [--configs a,b]
    .venv/bin/python -m benchmarks.segmentation --cpu | --profile

Generates spoken command words (espeak-ng and flite, many voices, rates and pitches, 150-800 ms),
lays them out with 0.3-1.5 s gaps at levels from -50 to -6 dBFS, adds noise at 10 dB SNR and
runs every segmenter configuration over the same streams. Noise-only audio of each kind gives
the false segments per minute; noise that starts after 2 s of digital silence or of a quiet room
gives the false segments per noise start. Other conditions on request (``--conditions``): quiet
talkers over a DC offset or mains hum, reverberant rooms, and spoken phrases of several words.
Prints one Markdown table. One seed's 100 words per condition and 2 minutes of each noise make
a noisy sample (a p95 is its fifth-worst word); ``--seeds`` pools the figures over many seeds.

Definitions: a word is *found* when exactly one segment overlaps it and that segment overlaps
no other word. *onset* = segment start − word start, *end* = segment end − word end (signed,
seconds; p50 and p95 of the absolute value in ms). *declared* = stream position when the
segmenter emitted the segment − word end (how long after speech stopped the end was known).
Word truth is the TTS output trimmed at 40 dB below its loudest 10 ms frame (after flite's leading
pause, cut at the time flite gives for it), so at 10 dB SNR its soft edges lie under the noise;
noise-only audio is four pieces per kind at -55..-20 dBFS, each run from a cold start.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import pstats
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import webrtcvad

from streamclf.config import VadSettings
from streamclf.segment import Segment, make_segmenter
from trainer.augment import reverberate
from trainer.noise import make_noise, set_level_dbfs
from trainer.streams import COMMAND_WORDS, Stream, build_stream, speaking_voices
from trainer.tts import TtsError, synthesize

RATE = 16000
NOISE_ONLY_S = 120
"""Noise-only audio per kind, in seconds: four pieces, each from a cold start. The same in quick mode
(it is cheap to run): shorter pieces would make cold starts weigh more in the false segments per minute."""
BLOCK = 160  # 10 ms blocks: the emission position is known to 10 ms
NOISES = ("white", "pink", "babble", "clatter")
INTERFERENCE = ("offset", "hum")
"""Quiet talkers (-50..-40 dBFS) on a sound card with a -40 dBFS DC offset, or with 50 Hz mains hum at
-40 dBFS (run with ``--conditions offset,hum``)."""
PHRASES = ("phrases",)
"""Spoken commands of two to six words (SPOKEN_PHRASES) at -50..-6 dBFS, no noise (run with
``--conditions phrases``): a phrase is found when exactly one segment covers it; a pause inside it
(a long "s" between two words, a stop's closure) must not cut it in two."""
SPOKEN_PHRASES = (
    "turn on the lights",
    "lights off please",
    "stop the music",
    "set a timer for six minutes",
    "what's the weather like",
    "next track",
    "skip this song",
    "it's too hot in here",
    "lock the front door",
    "what time is it",
    "switch off the kitchen lights",
    "pause it",
)
ROOMS = ("reverb",)
"""Talkers at -40..-10 dBFS in a reverberant room, no noise: RT60 0.3-0.8 s and a direct-to-reverberant
ratio of 0..+8 dB per stream (run with ``--conditions reverb``). Word truth is the dry word."""

DEFAULT_CONDITIONS = ("clean", "quiet", *NOISES)
"""What a run without ``--conditions`` measures."""
EVERY_CONDITION = (*DEFAULT_CONDITIONS, *INTERFERENCE, *ROOMS, *PHRASES)
"""Every condition, in order: the order also fixes each condition's random generator (see ``generate``)."""


@dataclass(frozen=True)
class Found:
    start: int
    end: int
    emitted_at: int


Runner = Callable[[np.ndarray], list[Found]]


def run_segmenter(settings: VadSettings) -> Runner:
    def run(audio: np.ndarray) -> list[Found]:
        seg = make_segmenter(settings, RATE)
        out: list[Found] = []
        for pos in range(0, len(audio), BLOCK):
            for ev in seg.push(audio[pos : pos + BLOCK]):
                if isinstance(ev, Segment):
                    out.append(Found(ev.start_sample, ev.end_sample, seg.samples_seen))
        out += [
            Found(e.start_sample, e.end_sample, seg.samples_seen)
            for e in seg.flush()
            if isinstance(e, Segment)
        ]
        return out

    return run


def run_classic_collector(aggressiveness: int = 2) -> Runner:
    """py-webrtcvad's example collector (our own rewrite): 30 ms frames, a 300 ms ring,
    open at > 90% voiced, close at > 90% unvoiced; the segment spans the whole ring."""

    def run(audio: np.ndarray) -> list[Found]:
        vad = webrtcvad.Vad(aggressiveness)
        frame = RATE * 30 // 1000
        ring: list[tuple[int, bool]] = []
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        out: list[Found] = []
        triggered = False
        start = 0
        for pos in range(0, len(pcm) - frame + 1, frame):
            speech = vad.is_speech(pcm[pos : pos + frame].tobytes(), RATE)
            ring = [*ring, (pos, speech)][-10:]
            if not triggered:
                if len(ring) == 10 and sum(s for _, s in ring) > 9:
                    triggered, start, ring = True, ring[0][0], []
            elif len(ring) == 10 and sum(not s for _, s in ring) > 9:
                out.append(Found(start, pos + frame, pos + frame))
                triggered, ring = False, []
        if triggered:
            out.append(Found(start, len(pcm), len(pcm)))
        return out

    return run


def run_vad_iterator(threshold: float = 0.5, min_silence_ms: int = 100, pad_ms: int = 30) -> Runner:
    """silero-vad's VADIterator rule (our own rewrite) on the bundled model, never reset: open at
    p >= threshold, close after min_silence_ms below threshold - 0.15, pad both ends by pad_ms."""

    def run(audio: np.ndarray) -> list[Found]:
        from streamclf.vad.silero import SileroDetector

        detector = SileroDetector(RATE, threshold, reset_after_s=600.0)
        frame = detector.frame_samples
        pad = RATE * pad_ms // 1000
        out: list[Found] = []
        start: int | None = None
        quiet_since: int | None = None
        for pos in range(0, len(audio) - frame + 1, frame):
            detector.is_speech(audio[pos : pos + frame])
            p = detector.probability
            end_of_frame = pos + frame
            if p >= threshold:
                quiet_since = None
                if start is None:
                    start = max(pos - pad, 0)
            elif start is not None and p < threshold - 0.15:
                quiet_since = pos if quiet_since is None else quiet_since
                if end_of_frame - quiet_since >= RATE * min_silence_ms // 1000:
                    out.append(Found(start, min(quiet_since + pad, len(audio)), end_of_frame))
                    start, quiet_since = None, None
        if start is not None:
            out.append(Found(start, len(audio), len(audio)))
        return out

    return run


def configurations(names: Iterable[str] | None) -> dict[str, Runner]:
    base = VadSettings()
    every = {
        "classic 300ms/90% (baseline)": run_classic_collector(2),
        "silero VADIterator (baseline)": run_vad_iterator(),
        "webrtc default": run_segmenter(base),
        "webrtc no murmur check": run_segmenter(dataclasses.replace(base, murmur_check=False)),
        "webrtc aggr=3": run_segmenter(dataclasses.replace(base, aggressiveness=3)),
        "webrtc no AGC": run_segmenter(dataclasses.replace(base, agc=False)),
        "webrtc hangover=120ms": run_segmenter(dataclasses.replace(base, hangover_ms=120)),
        "webrtc aggr=0": run_segmenter(dataclasses.replace(base, aggressiveness=0)),
        "webrtc preroll/tail=0ms": run_segmenter(dataclasses.replace(base, preroll_ms=0, tail_ms=0)),
        "webrtc pad=100ms": run_segmenter(dataclasses.replace(base, preroll_ms=100, tail_ms=100)),
        "silero": run_segmenter(dataclasses.replace(base, backend="silero")),
    }
    if names is None:
        return every
    wanted = list(names)
    return {k: v for k, v in every.items() if any(w in k for w in wanted)}


ONSET_BEFORE = ("digital silence", "quiet room", "quiet room", "quiet room")
"""What comes before the noise in each noise-start piece."""


def noise_onset(kind: str, rng: np.random.Generator, before: str) -> np.ndarray:
    """2 s of digital silence or of a quiet room (-70 dBFS), then 6 s of ``kind`` at -45..-25 dBFS.

    Noise that starts mid-stream (a fan, a tap, a television switched on) is first heard as a
    sound standing out of the quiet; every segment found in it is false.
    """
    quiet = np.zeros(2 * RATE, dtype=np.float32)
    if before == "quiet room":
        quiet = set_level_dbfs(make_noise("pink", 2 * RATE, rng, RATE), -70.0)
    noise = set_level_dbfs(make_noise(kind, 6 * RATE, rng, RATE), float(rng.uniform(-45, -25)))
    return np.concatenate([quiet, noise]).astype(np.float32)


def spoken_pool(
    rng: np.random.Generator,
    count: int,
    texts: tuple[str, ...] = COMMAND_WORDS,
    length_s: tuple[float, float] = (0.15, 0.8),
) -> list[tuple[str, np.ndarray]]:
    """``count`` of ``texts`` spoken by many voices, each ``length_s`` long (the default: words of
    150-800 ms)."""
    voices = speaking_voices(rng, max(8, count // 3))
    pool: list[tuple[str, np.ndarray]] = []
    attempts = 0
    while len(pool) < count and attempts < count * 4:
        attempts += 1
        text = texts[int(rng.integers(len(texts)))]
        voice = voices[int(rng.integers(len(voices)))]
        try:
            audio = synthesize(text, voice, RATE)
        except TtsError:
            continue
        if length_s[0] <= len(audio) / RATE <= length_s[1]:
            pool.append((text, audio))
    return pool


def make_streams(rng: np.random.Generator, condition: str, count: int, pool: list) -> list[Stream]:
    streams = []
    for _ in range(count):
        picks = [pool[int(i)] for i in rng.integers(len(pool), size=10)]
        gaps = rng.uniform(0.3, 1.5, size=9)
        if condition in ("clean", *PHRASES):
            levels: float | list[float] = list(rng.uniform(-50, -6, size=10))
        elif condition in ROOMS:
            levels = list(rng.uniform(-40, -10, size=10))
        elif condition in ("quiet", *INTERFERENCE):
            levels = list(rng.uniform(-50, -40, size=10))
        else:
            levels = float(rng.uniform(-45, -10))
        noise = condition if condition in NOISES else None
        streams.append(
            build_stream(
                [a for _, a in picks],
                [t for t, _ in picks],
                list(gaps),
                rng,
                level_dbfs=levels,
                noise=noise,
                snr_db=10.0,
                lead_s=1.0,
            )
        )
        if condition in INTERFERENCE:
            stream = streams[-1]
            t = np.arange(len(stream.audio)) / RATE
            added = (
                np.full(len(t), 0.01)
                if condition == "offset"
                else 0.01 * np.sqrt(2) * np.sin(2 * np.pi * 50 * t)
            )
            streams[-1] = dataclasses.replace(stream, audio=(stream.audio + added).astype(np.float32))
        if condition in ROOMS:
            stream = streams[-1]
            rt60, drr = float(rng.uniform(0.3, 0.8)), float(rng.uniform(0.0, 8.0))
            streams[-1] = dataclasses.replace(stream, audio=reverberate(stream.audio, RATE, rng, rt60, drr))
    return streams


@dataclass
class Tally:
    words: int = 0
    found: int = 0
    extra: int = 0
    onset: list[float] = dataclasses.field(default_factory=list)
    end: list[float] = dataclasses.field(default_factory=list)
    declared: list[float] = dataclasses.field(default_factory=list)
    noise_segments: int = 0
    noise_minutes: float = 0.0
    start_segments: int = 0
    noise_starts: int = 0

    def add(self, other: Tally) -> None:
        """Pool ``other`` (the same configuration and condition, another seed) into this one."""
        for f in dataclasses.fields(self):
            mine = getattr(self, f.name)
            if isinstance(mine, list):
                mine.extend(getattr(other, f.name))
            else:
                setattr(self, f.name, mine + getattr(other, f.name))


def score(stream: Stream, found: list[Found], tally: Tally) -> None:
    words = [(round(w.start * RATE), round(w.end * RATE)) for w in stream.words]
    tally.words += len(words)
    overlaps = [[i for i, (ws, we) in enumerate(words) if f.start < we and f.end > ws] for f in found]
    tally.extra += sum(1 for o in overlaps if not o)
    for i, (ws, we) in enumerate(words):
        hits = [f for f, o in zip(found, overlaps, strict=True) if i in o]
        if len(hits) == 1 and overlaps[found.index(hits[0])] == [i]:
            tally.found += 1
            tally.onset.append((hits[0].start - ws) / RATE)
            tally.end.append((hits[0].end - we) / RATE)
            tally.declared.append((hits[0].emitted_at - we) / RATE)


def idle_cpu() -> None:
    """CPU time per backend for 60 s of silence and of background noise, fed in 30 ms blocks (over
    babble, the webrtc backend also runs the murmur check's silero-vad)."""
    rng = np.random.default_rng(0)
    inputs = {
        "digital silence": np.zeros(60 * RATE, np.float32),
        "room noise -60 dBFS": set_level_dbfs(make_noise("pink", 60 * RATE, rng, RATE), -60.0),
        "clatter -35 dBFS": set_level_dbfs(make_noise("clatter", 60 * RATE, rng, RATE), -35.0),
        "babble -35 dBFS": set_level_dbfs(make_noise("babble", 60 * RATE, rng, RATE), -35.0),
    }
    print("| backend | input (60 s) | CPU s | % of one core |")
    print("|---|---|---|---|")
    for backend in ("webrtc", "silero"):
        for name, audio in inputs.items():
            seg = make_segmenter(VadSettings(backend=backend), RATE)
            began = time.process_time()
            for pos in range(0, len(audio), 480):
                seg.push(audio[pos : pos + 480])
            used = time.process_time() - began
            print(f"| {backend} | {name} | {used:.3f} | {used / 60 * 100:.2f} |")


def module_times(stats: pstats.Stats) -> dict[str, float]:
    """Seconds spent in each project module, its calls into libraries included and its calls into
    other project modules left out (a module's own cost, wherever numpy does the work)."""
    def project(filename: str) -> str | None:
        path = filename.replace("\\", "/")
        return path[path.rindex("streamclf/") :] if "streamclf/" in path else None

    table = stats.stats  # type: ignore[attr-defined]
    own: dict[str, float] = {}
    for (filename, _, _), (_, _, _, cumulative, callers) in table.items():
        module = project(filename)
        if module is not None:
            own[module] = own.get(module, 0.0) + cumulative
        for (caller_file, _, _), (_, _, _, caller_cumulative) in callers.items():
            caller = project(caller_file)
            if module is not None and caller is not None:
                own[caller] = own.get(caller, 0.0) - caller_cumulative
    return own


def profile_modules() -> None:
    """Time per frame of each segmenter module ("webrtc default") over 60 s of each idle input of
    ``--cpu`` and one quick seed's word streams (cProfile adds its own overhead: compare modules and
    runs, not these figures with ``--cpu``)."""
    rng = np.random.default_rng(0)
    audio = [
        np.zeros(60 * RATE, np.float32),
        set_level_dbfs(make_noise("pink", 60 * RATE, rng, RATE), -60.0),
        set_level_dbfs(make_noise("clatter", 60 * RATE, rng, RATE), -35.0),
        set_level_dbfs(make_noise("babble", 60 * RATE, rng, RATE), -35.0),
    ]
    inputs = generate(1234, list(DEFAULT_CONDITIONS), quick=True)
    audio += [stream.audio for streams in inputs.streams.values() for stream in streams]
    settings = VadSettings()
    profiler = cProfile.Profile()
    frames = 0
    for piece in audio:
        seg = make_segmenter(settings, RATE)
        profiler.enable()
        for pos in range(0, len(piece), 480):
            seg.push(piece[pos : pos + 480])
        profiler.disable()
        frames += len(piece) // (RATE * settings.frame_ms // 1000)
    times = module_times(pstats.Stats(profiler))
    total = sum(times.values())
    print(f"<!-- {frames} frames of {settings.frame_ms} ms, {sum(map(len, audio)) / RATE / 60:.1f} min -->")
    print("| module | µs per frame | share |")
    print("|---|---|---|")
    for module, seconds in sorted(times.items(), key=lambda item: -item[1]):
        if seconds > 0.0005 * total:
            print(f"| `{module}` | {seconds / frames * 1e6:.1f} | {seconds / total:.0%} |")
    print(f"| all | {total / frames * 1e6:.1f} | 100% |")


def pct(values: list[float], q: float) -> str:
    return f"{np.percentile(np.abs(values), q) * 1000:.0f}" if values else "–"


def parse_seeds(text: str) -> list[int]:
    """``--seeds``: comma-separated seeds and ranges ("1234,1-8")."""
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a seed or a range of seeds: {part!r}") from None
        seeds.extend(range(first, last + 1))
    return seeds


@dataclass(frozen=True)
class Inputs:
    """Everything one seed generates: word streams per condition and noise-only pieces per kind."""

    streams: dict[str, list[Stream]]
    noise_only: dict[str, list[np.ndarray]]
    noise_onsets: dict[str, list[np.ndarray]]


def sizes(quick: bool) -> tuple[int, int]:
    """Spoken words in the pool and streams per condition (each of ten words from the pool)."""
    return (60, 3) if quick else (200, 10)


def generate(seed: int, conditions: list[str], quick: bool) -> Inputs:
    rng = np.random.default_rng(seed)
    pool_size, streams_per_condition = sizes(quick)
    pool = spoken_pool(rng, pool_size)
    # one generator per condition: a subset of conditions gets the very same audio
    rngs = {c: np.random.default_rng([seed, i]) for i, c in enumerate(EVERY_CONDITION)}
    phrases = {c: spoken_pool(rngs[c], 60, SPOKEN_PHRASES, (0.0, np.inf)) for c in conditions if c in PHRASES}
    streams = {c: make_streams(rngs[c], c, streams_per_condition, phrases.get(c, pool)) for c in conditions}
    noise_only: dict[str, list[np.ndarray]] = {}
    noise_onsets: dict[str, list[np.ndarray]] = {}
    for kind in (c for c in conditions if c in NOISES):
        rng = rngs[kind]
        pieces = []
        for _ in range(4):  # four levels per kind, each its own stream (from a cold start)
            piece = make_noise(kind, NOISE_ONLY_S * RATE // 4, rng, RATE)
            pieces.append(set_level_dbfs(piece, float(rng.uniform(-55, -20))))
        noise_only[kind] = pieces
        noise_onsets[kind] = [noise_onset(kind, rng, before) for before in ONSET_BEFORE]
    return Inputs(streams, noise_only, noise_onsets)


def run_condition(runner: Runner, condition: str, inputs: Inputs, tally: Tally) -> None:
    """Run one configuration over one condition's streams and noise, adding to ``tally``."""
    for stream in inputs.streams[condition]:
        score(stream, runner(stream.audio), tally)
    if condition in inputs.noise_only:
        pieces = inputs.noise_only[condition]
        tally.noise_segments += sum(len(runner(piece)) for piece in pieces)
        tally.noise_minutes += sum(len(p) for p in pieces) / RATE / 60
        starts = inputs.noise_onsets[condition]
        tally.start_segments += sum(len(runner(piece)) for piece in starts)
        tally.noise_starts += len(starts)


Tallies = dict[tuple[str, str], Tally]
"""Per (configuration, condition)."""


def tally_seed(seed: int, conditions: list[str], quick: bool, configs: str | None) -> Tallies:
    """Every configuration over one seed's words and noise (in a worker process with ``--jobs``)."""
    runners = configurations(configs.split(",") if configs else None)
    inputs = generate(seed, conditions, quick)
    tallies: Tallies = {}
    for name, runner in runners.items():
        for condition in conditions:
            tallies[name, condition] = Tally()
            run_condition(runner, condition, inputs, tallies[name, condition])
    return tallies


def row(name: str, condition: str, tally: Tally) -> str:
    false_rate = per_start = "–"
    if tally.noise_minutes:
        false_rate = f"{tally.noise_segments / tally.noise_minutes:.2f}"
        per_start = f"{tally.start_segments / tally.noise_starts:.2f}"
    return (
        f"| {name} | {condition} | {tally.found / tally.words:.1%} | {tally.extra} | {false_rate} "
        f"| {per_start} | {pct(tally.onset, 50)}/{pct(tally.onset, 95)} "
        f"| {pct(tally.end, 50)}/{pct(tally.end, 95)} "
        f"| {pct(tally.declared, 50)}/{pct(tally.declared, 95)} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer words and streams (about a minute)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--seeds",
        type=parse_seeds,
        help='several seeds ("1234,1-8"): each generates its own words and noise, and the figures '
        "are pooled over all of them",
    )
    parser.add_argument(
        "--per-seed", action="store_true", help="with --seeds: also one row per seed after the pooled table"
    )
    parser.add_argument("--jobs", type=int, default=1, help="with --seeds: seeds run in this many processes")
    parser.add_argument("--configs", help="comma-separated substrings of configuration names")
    parser.add_argument(
        "--conditions",
        help="comma-separated: clean,quiet,white,pink,babble,clatter (default) and offset,hum,reverb,phrases",
    )
    parser.add_argument("--cpu", action="store_true", help="only measure CPU use on silence and noise")
    parser.add_argument("--profile", action="store_true", help="only print the time per frame of each module")
    args = parser.parse_args(argv)
    if args.cpu:
        idle_cpu()
        return 0
    if args.profile:
        profile_modules()
        return 0
    seeds = args.seeds or [args.seed]
    conditions = list(DEFAULT_CONDITIONS)
    if args.conditions:
        conditions = [c for c in EVERY_CONDITION if c in args.conditions.split(",")]
    started = time.monotonic()
    jobs = min(max(args.jobs, 1), len(seeds))
    every = (seeds, repeat(conditions), repeat(args.quick), repeat(args.configs))
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as workers:
            per_seed = list(workers.map(tally_seed, *every))
    else:
        per_seed = list(map(tally_seed, *every))
    tallies = {key: Tally() for key in per_seed[0]}
    for one in per_seed:
        for key, tally in one.items():
            tallies[key].add(tally)
    took = time.monotonic() - started
    pool_size, streams_per_condition = sizes(args.quick)
    which = (
        f"seed {seeds[0]}" if len(seeds) == 1 else f"{len(seeds)} seeds pooled ({','.join(map(str, seeds))})"
    )
    print(
        f"<!-- {pool_size} words, {streams_per_condition} streams × 10 words per condition, "
        f"{NOISE_ONLY_S} s of each noise, per seed; {which}; ran in {took:.0f} s -->"
    )
    print()
    print(
        "| configuration | condition | recall | extra segs | false/min noise | false/noise start "
        "| onset p50/p95 ms | end p50/p95 ms | declared p50/p95 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, condition), tally in tallies.items():
        print(row(name, condition, tally))
    if args.per_seed and len(seeds) > 1:
        print()
        print(
            "| seed | configuration | condition | recall | extra segs | false/min noise | false/noise start "
            "| onset p50/p95 ms | end p50/p95 ms | declared p50/p95 ms |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, condition in tallies:
            for seed, one in zip(seeds, per_seed, strict=True):
                print(f"| {seed} {row(name, condition, one[name, condition])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
