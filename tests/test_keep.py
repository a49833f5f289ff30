"""`listen --keep DIR`: real speech through the real daemon (a subprocess, the bundled model) into an
audiofolder: one 16 kHz WAV and one metadata row per utterance, the size bound (oldest dropped
first), appending across restarts, the free-space stop, an unwritable folder at start-up; and the
writer's parts in process: it never blocks a live source, and two processes' changes both survive."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamclf.audiofolder import encode_wav
from streamclf.config import KeepSettings
from streamclf.events import Intent, UtteranceEvent
from streamclf.keep.folder import Added, Bound, KeepFolder, NewClip, oldest_to_drop
from streamclf.keep.keeper import Keeper
from tests.audio import RATE, needs_espeak, spoken_words, ten_word_stream
from tests.kept import make_kept_folder, read_rows
from tests.privileges import without_dac_override
from tests.pulse import PulseServer, pulse_server  # noqa: F401  (fixture)
from trainer.streams import Stream, build_stream, write_wav

pytestmark = needs_espeak


def streamclf(*args: str, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*(prefix or []), sys.executable, "-m", "streamclf", *args],
                          capture_output=True, text=True, timeout=180)


def listen_keep(wav: Path, folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`listen` over ``wav`` as fast as possible, keeping into ``folder``."""
    return streamclf("listen", "--json", "--source", str(wav), "--speed", "0", "--keep", str(folder), *extra)


def events(stdout: str, kind: str) -> list[dict]:
    found = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return [e for e in found if e["type"] == kind]


