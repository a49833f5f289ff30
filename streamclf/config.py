"""Configuration: one TOML file read into frozen dataclasses, one per subsystem.

Every field documents its unit. Command-line flags override the file. An unknown key
or a bad value raises :class:`ConfigError` naming the key (exit code 3).
"""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from .errors import ConfigError

Check = Callable[[Any], str | None]


def _one_of(*allowed: object) -> Check:
    return lambda v: None if v in allowed else f"must be one of {', '.join(map(str, allowed))}"


def _at_least(low: float) -> Check:
    return lambda v: None if v >= low else f"must be ≥ {low}"


def _between(low: float, high: float) -> Check:
    return lambda v: None if low <= v <= high else f"must be between {low} and {high}"


def _identifier(v: str) -> str | None:
    ok = bool(v) and all(c.isascii() and (c.isalnum() or c in "_-") for c in v)
    return None if ok else "must be letters, digits, _ or - (not empty)"


def _opt(check: Check) -> Check:
    return lambda v: None if v is None else check(v)


def setting(default: Any, check: Check | None = None) -> Any:
    """A settings field with an optional validity check (returns a problem or None)."""
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata={"check": check})


@dataclass(frozen=True)
class CaptureSettings:
    source: str = setting("mic")
    """Where audio comes from: "mic", a file path (WAV/FLAC/OGG), or "-" for raw s16le PCM on stdin."""
    device: str | None = setting(None)
    """Input device: index, or a case-insensitive substring of its name. None: the default device."""
    sample_rate: int | None = setting(None, _opt(_between(4000, 384000)))
    """Capture rate in Hz. None: the device's default rate (mic) or 16000 (stdin). Files use their own."""
    channels: int = setting(1, _between(1, 32))
    """Channels of raw stdin PCM, or channels to open on the mic (downmixed to mono)."""
    speed: float = setting(1.0, _at_least(0.0))
    """File pacing: 1.0 is real time, 0 is as fast as possible."""
    block_ms: int = setting(30, _between(5, 500))
    """Capture block length in milliseconds (mic and stdin)."""
    ring_seconds: float = setting(10.0, _between(0.5, 600.0))
    """Ring-buffer capacity in seconds of audio; when full, the oldest audio is dropped and counted."""
    wait_for_device: bool = setting(False)
    """When the device is absent at start, wait for it with backoff instead of exiting with code 3."""
    reopen_max_backoff_s: float = setting(5.0, _between(0.1, 300.0))
    """Longest pause, in seconds, between attempts to reopen a lost device."""


@dataclass(frozen=True)
class VadSettings:
    backend: str = setting("webrtc", _one_of("webrtc", "silero"))
    """Voice-activity backend: "webrtc" (webrtcvad) or "silero" (silero-vad)."""
    aggressiveness: int = setting(1, _between(0, 3))
    """webrtcvad aggressiveness, 0 (least) to 3 (most eager to call audio non-speech)."""
    frame_ms: int = setting(20, _one_of(10, 20, 30))
    """webrtcvad frame length in milliseconds: 10, 20 or 30 (silero always uses 32 ms at 16 kHz)."""
    open_ms: int = setting(40, _between(10, 1000))
    """Speech, in milliseconds, within the opening window that opens an utterance."""
    open_window_ms: int = setting(80, _between(10, 2000))
    """Window, in milliseconds, over which the opening rule counts speech frames."""
    confirm_ms: int = setting(60, _between(0, 2000))
    """Voiced (low-band-dominant) speech, in milliseconds, an opened utterance needs to be kept."""
    hangover_ms: int = setting(160, _between(30, 3000))
    """Non-speech, in milliseconds, that closes an utterance."""
    preroll_ms: int = setting(40, _between(0, 1000))
    """Audio kept before the first speech frame, in milliseconds, and added to the segment."""
    tail_ms: int = setting(40, _between(0, 1000))
    """Audio kept after the last speech frame, in milliseconds (the rest of the hangover is dropped)."""
    min_utterance_ms: int = setting(100, _between(0, 10000))
    """Shorter utterances, in milliseconds (first to last speech frame, and edges noise hid), are dropped."""
    max_utterance_s: float = setting(8.0, _between(0.5, 120.0))
    """Longer segments are cut at this length in seconds and classified; the rest goes on as a new one."""
    masked_pad: bool = setting(True)
    """Widen segments in noise (up to 60 ms before, 100 ms after) for soft word edges the noise hides."""
    margin_db: float = setting(6.0, _between(0.0, 40.0))
    """Frame energy, in dB above the adaptive noise floor, that speech needs (widened for unsteady noise)."""
    agc: bool = setting(True)
    """Bring the sound that stands out of the noise to -22 dBFS before the detector (gain -12 to +40
    dB, set by the loudest recent frame, so a word keeps its own rise and fall)."""
    threshold: float = setting(0.5, _between(0.0, 1.0))
    """Speech probability threshold of the silero backend, 0..1."""
    reset_after_s: float = setting(5.0, _between(0.1, 600.0))
    """Seconds of non-speech after which the silero model's recurrent state is cleared."""
    murmur_check: bool = setting(True)
    """webrtc backend: over murmur (babble, a TV), keep an utterance only when silero-vad also hears a
    voice in it; a swell of distant talkers looks like a near one in level and spectrum. Runs only
    while the background is murmur."""


