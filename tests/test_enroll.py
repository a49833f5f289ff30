"""`streamclf enroll`: the user's own voice, take by take, into an audiofolder.

Three levels: the folder, the keys and the session loop on their own (a scripted listener); the
real command in a subprocess on the PulseAudio virtual microphone (``tests/pulse.py``), with
espeak-ng speaking into it; and the bad inputs, each one line on stderr and exit 3.
"""

from __future__ import annotations

import csv
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

from streamclf.enroll.folder import COLUMNS, EnrolFolder
from streamclf.enroll.keys import Keys
from streamclf.enroll.prompts import Prompt, load_prompts
from streamclf.enroll.session import EnrolOptions, Session
from streamclf.enroll.view import Asking, EnrolView
from streamclf.errors import EXIT_RUNTIME, EXIT_STARTUP, StartupError, StreamclfError
from streamclf.segment import Segment
from tests.audio import RATE, needs_espeak, spoken_words
from tests.pulse import PulseServer, pulse_server  # noqa: F401  (fixture)
from trainer.streams import build_stream

VOCAB = '[labels]\nstop = "stop"\ngo = ["go", "go!"]\n_unknown_ = ["banana"]\n_background_ = []\n'


def write_vocab(folder: Path, text: str = VOCAB) -> Path:
    path = folder / "commands.toml"
    path.write_text(text, encoding="utf-8")
    return path


