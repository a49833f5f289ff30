"""MQTT against a real broker (Debian's mosquitto on a free loopback port): events, Home Assistant
discovery, a broker that goes away and comes back, and bad addresses."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamclf.bus import EventBus
from streamclf.config import MqttSettings
from streamclf.events import Intent, UtteranceEvent, decode
from streamclf.sinks.mqtt import MqttPublisher
from tests.audio import needs_espeak, spoken_words
from tests.mosquitto import Mosquitto, Subscriber, needs_mosquitto, password_file, tls_files
from tests.wyoming_client import free_port, stream_audio
from trainer.streams import build_stream

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [needs_mosquitto]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def utterance(i: int, label: str = "yes", source: str = "wyoming:10.0.0.7") -> UtteranceEvent:
    return UtteranceEvent(id=i, source=source, start=float(i), end=i + 0.5, intents=(Intent(label, 0.9),),
                          label=label, accepted=True, latency_ms=1.0, model="m")


def ids_on(sub: Subscriber, topic: str) -> set[int]:
    return {json.loads(m.payload)["id"] for m in sub.on(topic)}


def wait_until(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("qos", [0, 1])
def test_events_outlive_a_broker_restart_or_are_counted_as_dropped(broker: Mosquitto, qos: int) -> None:
    bus = EventBus()
    sink = MqttPublisher(f"mqtt://127.0.0.1:{broker.port}/home/cmds", bus,
                         MqttSettings(qos=qos, buffer_events=10, reconnect_max_s=2.0))
    with Subscriber(broker.port, "home/cmds/#") as sub:
        sink.start()
        wait_until(lambda: sink.counters()["mqtt_connected"] == 1)
        for i in range(20):
            bus.publish(utterance(i))
        wait_until(lambda: sink.counters()["mqtt_sent"] == 20)
        sub.wait_for(lambda _msgs: len(ids_on(sub, "home/cmds/utterance")) == 20)
        broker.stop()
        wait_until(lambda: sink.counters()["mqtt_connected"] == 0)
        for i in range(20, 50):  # 30 events while the broker is away: the buffer holds the last 10
            bus.publish(utterance(i))
        wait_until(lambda: sink.counters()["mqtt_dropped"] == 20)
        broker.start()
        wait_until(lambda: sink.counters()["mqtt_connected"] == 1)  # reconnected with backoff
        for i in range(50, 70):
            bus.publish(utterance(i))
        sub.wait_for(lambda _msgs: len(ids_on(sub, "home/cmds/utterance")) >= 50)
        sink.close()
    received = ids_on(sub, "home/cmds/utterance")
    assert received == set(range(20)) | set(range(40, 70))  # the oldest 20 of the outage were dropped
    assert sink.counters()["mqtt_dropped"] == 20 and sink.connects == 2
    assert [m.payload for m in sub.on("home/cmds/availability")][-1] == b"offline"


def test_a_rejected_utterance_and_discovery_messages(broker: Mosquitto) -> None:
    bus = EventBus()
    settings = MqttSettings(discovery=True, node_id="kitchen")
    sink = MqttPublisher(f"mqtt://127.0.0.1:{broker.port}/streamclf", bus, settings,
                         labels=("yes", "stop", "_unknown_"), model="commands")
    with Subscriber(broker.port, "#") as sub:
        sink.start()
        wait_until(lambda: sink.counters()["mqtt_connected"] == 1)
        bus.publish(utterance(0, "stop", source="mic:USB"))
        rejected = (Intent("yes", 0.3),)
        bus.publish(UtteranceEvent(1, "mic:USB", 2.0, 2.4, rejected, None, False, 1.0, "commands"))
        sub.wait_for(lambda _m: len(sub.on("streamclf/utterance")) == 2
                     and bool(sub.on("streamclf/stream/mic_usb")))
        sink.close()
    events = [decode(m.payload) for m in sub.on("streamclf/utterance")]
    assert [(e.id, e.label) for e in events if isinstance(e, UtteranceEvent)] == [(0, "stop"), (1, None)]
    fired = [json.loads(m.payload) for m in sub.on("streamclf/stream/mic_usb")]
    assert [f["event_type"] for f in fired] == ["stop"]  # the rejected one fires nothing
    entity = json.loads(sub.on("homeassistant/event/kitchen/mic_usb/config")[0].payload)
    assert entity["event_types"] == ["yes", "stop"] and entity["state_topic"] == "streamclf/stream/mic_usb"
    sensor = json.loads(sub.on("homeassistant/sensor/kitchen/status/config")[0].payload)
    assert sensor["state_topic"] == "streamclf/status" and sensor["device"]["identifiers"] == ["kitchen"]


@needs_espeak
@pytest.mark.slow
def test_serve_publishes_a_streams_commands_with_discovery(broker: Mosquitto, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[output]\nstatus_interval_s = 0.5\n[mqtt]\ndiscovery = true\n"
                      "[model]\nthreshold = 0.3\n")
    port = free_port()
    words = ("yes", "stop", "go")
    rng = np.random.default_rng(0)
    stream = build_stream(spoken_words(words), list(words), [0.8, 0.9], rng)
    with Subscriber(broker.port, "#") as sub:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamclf", "serve", "--uri", f"tcp://127.0.0.1:{port}", "--json",
             "--config", str(config), "--publish", f"mqtt://127.0.0.1:{broker.port}/streamclf"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            result = asyncio.run(stream_audio(port, stream.audio, rate=16000))
            sub.wait_for(lambda _m: len(sub.on("streamclf/stream/wyoming_127_0_0_1")) == 3)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert [d.data["name"] for d in result.detections] == list(words)
    fired = [json.loads(m.payload)["event_type"] for m in sub.on("streamclf/stream/wyoming_127_0_0_1")]
    assert fired == list(words)
    entity = json.loads(sub.on("homeassistant/event/streamclf/wyoming_127_0_0_1/config")[0].payload)
    assert set(words) <= set(entity["event_types"]) and "_unknown_" not in entity["event_types"]
    statuses = [json.loads(m.payload) for m in sub.on("streamclf/status")]
    assert any("wyoming:127.0.0.1" in (s.get("streams") or {}) for s in statuses)
    assert b"Traceback" not in err


def test_credentials_come_from_the_config_file_or_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    broker = Mosquitto(tmp_path, password_file=password_file(tmp_path / "passwd", "satellite", "s3cret-pw"))
    broker.start()
    try:
        uri = f"mqtt://127.0.0.1:{broker.port}/streamclf"
        monkeypatch.setenv("STREAMCLF_MQTT_PASSWORD", "s3cret-pw")
        good = MqttPublisher(uri, EventBus(), MqttSettings(username="satellite"))
        wrong = MqttPublisher(uri, EventBus(), MqttSettings(username="satellite", password="not-it"))
        for sink in (good, wrong):
            sink.start()
        wait_until(lambda: good.counters()["mqtt_connected"] == 1)
        wait_until(lambda: "refused the connection" in caplog.text)
        assert wrong.counters()["mqtt_connected"] == 0
        for sink in (good, wrong):
            sink.close()
    finally:
        broker.stop()
    assert "s3cret-pw" not in caplog.text and "not-it" not in caplog.text


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_mqtts_checks_the_broker_against_the_configured_authority(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tls = tls_files(tmp_path)
    broker = Mosquitto(tmp_path, tls=tls)
    broker.start()
    try:
        uri = f"mqtts://127.0.0.1:{broker.port}/streamclf"
        trusted = MqttPublisher(uri, EventBus(), MqttSettings(ca_file=str(tls.ca)))
        stranger = MqttPublisher(uri, EventBus(), MqttSettings())  # the system's authorities: not ours
        for sink in (trusted, stranger):
            sink.start()
        wait_until(lambda: trusted.counters()["mqtt_connected"] == 1)
        wait_until(lambda: "cannot reach the broker (or TLS refused it)" in caplog.text)
        assert stranger.counters()["mqtt_connected"] == 0
        for sink in (trusted, stranger):
            sink.close()
    finally:
        broker.stop()


@pytest.mark.parametrize(("uri", "says"), [
    ("mqtt://127.0.0.1:1883", "no topic"),
    ("mqtt://127.0.0.1:1883/", "no topic"),
    ("mqtt://127.0.0.1:99999/streamclf", "bad port"),
    ("mqtt://127.0.0.1:port/streamclf", "bad port"),
    ("mqtts://me:secret@127.0.0.1/streamclf", "no user or password in the address"),
    ("mqtt://127.0.0.1/home/#", "may not hold"),
])
def test_bad_mqtt_addresses_fail_with_one_line_and_exit_3(uri: str, says: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "streamclf", "serve", "--publish", uri], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 1 and says in proc.stderr, proc.stderr
    assert "secret" not in proc.stderr


@needs_espeak
@pytest.mark.slow
def test_listen_publishes_the_same_events_to_mqtt_as_on_stdout(broker: Mosquitto, tmp_path: Path) -> None:
    words = ("yes", "stop")
    stream = build_stream(spoken_words(words), list(words), [0.8], np.random.default_rng(1))
    wav = tmp_path / "words.wav"
    sf.write(wav, stream.audio, 16000)
    config = tmp_path / "config.toml"
    config.write_text("[model]\nthreshold = 0.3\n")
    with Subscriber(broker.port, "streamclf/#", client_id="listen-test") as sub:
        proc = subprocess.run(
            [sys.executable, "-m", "streamclf", "listen", "--source", str(wav), "--speed", "0", "--json",
             "--config", str(config), "--publish", f"mqtt://127.0.0.1:{broker.port}/streamclf"],
            capture_output=True, text=True, timeout=120, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert proc.returncode == 0, proc.stderr
        printed = [e for e in map(decode, proc.stdout.splitlines()) if isinstance(e, UtteranceEvent)]
        sub.wait_for(lambda _m: len(sub.on("streamclf/utterance")) >= len(printed))
    published = [json.loads(m.payload) for m in sub.on("streamclf/utterance")]
    assert [p["label"] for p in published] == [e.label for e in printed] == list(words)
    assert [p["start"] for p in published] == [e.start for e in printed]