@dataclass(frozen=True)
class ModelSettings:
    model: str | None = setting(None)
    """Model directory or Hugging Face hub id. None: the bundled default commands model."""
    backend: str = setting("auto", _one_of("auto", "torch", "onnx"))
    """Inference backend: "auto" (ONNX Runtime when the model directory holds model.onnx, else torch),
    "torch" (transformers) or "onnx" (ONNX Runtime on model.onnx)."""
    top_k: int = setting(3, _between(1, 100))
    """How many ranked intents each utterance event carries."""
    threshold: float = setting(0.65, _between(0.0, 1.0))
    """Top score needed to accept a label; below it the event has label null, accepted false. 0.65 is
    the lowest at which the bundled model accepts at most 5 % of other speech (its model card)."""
    threads: int = setting(0, _between(0, 256))
    """Inference threads; 0: one for small models (under 5 M parameters), else the backend's choice."""
    max_batch: int = setting(8, _between(1, 256))
    """Most segments classified together when several are waiting."""
    queue_size: int = setting(32, _between(1, 10000))
    """Segments waiting for the worker; when full, the oldest waiting segment is dropped and counted."""


@dataclass(frozen=True)
class OutputSettings:
    json: bool | None = setting(None)
    """JSON lines on stdout. None: JSON when stdout is not a terminal, the live view when it is."""
    publish: tuple[str, ...] = setting(())
    """Event sockets and brokers: "unix:///run/streamclf/events.sock", "tcp://127.0.0.1:7890",
    "mqtt://HOST[:PORT]/TOPIC", "mqtts://HOST[:PORT]/TOPIC" (credentials: the [mqtt] section)."""
    allow_remote: bool = setting(False)
    """Let a tcp:// publish address bind a non-loopback host."""
    status_interval_s: float = setting(5.0, _between(0.1, 3600.0))
    """Seconds between status events (and systemd STATUS= updates)."""
    stdout_buffer: int = setting(1000, _between(1, 1_000_000))
    """Events held for a slow stdout reader before new ones are dropped and counted."""
    subscriber_buffer: int = setting(1000, _between(1, 1_000_000))
    """Events held for a slow socket subscriber before it is disconnected."""
    speech_events: bool = setting(True)
    """Emit speech start/end events."""
    log_level: str = setting("info", _one_of("debug", "info", "warning", "error"))
    """Log level on stderr."""


@dataclass(frozen=True)
class ServeSettings:
    uri: str = setting("tcp://127.0.0.1:10400")
    """Where `streamclf serve` listens for Wyoming clients: "tcp://HOST:PORT" or "unix:///PATH"."""
    allow_remote: bool = setting(False)
    """Let a tcp:// server address bind a non-loopback host (satellites on other machines)."""
    max_streams: int = setting(64, _between(1, 4096))
    """Most client connections served at once; more are answered with an error and closed."""
    stream_segments: int = setting(2, _between(1, 64))
    """Segments one stream may have waiting for the worker; while it has more, its audio waits (a file
    sent faster than real time is read only as fast as the model allows)."""
    send_buffer_kib: int = setting(256, _between(16, 65536))
    """Replies, in KiB, held for a client that does not read them before it is disconnected."""
    max_chunk_s: float = setting(10.0, _between(0.01, 600.0))
    """Longest audio chunk accepted, in seconds; a longer one is bad input and closes its connection."""


@dataclass(frozen=True)
class MqttSettings:
    username: str | None = setting(None)
    """Broker user name. None: from the environment variable STREAMCLF_MQTT_USERNAME, if set."""
    password: str | None = setting(None)
    """Broker password. None: from the environment variable STREAMCLF_MQTT_PASSWORD, if set. Never on
    the command line (other users can read it there)."""
    qos: int = setting(0, _between(0, 2))
    """MQTT quality of service of published events: 0 at most once, 1 at least once, 2 exactly once."""
    buffer_events: int = setting(1000, _between(1, 1_000_000))
    """Events held while the broker is away; when full, the oldest is dropped and counted."""
    reconnect_max_s: float = setting(30.0, _between(1.0, 3600.0))
    """Longest pause, in seconds, between attempts to reach a broker that went away (backoff from 1 s)."""
    keepalive_s: int = setting(30, _between(5, 3600))
    """MQTT keep-alive interval in seconds."""
    client_id: str = setting("")
    """MQTT client id. Empty: "streamclf-" and the host name."""
    ca_file: str | None = setting(None)
    """mqtts://: PEM file of the certificate authority to trust. None: the system's."""
    discovery: bool = setting(False)
    """Announce through Home Assistant's MQTT discovery: one event entity per stream (its event types
    are the model's commands) and a status sensor."""
    discovery_prefix: str = setting("homeassistant", _identifier)
    """Home Assistant's discovery topic prefix."""
    node_id: str = setting("streamclf", _identifier)
    """This install's id in Home Assistant (letters, digits, _ and -): its device and entity ids."""


