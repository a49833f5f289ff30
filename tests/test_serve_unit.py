"""The `serve` systemd unit: what the issue asks of it, `systemd-analyze verify`, exposure ≤ 2.5."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_service_units import (
    MAX_EXPOSURE,
    ROOT,
    _analyze,
    _service_section,
    _with_stub_exec,
    needs_analyze,
)

SERVE_UNIT = ROOT / "systemd" / "streamclf-serve.service"


def test_serve_unit_runs_serve_with_the_config_and_no_secret_on_its_command_line() -> None:
    service = _service_section(SERVE_UNIT)
    assert service["Type"] == ["notify"] and service["RestartPreventExitStatus"] == ["3"]
    exec_start = service["ExecStart"][0].split()
    assert exec_start[:2] == ["/usr/local/bin/streamclf", "serve"]
    assert exec_start[exec_start.index("--config") + 1] == "/etc/streamclf/config.toml"
    assert not any("password" in arg.lower() or "@" in arg for arg in exec_start)
    assert service["EnvironmentFile"] == ["-/etc/streamclf/mqtt.env"]


@needs_analyze
def test_serve_unit_verifies(tmp_path: Path) -> None:
    result = _analyze("verify", str(_with_stub_exec(SERVE_UNIT, tmp_path)), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@needs_analyze
def test_serve_unit_exposure_is_at_most_2_5(tmp_path: Path) -> None:
    result = _analyze("security", "--offline=yes", f"--threshold={int(MAX_EXPOSURE * 10)}", str(SERVE_UNIT),
                      tmp_path=tmp_path)
    match = re.search(r"Overall exposure level for streamclf-serve\.service:\s*([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    print(f"systemd-analyze security --offline=yes systemd/streamclf-serve.service: {match.group(1)}")
    assert float(match.group(1)) <= MAX_EXPOSURE
