"""`make demo` without a microphone: the demo recording through the real daemon, headless, to the end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from streamclf.demo import bundled_model_dir, demo_recording


@pytest.mark.slow
def test_demo_runs_headless_to_the_end() -> None:
    truth = json.loads((bundled_model_dir() / "demo.json").read_text())["words"]
    assert demo_recording().is_file()
    proc = subprocess.run(
        [sys.executable, "-m", "streamclf.demo", "--no-mic", "--speed", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    found = [e for e in events if e["type"] == "utterance"]
    assert len(found) == len(truth)
    for event, word in zip(found, truth, strict=True):
        assert event["start"] < word["end"] and event["end"] > word["start"]  # each event covers its word
    top1 = sum(e["intents"][0]["label"] == w["text"] for e, w in zip(found, truth, strict=True))
    # a synthetic voice held out of training (flite slt): the model learnt from real speakers and
    # other synthetic voices; all but "house" (taken for "down", a word with 19 real clips) come out right
    pairs = [(e["intents"][0]["label"], w["text"]) for e, w in zip(found, truth, strict=True)]
    assert top1 >= len(truth) - 2, pairs
    assert events[-1]["type"] == "status" and events[-1]["state"] == "stopped"
