"""MQTT sink: each event as JSON on ``TOPIC/<type>``, through paho-mqtt, never blocking the pipeline.

The sink reads its own bus subscription in a thread of its own and keeps a bounded buffer of
events not yet handed to the broker: while the broker is away (paho reconnects with backoff, 1 s
up to ``mqtt.reconnect_max_s``) events wait there, and when it is full the oldest is dropped and
counted. At most :data:`MAX_IN_FLIGHT` events are with paho and not yet written (QoS 0) or
acknowledged (QoS 1 and 2); QoS 0 events paho had not written when the connection broke go back
to the buffer. An event written to a broker that dies before reading it is lost with QoS 0; QoS 1
resends it. With ``mqtt.discovery`` Home Assistant's discovery messages go out on every connect
(:mod:`streamclf.sinks.discovery`).
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from ..bus import EventBus
from ..config import MqttSettings
from ..errors import StartupError
from ..events import Event, StatusEvent, UtteranceEvent, encode, is_command
from . import discovery
from .mqtt_uri import MqttAddress, parse_mqtt_uri

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 64
"""Events handed to paho and not yet written or acknowledged; more wait in the bounded buffer."""
_HANDOVER_EVENTS = 1000
"""Bound of the bus subscription the sender thread empties into its buffer."""
_IDLE_WAIT_S = 0.5
_EARLY_ACK_S = 10.0
_BUSY_WAIT_S = 0.05
ENV_USERNAME = "STREAMCLF_MQTT_USERNAME"
ENV_PASSWORD = "STREAMCLF_MQTT_PASSWORD"


def credentials(settings: MqttSettings) -> tuple[str | None, str | None]:
    """User and password: the config file's, else the environment's."""
    user = settings.username if settings.username is not None else os.environ.get(ENV_USERNAME)
    password = settings.password if settings.password is not None else os.environ.get(ENV_PASSWORD)
    return user or None, password or None


class MqttPublisher:
    """Publishes the event stream to one broker until :meth:`close` (same interface as the socket sinks)."""

    def __init__(self, uri: str, bus: EventBus, settings: MqttSettings | None = None, *,
                 labels: Sequence[str] = (), model: str = "") -> None:
        self.uri = uri
        self.bus = bus
        self.settings = settings or MqttSettings()
        self.target: MqttAddress = parse_mqtt_uri(uri)
        self.topics = discovery.Topics(self.target.topic)
        self.commands = tuple(label for label in labels if is_command(label))
        self.model = model
        self.buffer_events = self.settings.buffer_events
        self.sent = 0
        """Events paho wrote (QoS 0) or the broker acknowledged (QoS 1, 2)."""
        self.dropped = 0
        """Events dropped from the full buffer while the broker was away or slow."""
        self.connects = 0
        self._buffer: collections.deque[Event] = collections.deque()
        self._in_flight: dict[int, Event] = {}
        self._early_acks: dict[int, float] = {}
        """Acks that came before ``_send`` filed the message's id (or of non-event messages)."""
        self._streams: set[str] = set()
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._stop = threading.Event()
        # the subscription only hands events to the sender thread; the buffer's bound is buffer_events
        self._sub = bus.subscribe(f"mqtt {self.target}", maxsize=max(_HANDOVER_EVENTS, self.buffer_events),
                                  overflow="drop")
        self._client = self._make_client()
        self._thread = threading.Thread(target=self._run, name=f"mqtt {self.target}", daemon=True)
        self._closed = False
        self._failing = False

    # ---- life cycle -------------------------------------------------------------------

    def _make_client(self) -> Any:
        import paho.mqtt.client as paho

        s = self.settings
        client_id = s.client_id or f"streamclf-{socket.gethostname()}"[:64]
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        user, password = credentials(s)
        if user is not None or password is not None:
            client.username_pw_set(user, password)
        if self.target.tls:
            try:
                client.tls_set(ca_certs=s.ca_file)
            except (OSError, ValueError) as exc:
                raise StartupError(f"publish {self.target}: mqtt.ca_file: {exc}") from None
        client.will_set(self.topics.availability, "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=max(1, round(s.reconnect_max_s)))
        client.max_queued_messages_set(MAX_IN_FLIGHT * 2)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_connect_fail = self._on_connect_fail
        return client

    def start(self) -> None:
        """Connect in the background (an absent broker is retried, not a start-up failure)."""
        self._client.connect_async(self.target.host, self.target.port, keepalive=self.settings.keepalive_s)
        self._client.loop_start()
        self._thread.start()
        log.info("publishing events to %s", self.target)

    def close(self, flush_timeout_s: float = 0.5) -> None:
        """Send what is buffered (up to ``flush_timeout_s`` while connected), say offline, disconnect."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + flush_timeout_s
        self._sub.close()
        while self._connected.is_set() and self._pending() and time.monotonic() < deadline:
            time.sleep(0.01)
        self._stop.set()
        self._thread.join(max(0.1, deadline - time.monotonic()) + 1.0)
        if self._connected.is_set():
            info = self._client.publish(self.topics.availability, "offline", qos=1, retain=True)
            info.wait_for_publish(max(0.05, deadline - time.monotonic()))
        self._client.disconnect()
        self._client.loop_stop()
        self.bus.unsubscribe(self._sub)
        with self._lock:
            self.dropped += len(self._buffer) + self._sub.pending()
            self._buffer.clear()

    # ---- what others read -------------------------------------------------------------

    @property
    def address(self) -> str:
        return str(self.target)

    @property
    def clients(self) -> int:
        """1 while connected to the broker."""
        return int(self._connected.is_set())

    def counters(self) -> dict[str, int]:
        with self._lock:
            buffered = len(self._buffer) + len(self._in_flight)
        return {"mqtt_connected": self.clients, "mqtt_sent": self.sent,
                "mqtt_dropped": self.dropped + self._sub.dropped, "mqtt_buffered": buffered,
                "mqtt_connects": self.connects}

    def _pending(self) -> bool:
        with self._lock:
            return bool(self._buffer or self._in_flight or self._sub.pending())

    # ---- paho's callbacks (its network thread) -----------------------------------------

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("mqtt %s: broker refused the connection: %s", self.target, reason)
            return
        self.connects += 1
        self._failing = False
        log.info("mqtt %s: connected", self.target)
        client.publish(self.topics.availability, "online", qos=1, retain=True)
        if self.settings.discovery:
            self._announce_all(client)
        self._connected.set()

    def _on_connect_fail(self, _client: Any, _userdata: Any) -> None:
        if not self._failing:  # once per streak of failures: the log is not flooded
            self._failing = True
            log.warning("mqtt %s: cannot reach the broker (or TLS refused it); retrying with backoff",
                        self.target)

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if self.settings.qos == 0:  # paho forgets QoS 0 messages it had not written: send them again
            with self._lock:
                lost = [self._in_flight[mid] for mid in sorted(self._in_flight)]
                self._in_flight.clear()
                self._buffer.extendleft(reversed(lost))
                self._trim()
        if was and not self._stop.is_set():
            log.warning("mqtt %s: connection lost (%s); reconnecting with backoff", self.target, reason)

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, _reason: Any, _props: Any) -> None:
        with self._lock:
            if self._in_flight.pop(mid, None) is not None:
                self.sent += 1
            else:
                self._early_acks[mid] = time.monotonic()

    # ---- discovery ---------------------------------------------------------------------

    def _announce_all(self, client: Any) -> None:
        s = self.settings
        message = discovery.status_sensor(s.discovery_prefix, s.node_id, self.topics, self.model)
        client.publish(message.topic, message.payload, qos=1, retain=message.retain)
        with self._lock:
            streams = sorted(self._streams)
        for source in streams:
            self._announce(client, source)

    def _announce(self, client: Any, source: str) -> None:
        s = self.settings
        message = discovery.stream_entity(s.discovery_prefix, s.node_id, self.topics, source, self.commands,
                                          self.model)
        client.publish(message.topic, message.payload, qos=1, retain=message.retain)

    def _note_streams(self, event: Event) -> None:
        """Announce each stream the first time an event names it."""
        names: list[str] = []
        if isinstance(event, StatusEvent):
            names = list(event.streams or ())
        elif isinstance(event, UtteranceEvent) or getattr(event, "type", "") == "speech":
            names = [str(getattr(event, "source", "") or "")]
        for name in names:
            if name and name not in self._streams:
                with self._lock:
                    self._streams.add(name)
                if self.settings.discovery and self._connected.is_set():
                    self._announce(self._client, name)

    # ---- the sender thread -------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            busy = self._connected.is_set() and bool(self._buffer)
            event = self._sub.get(timeout=_BUSY_WAIT_S if busy else _IDLE_WAIT_S)
            for item in ([event] if event is not None else []) + self._sub.drain():
                self._take(item)
                if self._connected.is_set():
                    self._send_buffered()
            if self._connected.is_set():
                self._send_buffered()
            if event is None and self._sub.closed and not self._pending():
                return

    def _take(self, event: Event) -> None:
        self._note_streams(event)
        with self._lock:
            self._buffer.append(event)
            self._trim()

    def _trim(self) -> None:
        """Drop the oldest buffered events beyond the bound (caller holds the lock)."""
        while len(self._buffer) > self.buffer_events:
            self._buffer.popleft()
            self.dropped += 1

    def _send_buffered(self) -> None:
        while self._connected.is_set():
            with self._lock:
                if not self._buffer or len(self._in_flight) >= MAX_IN_FLIGHT:
                    return
                event = self._buffer.popleft()
            if not self._send(event):
                with self._lock:
                    self._buffer.appendleft(event)
                return

    def _send(self, event: Event) -> bool:
        """Hand one event to paho; False when it is not connected after all."""
        import paho.mqtt.client as paho

        info = self._client.publish(self.topics.events(event.type), encode(event).rstrip("\n"),
                                    qos=self.settings.qos, retain=isinstance(event, StatusEvent))
        if info.rc != paho.MQTT_ERR_SUCCESS:
            return False
        with self._lock:
            if self._early_acks.pop(info.mid, None) is not None:
                self.sent += 1
            else:
                self._in_flight[info.mid] = event
            if len(self._early_acks) > MAX_IN_FLIGHT:  # acks of discovery messages: forget old ones
                old = time.monotonic() - _EARLY_ACK_S
                self._early_acks = {m: t for m, t in self._early_acks.items() if t > old}
        if isinstance(event, UtteranceEvent):
            self._send_stream_event(event)
        return True

    def _send_stream_event(self, event: UtteranceEvent) -> None:
        message = discovery.stream_event(self.topics, event)
        if message is not None and self.settings.discovery:
            self._client.publish(message.topic, message.payload, qos=self.settings.qos, retain=False)
