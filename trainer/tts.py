"""Offline speech synthesis with the Debian engines (espeak-ng, flite, festival).

Torch-free: used by the segmenter tests, the benchmarks and the synthetic-dataset generator.
Every call runs the engine as a subprocess, reads the WAV it writes, resamples it to the
requested rate with soxr and trims leading/trailing silence. flite's leading pause is cut at the
time flite gives for it: a diphone voice's pause holds its recording's own noise (kal: a low rumble
up to 25 dB under the word's peak, 220 ms long), which a level trim would take for the word.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ENGINES = ("espeak-ng", "flite", "festival")

#: Silence trimming: a 10 ms frame is "speech" when its RMS is within this many dB of the loudest frame.
TRIM_BELOW_PEAK_DB = 40.0
TRIM_FRAME_S = 0.010

#: flite voices that cannot say arbitrary text (limited-domain) are left out.
_FLITE_LIMITED_DOMAIN = ("awb_time",)

#: espeak-ng English language ids (mbrola "mb-" voices need extra packages and are skipped).
_ESPEAK_VARIANTS_DIR_CANDIDATES = (
    Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data/voices/!v"),
    Path("/usr/lib/aarch64-linux-gnu/espeak-ng-data/voices/!v"),
    Path("/usr/share/espeak-ng-data/voices/!v"),
)
_FESTIVAL_VOICE_ROOT = Path("/usr/share/festival/voices")

_TIMEOUT_S = 30.0


class TtsError(RuntimeError):
    """A synthesis engine is missing, failed or produced no audio; the message says which and why."""


@dataclass(frozen=True)
class Voice:
    engine: str
    """"espeak-ng" | "flite" | "festival"."""
    name: str
    """Engine voice id: "en-us+f3" (espeak language+variant), "slt", "voice_kal_diphone"."""
    rate: int | None = None
    """espeak: words per minute; flite/festival: duration stretch in percent (100 = normal)."""
    pitch: int | None = None
    """espeak pitch 0-99; ignored by the other engines."""

    @property
    def key(self) -> str:
        """Engine + voice + variant (ignores rate and pitch): the unit of voice splits."""
        return f"{self.engine}:{self.name}"


def available_engines() -> list[str]:
    """The installed engines, in the order of :data:`ENGINES`."""
    found = []
    for engine in ENGINES:
        binary = "text2wave" if engine == "festival" else engine
        if shutil.which(binary) is not None:
            found.append(engine)
    return found


def _run(cmd: list[str], what: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        raise TtsError(f"{what}: {cmd[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise TtsError(f"{what}: {cmd[0]} took longer than {_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise TtsError(f"{what}: {cmd[0]} failed ({message[-1] if message else f'exit {done.returncode}'})")
    return done


@functools.lru_cache(maxsize=1)
def _espeak_languages() -> tuple[str, ...]:
    done = _run(["espeak-ng", "--voices=en"], "listing espeak-ng voices")
    languages = []
    for line in done.stdout.splitlines()[1:]:
        parts = line.split()
        english = len(parts) >= 5 and parts[1].startswith("en") and not parts[4].startswith("mb/")
        if english and parts[1] not in languages:
            languages.append(parts[1])
    return tuple(languages)


@functools.lru_cache(maxsize=1)
def _espeak_all_languages() -> frozenset[str]:
    done = _run(["espeak-ng", "--voices"], "listing espeak-ng voices")
    return frozenset(line.split()[1] for line in done.stdout.splitlines()[1:] if len(line.split()) >= 2)


@functools.lru_cache(maxsize=1)
def _espeak_variants() -> tuple[str, ...]:
    for folder in _ESPEAK_VARIANTS_DIR_CANDIDATES:
        if folder.is_dir():
            return tuple(sorted(p.name for p in folder.iterdir() if p.is_file() and " " not in p.name))
    return ()


@functools.lru_cache(maxsize=1)
def _flite_voices() -> tuple[str, ...]:
    done = _run(["flite", "-lv"], "listing flite voices")
    names = done.stdout.split(":", 1)[-1].split()
    return tuple(n for n in names if n not in _FLITE_LIMITED_DOMAIN)


@functools.lru_cache(maxsize=1)
def _festival_voices() -> tuple[str, ...]:
    if not _FESTIVAL_VOICE_ROOT.is_dir():
        return ()
    return tuple(sorted(f"voice_{p.name}" for p in _FESTIVAL_VOICE_ROOT.glob("*/*") if p.is_dir()))


def list_voices(engine: str | None = None) -> list[Voice]:
    """Every English voice × variant of each installed engine (or of ``engine`` only)."""
    if engine is not None and engine not in ENGINES:
        raise TtsError(f"unknown engine {engine!r} (known: {', '.join(ENGINES)})")
    engines = [e for e in available_engines() if engine in (None, e)]
    voices: list[Voice] = []
    for eng in engines:
        if eng == "espeak-ng":
            for language in _espeak_languages():
                voices.append(Voice(eng, language))
                voices.extend(Voice(eng, f"{language}+{variant}") for variant in _espeak_variants())
        elif eng == "flite":
            voices.extend(Voice(eng, name) for name in _flite_voices())
        else:
            voices.extend(Voice(eng, name) for name in _festival_voices())
    return voices


def _engine_command(text: str, voice: Voice, out: Path) -> tuple[list[str], str | None]:
    if voice.engine == "espeak-ng":
        cmd = ["espeak-ng", "-v", voice.name, "-w", str(out)]
        if voice.rate is not None:
            cmd += ["-s", str(voice.rate)]
        if voice.pitch is not None:
            cmd += ["-p", str(voice.pitch)]
        return [*cmd, "--", text], None
    if voice.engine == "flite":
        cmd = ["flite", "-voice", voice.name, "-psdur", "-o", str(out)]  # -psdur: segment end times
        if voice.rate is not None:
            cmd += ["--setf", f"duration_stretch={voice.rate / 100:.3f}"]
        return [*cmd, "-t", text], None
    if voice.engine == "festival":
        setup = f"({voice.name})"
        if voice.rate is not None:
            setup += f" (Parameter.set 'Duration_Stretch {voice.rate / 100:.3f})"
        return ["text2wave", "-eval", setup, "-otype", "riff", "-o", str(out)], text
    raise TtsError(f"unknown engine {voice.engine!r} (known: {', '.join(ENGINES)})")


def trim_silence(
    audio: np.ndarray, sample_rate: int, below_peak_db: float = TRIM_BELOW_PEAK_DB
) -> np.ndarray:
    """``audio`` without the leading/trailing 10 ms frames quieter than the loudest by ``below_peak_db``."""
    hop = max(1, int(sample_rate * TRIM_FRAME_S))
    count = len(audio) // hop
    if count == 0:
        return audio[:0]
    frames = audio[: count * hop].reshape(count, hop).astype(np.float64)
    power = np.mean(frames**2, axis=1)
    if power.max() <= 0.0:
        return audio[:0]
    loud = np.flatnonzero(power >= power.max() * 10.0 ** (-below_peak_db / 10.0))
    return audio[loud[0] * hop : (loud[-1] + 1) * hop]


def _leading_pause_s(segments: str) -> float:
    """Where the leading pause ends, s, in flite's ``-psdur`` output ("pau:0.220 w:0.280 ...");
    0 without one."""
    name, _, end = (segments.split() or [""])[0].partition(":")
    try:
        return max(float(end), 0.0) if name == "pau" else 0.0
    except ValueError:
        return 0.0


def _check_voice(voice: Voice) -> None:
    """The engines fall back to a default voice without a word: refuse unknown voices ourselves."""
    if voice.engine == "espeak-ng":
        language, _, variant = voice.name.partition("+")
        known = language in _espeak_all_languages() and (not variant or variant in _espeak_variants())
    elif voice.engine == "flite":
        known = voice.name in _flite_voices() or voice.name in _FLITE_LIMITED_DOMAIN
    elif voice.engine == "festival":
        known = voice.name in _festival_voices()
    else:
        raise TtsError(f"unknown engine {voice.engine!r} (known: {', '.join(ENGINES)})")
    if not known:
        raise TtsError(f"unknown voice {voice.key} (see trainer.tts.list_voices({voice.engine!r}))")


def synthesize(text: str, voice: Voice, sample_rate: int = 16000) -> np.ndarray:
    """``text`` spoken by ``voice``: float32 mono at ``sample_rate``, silence trimmed at both ends."""
    if not text.strip():
        raise TtsError("cannot synthesize empty text")
    _check_voice(voice)
    with tempfile.TemporaryDirectory(prefix="streamclf-tts-") as tmp:
        out = Path(tmp) / "speech.wav"
        cmd, stdin = _engine_command(text, voice, out)
        done = _run(cmd, f"synthesizing {text!r} with {voice.key}", stdin)
        try:
            audio, rate = sf.read(out, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise TtsError(f"{voice.key} wrote no readable audio for {text!r}: {exc}") from None
    mono = audio.mean(axis=1)
    if voice.engine == "flite":
        mono = mono[round(_leading_pause_s(done.stdout) * rate) :]
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    trimmed = trim_silence(np.asarray(mono, dtype=np.float32), sample_rate)
    if len(trimmed) == 0:
        raise TtsError(f"{voice.key} produced only silence for {text!r}")
    return trimmed.astype(np.float32, copy=False)
