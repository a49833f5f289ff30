"""A PulseAudio server with a null sink as a virtual microphone, for tests.

``pulseaudio --daemonize=yes -n …`` loads only the native protocol and a null sink ``v``;
its monitor ``v.monitor`` becomes the default source, so whatever ``paplay --device=v``
plays is what a recording client hears. Clients reach it through ALSA's ``pulse`` device
(libasound2-plugins), so PortAudio/sounddevice see it as the devices ``pulse`` and ``default``.

Everything lives in a private temporary directory named by environment variables (runtime
dir, state, home, client config with autospawn off), so the user's own sound session is never
touched. Subprocesses get ``server.env``; in-process code uses the ``pulse_in_process`` fixture.
The server is stopped by the pid it wrote. When PulseAudio cannot run, the fixtures skip,
except under CI (``CI`` set), where they fail loudly.

Use it from a test module::

    from tests.pulse import pulse_server, pulse_in_process  # noqa: F401  (fixtures)
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SINK = "v"
SOURCE = f"{SINK}.monitor"
START_TIMEOUT_S = 15.0


class PulseUnavailable(RuntimeError):
    """PulseAudio could not be started here."""


def _process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie left unreaped by a minimal init counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class PulseServer:
    """One private PulseAudio daemon with a null sink of ``rate`` Hz, ``channels`` channels."""

    def __init__(self, rate: int = 16000, channels: int = 1) -> None:
        self.rate = rate
        self.channels = channels
        self.root = Path(tempfile.mkdtemp(prefix="streamclf-pulse-"))
        self.runtime = self.root / "runtime"
        self.socket = self.runtime / "native"
        self.pid: int | None = None
        home = self.root / "home"
        for folder in (self.runtime, home, self.root / "state"):
            folder.mkdir(mode=0o700)
        client_conf = self.root / "client.conf"
        client_conf.write_text("autospawn = no\n")
        self.client_env = {
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_CLIENTCONFIG": str(client_conf),
            "PULSE_RUNTIME_PATH": str(self.runtime),
        }
        """What a client needs to find this server (and only this one)."""
        self.env = {
            **os.environ,
            **self.client_env,
            "PULSE_STATE_PATH": str(self.root / "state"),
            "XDG_RUNTIME_DIR": str(self.root),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "HOME": str(home),
        }
        """A full environment for subprocesses (clients or the server) pointed at this server."""

    def start(self) -> None:
        if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
            raise PulseUnavailable("pulseaudio/pactl not installed (Debian: pulseaudio pulseaudio-utils)")
        command = [
            "pulseaudio",
            "--daemonize=yes",
            "-n",
            "--exit-idle-time=-1",
            "--disallow-exit",
            "--use-pid-file=yes",
            "--load=module-native-protocol-unix auth-anonymous=1",
            f"--load=module-null-sink sink_name={SINK} rate={self.rate} channels={self.channels}",
        ]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=START_TIMEOUT_S)
        if done.returncode != 0:
            raise PulseUnavailable(f"pulseaudio failed (rc {done.returncode}): {done.stderr.strip()[-500:]}")
        self.pid = self._read_pid()
        self._wait_until_ready()
        self.pactl("set-default-source", SOURCE)

    def _read_pid(self) -> int:
        pid_file = self.runtime / "pid"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                return int(pid_file.read_text().strip())
            time.sleep(0.05)
        raise PulseUnavailable(f"pulseaudio wrote no pid file at {pid_file}")

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        last = ""
        while time.monotonic() < deadline:
            probe = subprocess.run(["pactl", "info"], env=self.env, capture_output=True, text=True)
            if probe.returncode == 0 and SINK in probe.stdout:
                return
            last = (probe.stderr or probe.stdout).strip()
            time.sleep(0.1)
        self.kill()
        raise PulseUnavailable(f"pulseaudio did not answer within {START_TIMEOUT_S} s: {last}")

    def pactl(self, *args: str) -> str:
        done = subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, timeout=10)
        if done.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def play(self, wav: Path) -> subprocess.Popen[bytes]:
        """Start ``paplay --device=v wav`` (returns at once; ``.wait()`` for the end)."""
        return subprocess.Popen(
            ["paplay", f"--device={SINK}", str(wav)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def kill(self) -> None:
        """Stop the server by its pid (SIGTERM, then SIGKILL); ``start()`` may bring it back."""
        pid, self.pid = self.pid, None
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        while _process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _process_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        (self.runtime / "pid").unlink(missing_ok=True)

    def stop(self) -> None:
        """Kill the server and remove its directory."""
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self.pid is not None and _process_alive(self.pid)


def alsa_pulse_plugin_present() -> bool:
    """Whether ALSA can reach PulseAudio (the ``pulse`` PCM from libasound2-plugins)."""
    patterns = (
        "/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so",
        "/usr/lib*/alsa-lib/libasound_module_pcm_pulse.so",
    )
    return any(glob.glob(pattern) for pattern in patterns)


def start_or_fail(rate: int = 16000, channels: int = 1) -> PulseServer:
    """A started server; skips the test when PulseAudio cannot run, fails under CI."""
    server = PulseServer(rate, channels)
    try:
        if not alsa_pulse_plugin_present():
            raise PulseUnavailable("ALSA's pulse plugin is missing (Debian: libasound2-plugins)")
        server.start()
    except (PulseUnavailable, OSError, subprocess.TimeoutExpired) as exc:
        server.stop()
        message = f"virtual microphone unavailable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return server


@pytest.fixture(scope="module")
def pulse_server() -> Iterator[PulseServer]:
    """A running PulseAudio server with the null sink ``v`` as the default source's owner."""
    server = start_or_fail()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def client_environment(server: PulseServer) -> Iterator[None]:
    """Point this process's sound clients at ``server`` and refresh PortAudio's device list."""
    from streamclf.audio.mic import refresh_devices

    saved = {key: os.environ.get(key) for key in server.client_env}
    os.environ.update(server.client_env)
    refresh_devices()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        refresh_devices()


@pytest.fixture
def pulse_in_process(pulse_server: PulseServer) -> Iterator[PulseServer]:
    """``pulse_server``, with this process's environment (and PortAudio) pointed at it."""
    with client_environment(pulse_server):
        yield pulse_server
