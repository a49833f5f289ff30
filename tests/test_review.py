"""`streamclf review DIR` as a subprocess on a real kept folder, driven by keys on stdin: accept,
relabel, discard, skip, quit; every decision on disk at once; missing and corrupt audio skipped in one
line each (exit 4); bad folders refused in one line (exit 3); playback with and without a sound
server. The key reader in process: a pipe, and a real pseudo-terminal in cbreak mode."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from streamclf.models import DEFAULT_MODEL_DIR
from streamclf.review.keymap import ACTION_KEYS, label_keys, model_labels, ordered_labels, recorded_labels
from streamclf.review.keys import ESC, open_keys
from tests.audio import needs_espeak
from tests.kept import Spoken, make_kept_folder, read_rows
from tests.pulse import PulseServer, pulse_server  # noqa: F401  (fixture)

SPOKEN: list[Spoken] = [
    ("yes", [("yes", 0.93), ("no", 0.04), ("left", 0.01)]),
    ("go", [("no", 0.55), ("go", 0.40), ("down", 0.02)]),
    ("stop", [("stop", 0.88), ("up", 0.05), ("_unknown_", 0.03)]),
    ("left", [("left", 0.97), ("right", 0.01), ("yes", 0.01)]),
    ("house", [("_unknown_", 0.71), ("house", 0.2), ("up", 0.03)]),
]


def review(folder: Path, keys: str, *extra: str, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamclf", "review", str(folder), *extra],
                          input=keys, capture_output=True, text=True, timeout=120, env=env)


def key_for(label: str, folder: Path) -> str:
    """The key review gives ``label`` for this folder (labels from the recorded intents)."""
    keymap = label_keys(ordered_labels(recorded_labels(read_rows(folder))))
    return next(key for key, name in keymap.items() if name == label)


@pytest.fixture
def kept(tmp_path: Path) -> tuple[Path, list[str]]:
    folder = tmp_path / "kept"
    return folder, make_kept_folder(folder, SPOKEN)


def decided(folder: Path) -> list[tuple[str, str, str]]:
    return [(r["file_name"], r["label"], r["reviewed"]) for r in read_rows(folder)]


@needs_espeak
@pytest.mark.slow
def test_accept_relabel_discard_skip_then_quit(kept: tuple[Path, list[str]]) -> None:
    folder, names = kept
    go = key_for("go", folder)
    proc = review(folder, f"a\n{go}\nd\nxs\nq\n")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{go} go" in proc.stderr, "the key map is shown"
    assert "no 0.55" in proc.stderr, "each clip's ranked intents are shown"
    assert decided(folder) == [
        (names[0], "yes", "true"),        # a: the top intent
        (names[1], "go", "true"),         # relabelled (the model said "no")
        (names[3], "", "false"),          # s: skipped, still to review
        (names[4], "", "false"),          # q: quit before deciding
    ]
    assert not (folder / names[2]).exists(), "d: the clip's audio is gone with its row"
    assert {p.name for p in folder.glob("*.wav")} == {names[0], names[1], names[3], names[4]}

    again = review(folder, "a")  # a second session starts at the first clip not reviewed; EOF quits
    assert again.returncode == 0, again.stderr
    assert decided(folder) == [
        (names[0], "yes", "true"), (names[1], "go", "true"), (names[3], "left", "true"),
        (names[4], "", "false"),
    ]


@needs_espeak
def test_without_an_output_device_playback_is_one_warning_and_review_goes_on(
    kept: tuple[Path, list[str]],
) -> None:
    folder, names = kept
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE")}
    proc = review(folder, "aa", env={**env, "PULSE_SERVER": "unix:/nonexistent"})
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "playback off" in line]
    assert len(warnings) == 1, proc.stderr
    assert decided(folder)[:2] == [(names[0], "yes", "true"), (names[1], "no", "true")]


@needs_espeak
@pytest.mark.slow
@pytest.mark.mic
def test_with_a_sound_server_the_clips_play(
    pulse_server: PulseServer, kept: tuple[Path, list[str]]  # noqa: F811
) -> None:
    folder, names = kept
    proc = review(folder, "rra", env=pulse_server.env)
    assert proc.returncode == 0, proc.stderr
    assert "playback off" not in proc.stderr
    assert decided(folder)[0] == (names[0], "yes", "true")


@needs_espeak
def test_model_labels_get_keys_too(kept: tuple[Path, list[str]]) -> None:
    folder, names = kept
    labels = ordered_labels(model_labels(str(DEFAULT_MODEL_DIR)), keep_order=True)
    assert "sheila" in labels and "sheila" not in recorded_labels(read_rows(folder))
    sheila = next(key for key, label in label_keys(labels).items() if label == "sheila")
    proc = review(folder, sheila, "--model", str(DEFAULT_MODEL_DIR), "--no-play")
    assert proc.returncode == 0, proc.stderr
    assert decided(folder)[0] == (names[0], "sheila", "true")


@needs_espeak
def test_missing_and_corrupt_audio_are_skipped_in_one_line_each(kept: tuple[Path, list[str]]) -> None:
    folder, names = kept
    (folder / names[1]).unlink()
    (folder / names[3]).write_bytes(b"RIFF not really a wav file")
    proc = review(folder, "aaaaa", "--no-play")
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    for name, why in ((names[1], "missing"), (names[3], "not readable")):
        lines = [line for line in proc.stderr.splitlines() if name in line]
        assert len(lines) == 1 and why in lines[0], proc.stderr
    assert decided(folder) == [
        (names[0], "yes", "true"), (names[1], "", "false"), (names[2], "stop", "true"),
        (names[3], "", "false"), (names[4], "_unknown_", "true"),
    ], "the broken rows stay, untouched"


@needs_espeak
def test_a_decision_is_on_disk_before_the_next_clip(kept: tuple[Path, list[str]]) -> None:
    """Killed without warning after one decision: that decision and every other row are there."""
    folder, _names = kept
    before = read_rows(folder)
    proc = subprocess.Popen([sys.executable, "-m", "streamclf", "review", str(folder), "--no-play"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdin is not None
        proc.stdin.write("a")
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while read_rows(folder)[0]["reviewed"] != "true":
            assert time.monotonic() < deadline and proc.poll() is None, "the decision was not written"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    after = read_rows(folder)
    assert after[0] == {**before[0], "label": "yes", "reviewed": "true"}
    assert after[1:] == before[1:]


def test_folders_that_cannot_be_reviewed_are_refused_in_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "metadata.csv").write_text("path,label\na.wav,yes\n")
    cases = [(tmp_path / "missing", "no such folder"), (empty, "no metadata.csv"),
             (foreign, "no file_name column")]
    for folder, why in cases:
        proc = review(folder, "a")
        assert proc.returncode == 3, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and why in lines[0], lines
    assert (foreign / "metadata.csv").read_text() == "path,label\na.wav,yes\n"


# ---------------------------------------------------------------------------- the parts, in process


def test_label_keys_never_take_an_action_key() -> None:
    labels = ordered_labels(model_labels(str(DEFAULT_MODEL_DIR)), keep_order=True)
    keymap = label_keys(labels)
    assert len(keymap) == len(labels) == 37
    assert not set(keymap) & set(ACTION_KEYS)
    assert list(keymap.values())[-2:] == ["_unknown_", "_background_"]


def test_keys_from_a_pipe_one_character_each_line_breaks_ignored() -> None:
    with open_keys(io.StringIO("a\n3\r\nd")) as next_key:
        assert [next_key(), next_key(), next_key(), next_key()] == ["a", "3", "d", None]


@pytest.mark.timeout(20)
def test_keys_from_a_terminal_arrive_alone_and_its_mode_is_restored() -> None:
    main, side = os.openpty()
    terminal = open(side, encoding="utf-8")  # noqa: SIM115 (closed below)
    try:
        saved = termios.tcgetattr(side)
        with open_keys(terminal) as next_key:
            os.write(main, b"a")  # no Enter: cbreak mode hands it over alone
            assert next_key() == "a"
            os.write(main, b"\x1b[Ab")  # an arrow key is one ESC, not "[" and "A"
            assert next_key() == ESC
            assert next_key() == "b"
        assert termios.tcgetattr(side) == saved
    finally:
        terminal.close()
        os.close(main)