@dataclass(frozen=True)
class KeepSettings:
    dir: str | None = setting(None)
    """`listen`: folder that keeps each utterance's audio (16 kHz mono WAV) and ranked intents
    (metadata.csv, an audiofolder) for `streamclf review` and training. None: nothing is kept."""
    max_mb: float = setting(200.0, _between(0.01, 1_000_000.0))
    """Most the kept folder may hold, in MB (10^6 bytes); beyond it the oldest clips are dropped first."""
    min_free_mb: float = setting(100.0, _between(0.0, 1_000_000_000.0))
    """Keeping stops (one warning) when writing a clip would leave less free disk space than this, in MB."""
    queue: int = setting(64, _between(1, 10000))
    """Utterances waiting to be written; when full, a live source drops the oldest (counted) and files
    and pipes wait."""


@dataclass(frozen=True)
class Settings:
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    vad: VadSettings = field(default_factory=VadSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    keep: KeepSettings = field(default_factory=KeepSettings)


SECTIONS: dict[str, type] = {
    "capture": CaptureSettings,
    "vad": VadSettings,
    "model": ModelSettings,
    "output": OutputSettings,
    "serve": ServeSettings,
    "mqtt": MqttSettings,
    "keep": KeepSettings,
}


def _type_problem(value: Any, hint: Any) -> str | None:
    """None when ``value`` fits the annotated type (bool is never an int here)."""
    text = str(hint)
    optional = "None" in text
    if value is None:
        return None if optional else "must not be empty"
    if text.startswith("tuple"):
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        return None if ok else "must be a list of strings"
    if "bool" in text:
        return None if isinstance(value, bool) else "must be true or false"
    if "int" in text:
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer"
    if "float" in text:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "must be a number"
    if "str" in text:
        return None if isinstance(value, str) else "must be a string"
    return None


def _build(section: str, cls: type, values: Mapping[str, Any], base: Any) -> Any:
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{section}.{key}"
        if key not in known:
            raise ConfigError(name, f"unknown key (known: {', '.join(known)})")
        if (problem := _type_problem(value, hints[key])) is not None:
            raise ConfigError(name, f"{problem}, got {value!r}")
        if "float" in str(hints[key]) and isinstance(value, int):
            value = float(value)
        if isinstance(value, list):
            value = tuple(value)
        check = known[key].metadata.get("check")
        if value is not None and check is not None and (problem := check(value)) is not None:
            raise ConfigError(name, f"{problem}, got {value!r}")
        changes[key] = value
    return dataclasses.replace(base, **changes)


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML file as a dict; unreadable or malformed files raise ConfigError."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file") from None
    except IsADirectoryError:
        raise ConfigError(str(path), "is a directory, not a TOML file") from None
    except PermissionError:
        raise ConfigError(str(path), "permission denied") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "not valid UTF-8 text") from None


def settings_from_dict(data: Mapping[str, Any], base: Settings | None = None) -> Settings:
    """Apply ``{section: {key: value}}`` onto ``base`` (defaults when None), validating every key."""
    settings = base or Settings()
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(section, f"unknown section (known: {', '.join(SECTIONS)})")
        if not isinstance(values, Mapping):
            raise ConfigError(section, "must be a table")
        current = getattr(settings, section)
        updated = _build(section, SECTIONS[section], values, current)
        settings = dataclasses.replace(settings, **{section: updated})
    return settings


def load_settings(path: Path | None, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Settings:
    """Defaults, then the TOML file (if any), then command-line overrides (None values are skipped)."""
    settings = Settings()
    if path is not None:
        settings = settings_from_dict(read_toml(path), settings)
    if overrides:
        cleaned = {s: {k: v for k, v in vals.items() if v is not None} for s, vals in overrides.items()}
        settings = settings_from_dict({s: v for s, v in cleaned.items() if v}, settings)
    return settings


def describe(cls: type) -> list[tuple[str, Any, str]]:
    """(key, default, doc) for each field: used to write and check the commented example config."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(cls))
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in itertools.pairwise(body):
        documented = isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
        if isinstance(node, ast.AnnAssign) and documented:
            docs[node.target.id] = str(nxt.value.value)  # type: ignore[union-attr]
    return [(f.name, f.default, docs.get(f.name, "")) for f in fields(cls)]
