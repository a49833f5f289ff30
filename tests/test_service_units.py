"""The systemd units pass `systemd-analyze verify`, rate ≤ 2.5 for exposure, and install cleanly.

`verify` checks that ExecStart's binary exists, which it does not before installation, so
each test verifies a copy of the unit whose ExecStart points at a stub executable in a temp
directory (same arguments). Skipped only where systemd-analyze is absent (`make test`
installs it on Debian).
"""

from __future__ import annotations

import configparser
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import IO

import pytest

from streamclf.logs import setup_logging

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_UNIT = ROOT / "systemd" / "streamclf.service"
USER_UNIT = ROOT / "systemd" / "streamclf-user.service"
INSTALL = ROOT / "scripts" / "install-service"
MAX_EXPOSURE = 2.5

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed")


def _service_section(unit: Path) -> dict[str, list[str]]:
    """Each [Service] key with all its values (systemd keys may repeat)."""
    values: dict[str, list[str]] = {}
    section = None
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def _with_stub_exec(unit: Path, tmp_path: Path) -> Path:
    """A copy of ``unit`` in ``tmp_path`` whose ExecStart binary is an existing stub."""
    stub = tmp_path / "bin" / "streamclf"
    stub.parent.mkdir(parents=True, exist_ok=True)
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    text = re.sub(r"^ExecStart=\S+", f"ExecStart={stub}", unit.read_text(), count=1, flags=re.MULTILINE)
    copy = tmp_path / "units" / unit.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(text)
    return copy


def _analyze(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_COLOR": "0"}
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, env=env, timeout=120)


def test_system_unit_has_what_the_issue_asks_for() -> None:
    service = _service_section(SYSTEM_UNIT)
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert service["Restart"] == ["on-failure"]
    assert service["RestartPreventExitStatus"] == ["3"]
    assert int(service["WatchdogSec"][0]) > 0
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["DynamicUser"] == ["yes"] and service["SupplementaryGroups"] == ["audio"]
    assert service["RuntimeDirectory"] == ["streamclf"]
    assert service["RuntimeDirectoryMode"] == ["0750"]
    exec_start = service["ExecStart"][0].split()
    assert exec_start[:2] == ["/usr/local/bin/streamclf", "listen"]
    assert exec_start[exec_start.index("--config") + 1] == "/etc/streamclf/config.toml"
    assert exec_start[exec_start.index("--publish") + 1] == "unix:///run/streamclf/events.sock"
    assert "--json" in exec_start


def test_user_unit_has_what_the_issue_asks_for() -> None:
    service = _service_section(USER_UNIT)
    assert service["Type"] == ["notify"]
    assert service["RestartPreventExitStatus"] == ["3"]
    assert int(service["WatchdogSec"][0]) > 0
    exec_start = service["ExecStart"][0].split()
    assert exec_start[1] == "listen"
    assert exec_start[exec_start.index("--publish") + 1] == "unix://%t/streamclf/events.sock"
    install = configparser.ConfigParser(strict=False, interpolation=None)
    install.read_string(USER_UNIT.read_text())
    assert install["Install"]["WantedBy"] == "default.target"


