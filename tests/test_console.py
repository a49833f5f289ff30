"""The Rich live view, rendered with a recording console from events on a real bus."""

from __future__ import annotations

import threading

from rich.console import Console

from streamclf.bus import EventBus
from streamclf.events import ErrorEvent, Intent, SpeechEvent, StatusEvent, UtteranceEvent
from streamclf.sinks.console import BAR_WIDTH, ConsoleView, meter

COUNTERS = {"segments": 12, "overflows": 3, "dropped_events": 5, "classified": 11, "samples": 123456}


def utterance(seg_id: int, intents: tuple[tuple[str, float], ...], threshold: float = 0.5) -> UtteranceEvent:
    ranked = tuple(Intent(label, score) for label, score in intents)
    accepted = ranked[0].score >= threshold
    return UtteranceEvent(
        id=seg_id,
        source="mic:USB Audio",
        start=seg_id * 1.5,
        end=seg_id * 1.5 + 0.8,
        intents=ranked,
        label=ranked[0].label if accepted else None,
        accepted=accepted,
        latency_ms=9.0,
        model="tiny-commands",
    )


def make_view(level: float = -20.0, history: int = 8) -> tuple[ConsoleView, EventBus, Console]:
    bus = EventBus()
    console = Console(record=True, width=100, color_system=None)
    view = ConsoleView(
        bus.subscribe("console", 64),
        source="mic:USB Audio",
        model="tiny-commands",
        level=lambda: level,
        counters=lambda: dict(COUNTERS),
        console=console,
        history=history,
    )
    return view, bus, console


def rendered(view: ConsoleView, console: Console) -> str:
    console.print(view.render())
    return console.export_text()


def feed(view: ConsoleView) -> None:
    for event in view.subscription.drain():
        view.handle(event)


def test_empty_view_shows_listening_meter_and_counters() -> None:
    view, _, console = make_view(level=-30.0)
    text = rendered(view, console)
    assert "listening" in text and "no utterances yet" in text
    assert "mic:USB Audio" in text and "tiny-commands" in text
    assert "-30.0 dBFS" in text
    assert "█" * 15 + "░" * 15 in text  # −30 dBFS: half of the −60…0 meter
    for line in ("segments 12", "overflows 3", "dropped events 5", "classified 11"):
        assert line in text
    assert "123456" not in text  # raw sample counts belong in status events, not the view


def test_utterances_show_ranked_intents_as_score_bars() -> None:
    view, bus, console = make_view()
    bus.publish(SpeechEvent("start", 0.1))
    bus.publish(SpeechEvent("end", 0.9))
    bus.publish(utterance(0, (("stop", 0.9), ("go", 0.05))))
    bus.publish(utterance(1, (("yes", 0.4), ("no", 0.35), ("stop", 0.25))))
    feed(view)
    text = rendered(view, console)
    assert "✓ stop" in text  # accepted
    assert "✗ rejected" in text  # below the threshold
    assert "stop " + "█" * 18 + "░" * 2 + " 0.90" in text
    assert "go   " + "█" * 1 + "░" * 19 + " 0.05" in text
    assert "yes  " + "█" * 8 + "░" * 12 + " 0.40" in text
    assert "no   " + "█" * 7 + "░" * 13 + " 0.35" in text
    assert text.index("✗ rejected") < text.index("✓ stop")  # newest first


def test_speaking_state_follows_speech_events() -> None:
    view, bus, console = make_view()
    bus.publish(SpeechEvent("start", 2.0))
    feed(view)
    assert "speaking" in rendered(view, console)
    bus.publish(SpeechEvent("end", 2.5))
    feed(view)
    assert "listening" in rendered(view, console)  # export_text clears the recording


def test_history_keeps_only_the_last_utterances() -> None:
    view, bus, console = make_view(history=2)
    for i, label in enumerate(("alpha", "bravo", "charlie")):
        bus.publish(utterance(i, ((label, 0.8), ("other", 0.2))))
    feed(view)
    text = rendered(view, console)
    assert "alpha" not in text and "bravo" in text and "charlie" in text


def test_errors_and_status_are_shown() -> None:
    view, bus, console = make_view()
    bus.publish(StatusEvent("mic:Other", "reloaded-model", "reloading", {}))
    bus.publish(ErrorEvent("inference_failed", "segment 4: ValueError: boom", segment_id=4))
    feed(view)
    text = rendered(view, console)
    assert "reloading" in text and "reloaded-model" in text and "mic:Other" in text
    assert "inference_failed: segment 4: ValueError: boom" in text


def test_meter_spans_minus_sixty_to_zero_dbfs() -> None:
    assert meter(-120.0).plain.count("█") == 0
    assert meter(0.0).plain.count("█") == 30
    assert meter(+3.0).plain.count("█") == 30
    assert meter(-45.0).plain.count("█") == 8


def test_run_consumes_its_subscription_until_stopped() -> None:
    view, bus, console = make_view()
    stop = threading.Event()
    thread = threading.Thread(target=view.run, args=(stop,))
    thread.start()
    bus.publish(utterance(7, (("seven", 0.97), ("eleven", 0.02))))
    idle = threading.Event()
    for _ in range(600):  # until the view's thread has taken the event (then it folds it in)
        if view.subscription.pending() == 0:
            break
        idle.wait(0.05)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    text = rendered(view, console)
    assert "✓ seven" in text
    assert "seven  " + "█" * round(0.97 * BAR_WIDTH) in text
