"""The TOML loader: defaults, overrides, and a clear error naming the key for bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamclf import config
from streamclf.errors import EXIT_STARTUP, ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "configs" / "streamclf.toml"


def test_example_config_loads_and_lists_every_key() -> None:
    text = EXAMPLE.read_text()
    loaded = config.load_settings(EXAMPLE)
    assert loaded == config.Settings()
    for section, cls in config.SECTIONS.items():
        assert f"[{section}]" in text
        for key, _default, doc in config.describe(cls):
            assert f"{key} = " in text, key
            assert doc, f"{section}.{key} has no docstring"


def test_example_config_is_generated_from_the_dataclasses() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader("gen_config", str(ROOT / "scripts" / "gen-config"))
    spec = importlib.util.spec_from_loader("gen_config", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    assert module.render() == EXAMPLE.read_text(), "run scripts/gen-config"


def test_file_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[model]\nthreshold = 0.7\ntop_k = 2\n[vad]\nframe_ms = 10\n')
    s = config.load_settings(path, {"model": {"top_k": 5, "threshold": None}})
    assert s.model.threshold == 0.7
    assert s.model.top_k == 5
    assert s.vad.frame_ms == 10


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("[vad]\nframe_len = 20\n", "vad.frame_len"),
        ("[vad]\nframe_ms = 25\n", "vad.frame_ms"),
        ("[vad]\naggressiveness = 4\n", "vad.aggressiveness"),
        ("[vad]\nhangover_ms = -5\n", "vad.hangover_ms"),
        ('[vad]\nhangover_ms = "long"\n', "vad.hangover_ms"),
        ("[model]\nthreshold = true\n", "model.threshold"),
        ("[output]\npublish = \"unix:///x\"\n", "output.publish"),
        ("[sound]\nx = 1\n", "sound"),
        ("vad = 3\n", "vad"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, body: str, key: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        config.load_settings(path)
    assert info.value.key == key
    assert key in str(info.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        config.load_settings(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[vad\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load_settings(bad)
    with pytest.raises(ConfigError, match="directory"):
        config.load_settings(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("")
    path.chmod(0)
    with pytest.raises(ConfigError, match="permission denied"):
        config.load_settings(path)


def test_cli_exits_3_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[vad]\naggressiveness = 9\n")
    proc = subprocess.run(
        [sys.executable, "-m", "streamclf", "listen", "--config", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == EXIT_STARTUP
    assert "vad.aggressiveness" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False), st.text(max_size=8),
    st.lists(st.text(max_size=4), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*config.SECTIONS, "bogus"]),
        st.dictionaries(
            st.sampled_from(["frame_ms", "threshold", "top_k", "source", "publish", "json", "nope"]), _scalar
        ),
    )
)
def test_loader_either_accepts_or_names_a_key(data: dict) -> None:
    """Whatever the input, the loader returns valid settings or a ConfigError naming a key."""
    try:
        s = config.settings_from_dict(data)
    except ConfigError as exc:
        section = exc.key.split(".")[0]
        assert section in data
        return
    assert s.vad.frame_ms in (10, 20, 30)
    assert 0.0 <= s.model.threshold <= 1.0
    assert s.model.top_k >= 1
    assert isinstance(s.output.publish, tuple)