def metadata(folder: Path) -> list[dict[str, str]]:
    with (folder / "metadata.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        return list(reader)


def wavs(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.wav"))


def duration(path: Path) -> float:
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (RATE, 1, "PCM_16"), info
    return info.frames / info.samplerate


# --------------------------------------------------------------------------- the parts


def test_prompts_are_the_spoken_labels_in_file_order(tmp_path: Path) -> None:
    assert load_prompts(write_vocab(tmp_path)) == (Prompt("stop", "stop"), Prompt("go", "go"))


def test_the_vocabulary_is_read_without_the_train_extras(tmp_path: Path) -> None:
    """streamclf reaches into trainer/ for its vocabulary parser only, which needs no train extra."""
    from tests.test_import_graph import import_graph

    graph = import_graph()
    reached = {dep for module, deps in graph.items() if module.startswith("streamclf.")
               for dep in deps if dep.startswith("trainer")}
    assert reached == {"trainer.vocab"}
    assert all(dep.startswith("streamclf") for dep in graph["trainer.vocab"])
    extras = ("datasets", "evaluate", "accelerate", "torchcodec", "matplotlib", "livekit", "onnx")
    probe = (f"import sys; from pathlib import Path; from streamclf.enroll.prompts import load_prompts; "
             f"load_prompts(Path({str(write_vocab(tmp_path))!r})); "
             f"print([m for m in {extras!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_folder_appends_continues_numbering_and_rewrites_metadata_each_take(tmp_path: Path) -> None:
    out = tmp_path / "voice"
    folder = EnrolFolder(out)
    first = folder.add("stop", "stop", "ann", np.full(8000, 0.1, np.float32))
    assert [row["file_name"] for row in metadata(out)] == ["stop/stop_1.wav"]  # written at once
    folder.add("go", "go", "ann", np.zeros(4000, np.float32))
    again = EnrolFolder(out)  # a second enrolment into the same folder
    assert again.rows == folder.rows
    third = again.add("stop", "stop", "bob", np.zeros(1600, np.float32))
    assert (third.file_name, third.take) == ("stop/stop_2.wav", 2)
    again.remove(third)
    assert again.next_take("stop") == 2  # a discarded take's number is used again
    (out / "go" / "go_7.wav").write_bytes(b"")  # a file the metadata lost: never overwritten
    assert again.next_take("go") == 8
    assert [r["file_name"] for r in metadata(out)] == ["stop/stop_1.wav", "go/go_1.wav"]
    assert metadata(out)[0] == {"file_name": "stop/stop_1.wav", "label": "stop", "text": "stop",
                                "speaker": "ann", "take": "1"}
    assert duration(out / first.file_name) == pytest.approx(0.5)
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]


def test_a_take_that_cannot_be_written_is_one_error_and_the_metadata_stays(tmp_path: Path) -> None:
    folder = EnrolFolder(tmp_path)
    folder.add("stop", "stop", "ann", np.zeros(1600, np.float32))
    before = (tmp_path / "metadata.csv").read_text()
    (tmp_path / "go").write_text("a file where the label's folder should be")
    with pytest.raises(StreamclfError, match=r"go_1\.wav: cannot write: .*still lists the 1 takes"):
        folder.add("go", "go", "ann", np.zeros(1600, np.float32))
    assert (tmp_path / "metadata.csv").read_text() == before
    assert [row.label for row in folder.rows] == ["stop"]


@pytest.mark.slow
def test_the_folder_reads_as_an_audiofolder_in_datasets_and_the_trainer(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    from trainer.data import load_audio_folder
    from trainer.settings import DataSettings

    folder = EnrolFolder(tmp_path)
    for label in ("stop", "go", "stop"):
        folder.add(label, label, "ann", np.zeros(RATE // 2, np.float32))
    loaded = datasets.load_dataset("audiofolder", data_dir=str(tmp_path))["train"]
    assert sorted(loaded["label"]) == ["go", "stop", "stop"]
    assert set(loaded.column_names) >= {"audio", "label", "text", "speaker", "take"}
    trained = load_audio_folder(str(tmp_path), DataSettings())["train"]
    assert sorted(trained["label"]) == ["go", "stop", "stop"]


def test_a_metadata_file_enrolment_did_not_write_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "metadata.csv").write_text("file_name,label\na.wav,x\n")
    with pytest.raises(StartupError, match="enrol into another folder"):
        EnrolFolder(tmp_path)
    assert (tmp_path / "metadata.csv").read_text() == "file_name,label\na.wav,x\n"


def test_keys_from_a_pipe_are_single_characters_without_newlines() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as stream, Keys(stream) as keys:
        assert not keys.interactive
        assert keys.poll() is None  # nothing typed: never blocks
        os.write(write_end, b"r\n Q\n")
        assert [keys.poll(), keys.poll(), keys.poll()] == ["r", "q", None]
        os.close(write_end)
        assert keys.poll() is None  # end of input


def test_the_panel_shows_the_phrase_the_take_the_meter_and_the_keys() -> None:
    console = Console(file=open(os.devnull, "w"), record=True, width=100)  # noqa: SIM115
    view = EnrolView(console, lambda: -30.0, lambda: True)
    view.ask(Asking("go", "go [bold]now", 2, 5, "go/go_7.wav", waiting_for_enter=True))
    console.print(view.render())
    view.recording()
    console.print(view.render())
    shown = console.export_text()
    assert 'Say  "go [bold]now"   take 2 of 5 → go/go_7.wav' in shown  # the phrase as written
    assert "press Enter, then speak" in shown and "Enter: record · r: redo the last take · q: quit" in shown
    assert "● hearing you" in shown and "-30.0 dBFS" in shown


class ScriptedListener:
    """Stands in for the microphone: each poll hands out the next scripted item (a Segment, or a key
    to 'type' at that moment through ``keys``, or None for silence)."""

    device = "scripted"
    speaking = False

    def __init__(self, script: list[Segment | str | None], typed: list[str]) -> None:
        self.script = list(script)
        self.typed = typed

    def poll(self, timeout: float) -> Segment | None:
        item = self.script.pop(0) if self.script else None
        if isinstance(item, str):
            self.typed.append(item)
            return None
        return item

    def discard(self) -> None:
        pass


class ScriptedKeys:
    interactive = False

    def __init__(self, typed: list[str]) -> None:
        self.typed = typed

    def poll(self) -> str | None:
        return self.typed.pop(0) if self.typed else None


def utterance(seconds: float, value: float) -> Segment:
    audio = np.full(round(seconds * RATE), value, np.float32)
    return Segment(0, 0, len(audio), RATE, audio, "silence", time.monotonic())


def run_session(tmp_path: Path, script: list[Segment | str | None], takes: int = 2,
                timeout_s: float = 5.0) -> tuple[Session, str]:
    typed: list[str] = []
    console = Console(file=open(os.devnull, "w"), record=True, width=200)  # noqa: SIM115
    listener = ScriptedListener(script, typed)
    view = EnrolView(console, lambda: -60.0, lambda: False)
    options = EnrolOptions(takes=takes, timeout_s=timeout_s, retries=1, speaker="ann")
    session = Session((Prompt("stop", "stop"),), EnrolFolder(tmp_path), listener,  # type: ignore[arg-type]
                      ScriptedKeys(typed), view, options)  # type: ignore[arg-type]
    session.run()
    return session, console.export_text()


def test_r_in_the_session_discards_the_last_take_and_its_number_is_used_again(tmp_path: Path) -> None:
    session, shown = run_session(tmp_path, [utterance(1.0, 0.5), "r", utterance(0.3, 0.1),
                                            utterance(0.4, 0.2)])
    assert "discarded stop/stop_1.wav: say it again" in shown
    assert [t.file_name for t in session.saved] == ["stop/stop_1.wav", "stop/stop_2.wav"]
    assert wavs(tmp_path) == ["stop/stop_1.wav", "stop/stop_2.wav"]
    assert duration(tmp_path / "stop/stop_1.wav") == pytest.approx(0.3)  # the second try, not the first
    assert [r["take"] for r in metadata(tmp_path)] == ["1", "2"]


def test_q_stops_and_keeps_what_was_saved(tmp_path: Path) -> None:
    session, _ = run_session(tmp_path, [utterance(0.5, 0.1), "q", utterance(0.5, 0.1)], takes=3)
    assert [t.take for t in session.saved] == [1]
    assert len(metadata(tmp_path)) == 1


# --------------------------------------------------------------------------- bad input


def enroll(*args: str, env: dict[str, str] | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamclf", "enroll", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.parametrize(("vocab", "said"), [
    ('[labels]\nstop = "stop"\ngo = "go"\nstop = "halt"\n', "duplicate label"),
    ('[labels]\nstop = ""\ngo = "go"\n', "empty phrase"),
    ('[labels]\nstop = ["stop", " "]\n', "empty phrase"),
    ('[labels]\n_unknown_ = ["banana"]\n_background_ = []\n', "no spoken labels"),
    ('[labels]\n"../up" = "up"\n', "cannot name a folder"),
])
def test_a_bad_vocabulary_is_one_line_and_exit_3(tmp_path: Path, vocab: str, said: str) -> None:
    out = tmp_path / "voice"
    done = enroll("--vocab", str(write_vocab(tmp_path, vocab)), "--out", str(out), "--device", "none")
    assert done.returncode == EXIT_STARTUP, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("streamclf: ") and said in lines[0], done.stderr
    assert not out.exists()


def test_no_microphone_is_one_line_and_exit_3(tmp_path: Path) -> None:
    client_conf = tmp_path / "client.conf"
    client_conf.write_text("autospawn = no\n")
    env = {**os.environ, "PULSE_SERVER": f"unix:{tmp_path / 'no-server'}",
           "PULSE_CLIENTCONFIG": str(client_conf)}
    out = tmp_path / "voice"
    done = enroll("--vocab", str(write_vocab(tmp_path)), "--out", str(out), "--device", "no such microphone",
                  env=env)
    assert done.returncode == EXIT_STARTUP, done.stderr
    ours = [line for line in done.stderr.splitlines() if line.startswith("streamclf:")]
    assert len(ours) == 1 and "no such microphone" in ours[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


# --------------------------------------------------------------------------- the virtual microphone


class Enrolment:
    """`streamclf enroll` on the virtual microphone, its stderr read line by line as it comes."""

    def __init__(self, server: PulseServer, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamclf", "enroll", "--device", "pulse", *args],
            env={**server.env, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        assert self.proc.stderr is not None
        threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))
            self._new.put(line)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """The first line from now on that matches ``pattern``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._new.get(timeout=left)
            except queue.Empty:
                break
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"no {pattern!r} on stderr; saw {self.lines[-8:]}, rc {self.proc.poll()}")

    def type(self, keys: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(keys)
        self.proc.stdin.flush()

    def finish(self, timeout: float = 60.0) -> tuple[int, str, str]:
        stdout, _ = self.proc.communicate(timeout=timeout)
        time.sleep(0.1)
        return self.proc.returncode, stdout, "\n".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def enrolments() -> Iterator[list[Enrolment]]:
    started: list[Enrolment] = []
    yield started
    for one in started:
        one.kill()


def speech_wav(folder: Path, name: str, texts: list[str], gap_s: float = 1.0) -> tuple[Path, list[float]]:
    """``texts`` spoken one after another with ``gap_s`` of silence; their durations in seconds."""
    words = spoken_words(texts)
    stream = build_stream(words, texts, [gap_s] * (len(texts) - 1), np.random.default_rng(0),
                          lead_s=0.5, tail_s=1.0)
    path = folder / name
    sf.write(path, stream.audio, RATE, subtype="PCM_16")
    return path, [len(w) / RATE for w in words]


def play(server: PulseServer, wav: Path) -> None:
    assert server.play(wav).wait(60) == 0


def assert_speech(path: Path, spoken_s: float) -> None:
    """A take holds the word: about its length (plus the segmenter's edges), and loud."""
    audio, _ = sf.read(path, dtype="float32")
    assert spoken_s - 0.1 <= len(audio) / RATE <= spoken_s + 0.35, (path, len(audio) / RATE, spoken_s)
    assert 20 * np.log10(np.sqrt(np.mean(audio**2)) + 1e-12) > -40.0, path


@pytest.mark.mic
@pytest.mark.slow
@needs_espeak
def test_enroll_two_labels_twice_through_the_virtual_microphone(
    pulse_server: PulseServer, enrolments: list[Enrolment], tmp_path: Path  # noqa: F811
) -> None:
    wav, spoken = speech_wav(tmp_path, "four.wav", ["stop", "stop", "go", "go"])
    out = tmp_path / "voice"
    run = Enrolment(pulse_server, "--vocab", str(write_vocab(tmp_path)), "--out", str(out), "--takes", "2",
                    "--timeout", "20", "--speaker", "ann")
    enrolments.append(run)
    run.wait_for(r'say "stop"  \(take 1 of 2 → stop/stop_1\.wav\)')
    play(pulse_server, wav)
    rc, stdout, stderr = run.finish()
    assert rc == 0, stderr
    assert stdout == ""  # stdout is for JSON; the enrolment talks on stderr
    assert "Traceback" not in stderr
    assert wavs(out) == ["go/go_1.wav", "go/go_2.wav", "stop/stop_1.wav", "stop/stop_2.wav"]
    rows = metadata(out)
    assert [(r["file_name"], r["label"], r["text"], r["speaker"], r["take"]) for r in rows] == [
        ("stop/stop_1.wav", "stop", "stop", "ann", "1"), ("stop/stop_2.wav", "stop", "stop", "ann", "2"),
        ("go/go_1.wav", "go", "go", "ann", "1"), ("go/go_2.wav", "go", "go", "ann", "2"),
    ]
    for row, seconds in zip(rows, spoken, strict=True):
        assert_speech(out / row["file_name"], seconds)
    assert "banana" not in stderr and "_background_" not in stderr  # the _name_ classes are not asked for
    assert "enrolled 4 takes (stop 2, go 2)" in stderr


@pytest.mark.mic
@pytest.mark.slow
@needs_espeak
def test_r_discards_the_last_take_and_asks_for_it_again(
    pulse_server: PulseServer, enrolments: list[Enrolment], tmp_path: Path  # noqa: F811
) -> None:
    long_wav, (long_s,) = speech_wav(tmp_path, "long.wav", ["seven hundred and seventy seven"])
    short_wav, short_s = speech_wav(tmp_path, "short.wav", ["seven", "seven"])
    assert long_s > short_s[0] + 0.8
    out = tmp_path / "voice"
    EnrolFolder(out).add("seven", "seven", "ann", np.zeros(RATE // 4, np.float32))  # an earlier session
    vocab = write_vocab(tmp_path, '[labels]\nseven = "seven"\n')
    run = Enrolment(pulse_server, "--vocab", str(vocab), "--out", str(out), "--takes", "2", "--timeout", "20")
    enrolments.append(run)
    run.wait_for(r"take 1 of 2 → seven/seven_2\.wav")  # numbering goes on after the earlier take
    play(pulse_server, long_wav)
    saved = run.wait_for(r"saved seven/seven_2\.wav \((\d+\.\d+) s\)")
    assert float(saved.group(1)) > long_s - 0.1
    run.wait_for(r"take 2 of 2 → seven/seven_3\.wav")
    run.type("r\n")
    run.wait_for(r"discarded seven/seven_2\.wav")
    run.wait_for(r"take 1 of 2 → seven/seven_2\.wav")
    assert wavs(out) == ["seven/seven_1.wav"]  # gone from the disk as soon as it was discarded
    play(pulse_server, short_wav)
    rc, _, stderr = run.finish()
    assert rc == 0, stderr
    assert wavs(out) == ["seven/seven_1.wav", "seven/seven_2.wav", "seven/seven_3.wav"]
    assert [r["take"] for r in metadata(out)] == ["1", "2", "3"]
    for name, seconds in zip(("seven_2.wav", "seven_3.wav"), short_s, strict=True):
        assert_speech(out / "seven" / name, seconds)  # the new takes, not the discarded long one


@pytest.mark.mic
def test_nothing_heard_is_said_asked_again_then_given_up_keeping_the_folder(
    pulse_server: PulseServer, tmp_path: Path  # noqa: F811
) -> None:
    out = tmp_path / "voice"
    done = enroll("--vocab", str(write_vocab(tmp_path)), "--out", str(out), "--device", "pulse",
                  "--timeout", "1", "--retries", "1", env=pulse_server.env)
    assert done.returncode == EXIT_RUNTIME, done.stderr
    told = [line for line in done.stderr.splitlines() if line.startswith("nothing heard in 1 s")]
    assert told == ["nothing heard in 1 s: check the microphone (pulse) and speak closer"], done.stderr
    assert done.stderr.count('say "stop"') == 2  # asked again after the first miss
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("streamclf: nothing heard in 2 tries of 1 s"), done.stderr
    assert wavs(out) == [] and not (out / "metadata.csv").exists()


@pytest.mark.mic
def test_a_device_that_is_not_there_is_one_line_and_exit_3(
    pulse_server: PulseServer, tmp_path: Path  # noqa: F811
) -> None:
    out = tmp_path / "voice"
    done = enroll("--vocab", str(write_vocab(tmp_path)), "--out", str(out), "--device", "no such microphone",
                  env=pulse_server.env)
    assert done.returncode == EXIT_STARTUP, done.stderr
    assert "Traceback" not in done.stderr
    ours = [line for line in done.stderr.splitlines() if line.startswith("streamclf:")]
    assert len(ours) == 1 and "'no such microphone' matches nothing" in ours[0], done.stderr
    assert "pulse" in ours[0]  # the devices there are, to choose from
    assert not out.exists()