@needs_analyze
def test_system_unit_verifies(tmp_path: Path) -> None:
    result = _analyze("verify", str(_with_stub_exec(SYSTEM_UNIT, tmp_path)), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    # unknown keys and unparsable values are only warnings to verify: there must be none
    assert result.stderr.strip() == "", result.stderr


@needs_analyze
def test_user_unit_verifies(tmp_path: Path) -> None:
    result = _analyze("--user", "verify", str(_with_stub_exec(USER_UNIT, tmp_path)), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@needs_analyze
def test_system_unit_exposure_is_at_most_2_5(tmp_path: Path) -> None:
    result = _analyze("security", "--offline=yes", f"--threshold={int(MAX_EXPOSURE * 10)}",
                      str(SYSTEM_UNIT), tmp_path=tmp_path)
    match = re.search(r"Overall exposure level for streamclf\.service:\s*([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    rating = float(match.group(1))
    print(f"systemd-analyze security --offline=yes systemd/streamclf.service: {rating}")
    assert rating <= MAX_EXPOSURE
    assert result.returncode == 0, result.stderr


def test_install_service_dry_run_changes_nothing_and_installs_torch_first(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = subprocess.run([str(INSTALL), "--dry-run", "--prefix", str(root)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert not root.exists()
    commands = [line[2:] for line in result.stdout.splitlines() if line.startswith("+ ")]
    pip_installs = [c for c in commands if " -m pip install" in c and "--upgrade pip" not in c]
    assert "torch==2.13.0" in pip_installs[0]
    assert str(ROOT) in pip_installs[1]
    assert any(c.endswith(f"{root}/etc/systemd/system/streamclf.service") for c in commands)
    assert not any("systemctl" in c for c in commands)


def test_install_service_into_a_prefix(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = subprocess.run([str(INSTALL), "--prefix", str(root), "--skip-packages"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    unit = root / "etc/systemd/system/streamclf.service"
    assert unit.read_text() == SYSTEM_UNIT.read_text()
    assert (unit.stat().st_mode & 0o777) == 0o644
    config = root / "etc/streamclf/config.toml"
    assert config.read_text() == (ROOT / "configs/streamclf.toml").read_text()
    assert (config.stat().st_mode & 0o777) == 0o644  # the DynamicUser must read it
    assert os.readlink(root / "usr/local/bin/streamclf") == "/opt/streamclf/venv/bin/streamclf"
    assert "not calling systemctl" in result.stdout

    # a second run keeps the admin's edited config
    config.write_text("# edited by the admin\n")
    again = subprocess.run([str(INSTALL), "--prefix", str(root), "--skip-packages"],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert config.read_text() == "# edited by the admin\n"
    assert (root / "etc/streamclf/config.toml.example").exists()


def test_install_service_user_mode_into_a_prefix(tmp_path: Path) -> None:
    root = tmp_path / "root"
    home = Path("/home/someone")
    env = {**os.environ, "HOME": str(home)}
    env.pop("XDG_CONFIG_HOME", None)
    result = subprocess.run([str(INSTALL), "--user", "--prefix", str(root), "--skip-packages"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    prefixed = root / home.relative_to("/")
    assert (prefixed / ".config/systemd/user/streamclf.service").read_text() == USER_UNIT.read_text()
    assert (prefixed / ".config/streamclf/config.toml").exists()
    venv_command = f"{home}/.local/share/streamclf/venv/bin/streamclf"
    assert os.readlink(prefixed / ".local/bin/streamclf") == venv_command
    assert "enable-linger" in result.stdout


def test_install_service_rejects_unknown_options() -> None:
    result = subprocess.run([str(INSTALL), "--frobnicate"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "unknown option" in result.stderr


# ---- logging for journald (streamclf/logs.py) ----------------------------------------------------


def _log_through(stream: IO[str], level: str, monkeypatch: pytest.MonkeyPatch,
                 journal: bool = False) -> None:
    if journal:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    else:
        monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    handler = setup_logging(level, stream)
    try:
        log = logging.getLogger("streamclf.test")
        log.debug("hidden at info")
        log.info("first line\nsecond line")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("it failed")
    finally:
        logging.getLogger().removeHandler(handler)
        stream.flush()


def test_logs_are_one_line_per_record_without_colour_off_a_terminal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "log.txt"
    with open(path, "w") as stream:
        _log_through(stream, "info", monkeypatch)
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert "INFO streamclf.test: first line ⏎ second line" in lines[0]
    assert "ERROR streamclf.test: it failed" in lines[1] and "ValueError: boom" in lines[1]
    assert "\x1b[" not in path.read_text()
    assert "hidden" not in path.read_text()


def test_logs_under_journald_carry_priorities(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "journal.txt"
    with open(path, "w") as stream:
        _log_through(stream, "debug", monkeypatch, journal=True)
    lines = path.read_text().splitlines()
    assert [line[:3] for line in lines] == ["<7>", "<6>", "<3>"]
    assert lines[0].startswith("<7>DEBUG streamclf.test: hidden at info")  # no timestamp: journald adds it


def test_logs_on_a_terminal_are_coloured(monkeypatch: pytest.MonkeyPatch) -> None:
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as stream:
        _log_through(stream, "warning", monkeypatch)
    output = os.read(leader, 65536).decode()
    os.close(leader)
    assert "\x1b[31m" in output and "it failed" in output
    assert "first line" not in output  # below the level


def test_log_level_must_be_known() -> None:
    with pytest.raises(ValueError, match="log level"):
        setup_logging("chatty")