def wav_files(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.wav")}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


@pytest.fixture(scope="module")
def ten_words(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Stream]:
    stream = ten_word_stream(np.random.default_rng(3))
    path = tmp_path_factory.mktemp("audio") / "ten-words.wav"
    write_wav(path, stream)
    return path, stream


@dataclass(frozen=True)
class KeptRun:
    folder: Path
    proc: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def kept_run(ten_words: tuple[Path, Stream], tmp_path_factory: pytest.TempPathFactory) -> KeptRun:
    folder = tmp_path_factory.mktemp("keep") / "kept"  # created by --keep itself
    return KeptRun(folder, listen_keep(ten_words[0], folder))


# ---------------------------------------------------------------------------- through the daemon


@pytest.mark.slow
def test_each_utterance_is_kept_as_a_wav_with_its_ranked_intents(kept_run: KeptRun) -> None:
    proc, folder = kept_run.proc, kept_run.folder
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    found = events(proc.stdout, "utterance")
    rows = read_rows(folder)
    assert len(found) == 10 and len(rows) == 10
    assert wav_files(folder) == {r["file_name"] for r in rows}
    for row, event in zip(rows, found, strict=True):
        info = sf.info(str(folder / row["file_name"]))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.duration == pytest.approx(event["end"] - event["start"], abs=0.01)
        assert float(row["duration"]) == pytest.approx(info.duration, abs=0.002)
        assert json.loads(row["intents"]) == event["intents"]
        assert row["predicted"] == event["intents"][0]["label"]
        assert float(row["score"]) == pytest.approx(event["intents"][0]["score"], abs=1e-4)
        assert (row["label"], row["reviewed"]) == ("", "false")
        assert row["accepted"] == ("true" if event["accepted"] else "false")
        assert row["time"].endswith("Z") and row["model"] == "commands"
    counters = events(proc.stdout, "status")[-1]["counters"]
    assert (counters["kept"], counters["keep_dropped"], counters["keep_pruned"]) == (10, 0, 0)


@pytest.mark.slow
def test_the_kept_folder_loads_as_an_audiofolder_and_as_training_data(kept_run: KeptRun) -> None:
    datasets = pytest.importorskip("datasets")
    from trainer.data import load_audio_folder
    from trainer.settings import DataSettings

    assert kept_run.proc.returncode == 0, kept_run.proc.stderr
    rows = read_rows(kept_run.folder)
    loaded = datasets.load_dataset("audiofolder", data_dir=str(kept_run.folder))
    assert loaded["train"].num_rows == len(rows)
    assert loaded["train"]["predicted"] == [r["predicted"] for r in rows]
    assert load_audio_folder(str(kept_run.folder), DataSettings())["train"].num_rows == len(rows)


@pytest.mark.slow
def test_a_second_listen_appends_and_the_bound_drops_the_oldest_first(
    kept_run: KeptRun, ten_words: tuple[Path, Stream], tmp_path: Path
) -> None:
    folder = tmp_path / "kept"
    shutil.copytree(kept_run.folder, folder)
    first = read_rows(folder)

    again = listen_keep(ten_words[0], folder)
    assert again.returncode == 0, again.stderr
    appended = read_rows(folder)
    assert appended[:10] == first and len(appended) == 20
    assert wav_files(folder) == {r["file_name"] for r in appended}

    bound_mb = 0.1
    bounded = listen_keep(ten_words[0], folder, "--keep-max-mb", str(bound_mb))
    assert bounded.returncode == 0, bounded.stderr
    left = read_rows(folder)
    assert 0 < len(left) < 10, "the bound keeps a few of the newest clips"
    ids = [int(r["file_name"].removesuffix(".wav").rsplit("-", 1)[1]) for r in left]
    assert ids == list(range(10 - len(left), 10)), "the oldest went first: the last run's last clips stay"
    assert not {r["file_name"] for r in appended} & {r["file_name"] for r in left}
    assert wav_files(folder) == {r["file_name"] for r in left}, "dropped clips' files are deleted"
    assert folder_bytes(folder) <= bound_mb * 1e6
    counters = events(bounded.stdout, "status")[-1]["counters"]
    assert (counters["kept"], counters["keep_pruned"]) == (10, 30 - len(left))


@pytest.mark.slow
def test_keeping_stops_with_one_warning_when_disk_space_runs_low(
    ten_words: tuple[Path, Stream], tmp_path: Path
) -> None:
    config = tmp_path / "streamclf.toml"
    config.write_text("[keep]\nmin_free_mb = 900000000.0\n")  # more than any disk has free
    folder = tmp_path / "kept"
    proc = listen_keep(ten_words[0], folder, "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    assert len(events(proc.stdout, "utterance")) == 10, "the daemon goes on"
    warnings = [line for line in proc.stderr.splitlines() if "stopped keeping" in line]
    assert len(warnings) == 1 and "keep.min_free_mb" in warnings[0], proc.stderr
    assert wav_files(folder) == set()


def test_an_unwritable_keep_folder_fails_at_start_up_in_one_line(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o500)
    for folder, prefix in ((not_a_folder / "kept", []), (read_only, without_dac_override())):
        proc = streamclf("listen", "--source", "-", "--keep", str(folder), "--log-level", "warning",
                         prefix=prefix)
        assert proc.returncode == 3, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"streamclf: keep folder {folder}: cannot"), lines
    assert list(read_only.iterdir()) == []


@pytest.fixture
def three_words_wav(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    words = ("yes", "stop", "go")
    stream = build_stream(spoken_words(words), list(words), [0.8, 0.8], rng, lead_s=1.0, tail_s=1.0)
    path = tmp_path / "three.wav"
    write_wav(path, stream)
    return path


@pytest.mark.slow
@pytest.mark.mic
def test_the_live_microphone_keeps_each_utterance(
    pulse_server: PulseServer, three_words_wav: Path, tmp_path: Path  # noqa: F811
) -> None:
    folder = tmp_path / "kept"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "streamclf", "listen", "--source", "mic", "--json", "--keep", str(folder)],
        env={**pulse_server.env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert daemon.stdout is not None
        for line in daemon.stdout:  # the first status with audio counted: capture runs
            event = json.loads(line)
            if event["type"] == "status" and event["counters"]["blocks"] > 0:
                break
        assert pulse_server.play(three_words_wav).wait(60) == 0
        time.sleep(1.0)
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=20)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
    assert daemon.returncode == 0, err
    found = events(out, "utterance")
    rows = read_rows(folder)
    assert len(found) == 3 and len(rows) == 3
    assert [r["predicted"] for r in rows] == [e["intents"][0]["label"] for e in found]
    assert all(r["source"].startswith("mic") for r in rows)
    assert wav_files(folder) == {r["file_name"] for r in rows}


# ---------------------------------------------------------------------------- the parts, in process


def test_oldest_to_drop() -> None:
    assert oldest_to_drop([10, 10, 10], fixed=5, incoming=10, max_bytes=100) == 0
    assert oldest_to_drop([10, 10, 10], fixed=5, incoming=10, max_bytes=34) == 2
    assert oldest_to_drop([10, 10, 10], fixed=5, incoming=10, max_bytes=15) == 3
    assert oldest_to_drop([10, 10, 10], fixed=5, incoming=20, max_bytes=15) is None


def test_changes_from_two_processes_are_both_kept(tmp_path: Path) -> None:
    """`listen --keep` adding while `review` relabels and discards: neither loses the other's rows."""
    names = make_kept_folder(tmp_path / "k", [("yes", [("yes", 0.9)]), ("go", [("go", 0.8)])])
    writer = KeepFolder.for_writing(str(tmp_path / "k"))
    writer.read()  # the writer has its own picture of the file now
    reviewer = KeepFolder.existing(str(tmp_path / "k"))
    assert reviewer.relabel(names[0], "no") and reviewer.discard(names[1])
    row = {"file_name": "new.wav", "predicted": "stop", "intents": "[]"}
    clip = NewClip(encode_wav(spoken_words(["stop"])[0], RATE), row)
    assert writer.add([clip], Bound(10**9, 0)).written == ("new.wav",)
    rows = read_rows(tmp_path / "k")
    assert [(r["file_name"], r["label"], r["reviewed"]) for r in rows] == [
        (names[0], "no", "true"), ("new.wav", "", "")]
    assert wav_files(tmp_path / "k") == {names[0], "new.wav"}


def test_columns_a_person_added_survive_every_rewrite(tmp_path: Path) -> None:
    names = make_kept_folder(tmp_path / "k", [("yes", [("yes", 0.9)])])
    metadata = tmp_path / "k" / "metadata.csv"
    header, row = metadata.read_text().splitlines()
    metadata.write_text(f"{header},speaker\n{row},anna\n")
    folder = KeepFolder.existing(str(tmp_path / "k"))
    assert folder.relabel(names[0], "yes")
    assert read_rows(tmp_path / "k")[0]["speaker"] == "anna"


class GatedFolder:
    """A KeepFolder stand-in whose ``add`` waits until the test opens the gate."""

    def __init__(self) -> None:
        self.path = Path("/nowhere")
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.ids: list[int] = []

    def add(self, clips: list[NewClip], bound: Bound) -> Added:
        self.entered.set()
        assert self.gate.wait(10)
        names = tuple(c.row["file_name"] for c in clips)
        self.ids += [int(Path(n).stem.rsplit("-", 1)[1]) for n in names]
        return Added(names, (), 0)


class Seg:
    def __init__(self) -> None:
        self.audio = np.zeros(RATE // 2, dtype=np.float32)
        self.sample_rate = RATE


def event(i: int) -> UtteranceEvent:
    return UtteranceEvent(i, "mic", 0.0, 0.5, (Intent("yes", 0.9),), "yes", True, 1.0, "commands")


@pytest.fixture
def gated() -> Iterator[GatedFolder]:
    folder = GatedFolder()
    yield folder
    folder.gate.set()


def test_a_live_source_never_waits_for_the_disk(gated: GatedFolder) -> None:
    keeper = Keeper(gated, KeepSettings(queue=2), wait=False)  # type: ignore[arg-type]
    keeper.start()
    keeper.offer(Seg(), event(0))
    assert gated.entered.wait(5)  # the writer is stuck on the disk from here on
    began = time.monotonic()
    for i in range(1, 5):
        keeper.offer(Seg(), event(i))  # type: ignore[arg-type]
    assert time.monotonic() - began < 0.5
    assert keeper.dropped == 2, "the full queue dropped its oldest"
    gated.gate.set()
    keeper.close(timeout=5)
    assert gated.ids == [0, 3, 4]
    assert keeper.counters() == {"kept": 3, "keep_dropped": 2, "keep_pruned": 0}


def test_a_file_source_waits_for_room_instead_of_dropping(gated: GatedFolder) -> None:
    keeper = Keeper(gated, KeepSettings(queue=1), wait=True)  # type: ignore[arg-type]
    keeper.start()
    keeper.offer(Seg(), event(0))  # type: ignore[arg-type]
    assert gated.entered.wait(5)
    keeper.offer(Seg(), event(1))  # type: ignore[arg-type]
    third = threading.Thread(target=keeper.offer, args=(Seg(), event(2)))
    third.start()
    third.join(0.3)
    assert third.is_alive(), "the third waits while the queue is full"
    gated.gate.set()
    third.join(5)
    keeper.close(timeout=5)
    assert gated.ids == [0, 1, 2] and keeper.dropped == 0


def test_not_utterances_are_not_kept(tmp_path: Path) -> None:
    keeper = Keeper(KeepFolder.for_writing(str(tmp_path)), KeepSettings(), wait=False)
    keeper.start()
    keeper.offer(Seg(), None)  # type: ignore[arg-type]  (a dropped segment)
    keeper.close(timeout=5)
    assert keeper.kept == 0 and wav_files(tmp_path) == set()
    assert not os.path.exists(tmp_path / "metadata.csv")


class FailingFolder:
    path = Path("/nowhere")

    def add(self, clips: list[NewClip], bound: Bound) -> Added:
        raise OSError(28, "No space left on device")


def test_a_failed_write_stops_keeping_in_one_warning_and_never_holds_up_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keeper = Keeper(FailingFolder(), KeepSettings(queue=1), wait=True)  # type: ignore[arg-type]
    keeper.start()
    began = time.monotonic()
    for i in range(20):  # a file source: it would wait for room if the writer were stuck
        keeper.offer(Seg(), event(i))  # type: ignore[arg-type]
    keeper.close(timeout=5)
    assert time.monotonic() - began < 5
    warnings = [r for r in caplog.records if "stopped keeping" in r.getMessage()]
    assert len(warnings) == 1 and "No space left" in warnings[0].getMessage()
    assert keeper.kept == 0
