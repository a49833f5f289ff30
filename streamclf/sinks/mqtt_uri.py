"""``mqtt://HOST[:PORT]/TOPIC`` and ``mqtts://…``: the broker address of an MQTT publish target.

Parsing needs no MQTT library, so a bad address fails start-up before anything is loaded.
Credentials never come from the URI: a command line is readable by every user of the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import StartupError

SCHEMES = ("mqtt", "mqtts")
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
CREDENTIALS_HINT = (
    "set mqtt.username and mqtt.password in the config file, or STREAMCLF_MQTT_USERNAME and "
    "STREAMCLF_MQTT_PASSWORD in the environment"
)


@dataclass(frozen=True)
class MqttAddress:
    """A broker and the topic under which events are published."""

    host: str
    port: int
    topic: str
    tls: bool

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}/{self.topic}"


def is_mqtt_uri(uri: str) -> bool:
    return urlsplit(uri).scheme in SCHEMES


def parse_mqtt_uri(uri: str) -> MqttAddress:
    """The address in ``uri``; StartupError (exit 3) with one clear line when it is not usable."""
    parts = urlsplit(uri)
    if parts.scheme not in SCHEMES:
        raise StartupError(f"publish {uri!r}: not an mqtt:// or mqtts:// address")
    if parts.username is not None or parts.password is not None:
        raise StartupError(
            f"publish {parts.scheme}://…: no user or password in the address; {CREDENTIALS_HINT}")
    try:
        port = parts.port
    except ValueError:
        raise StartupError(f"publish {uri!r}: bad port (a number from 1 to 65535)") from None
    if port == 0:
        raise StartupError(f"publish {uri!r}: bad port (a number from 1 to 65535)")
    if not parts.hostname:
        raise StartupError(f"publish {uri!r}: no broker host (mqtt://HOST[:PORT]/TOPIC)")
    topic = parts.path.lstrip("/").rstrip("/")
    if not topic:
        raise StartupError(f"publish {uri!r}: no topic (mqtt://HOST[:PORT]/TOPIC, e.g. mqtt://broker/streamclf)")
    if parts.query or "#" in uri or any(c in topic for c in "+\0"):
        raise StartupError(f"publish {uri!r}: the topic may not hold +, # or a query")
    return MqttAddress(parts.hostname, port or DEFAULT_PORTS[parts.scheme], topic, parts.scheme == "mqtts")
