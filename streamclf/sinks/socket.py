"""Event sockets: other processes subscribe to the JSON-lines stream over unix or TCP.

``unix:///run/streamclf/events.sock`` or ``tcp://HOST:PORT`` (empty host: 127.0.0.1; a
non-loopback host needs ``output.allow_remote``). Every client gets its own bus subscription
(``overflow="close"``) the moment it is accepted, so it receives every event from then on.
One thread per server multiplexes the listener and all clients with a selector and
non-blocking sends: a client that stops reading fills its kernel buffer, then its bounded
subscription, and is disconnected (counted in ``disconnected``); a client that vanishes is
dropped. Neither slows the pipeline nor the other clients.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import selectors
import socket
import stat
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, Union
from urllib.parse import urlsplit

from ..bus import EventBus, Subscription
from ..config import MqttSettings
from ..errors import StartupError
from ..events import encode
from .mqtt_uri import MqttAddress, is_mqtt_uri, parse_mqtt_uri

if TYPE_CHECKING:
    from .mqtt import MqttPublisher

log = logging.getLogger(__name__)

_POLL_S = 0.01
"""Select timeout, in seconds, while flushing at shutdown."""
_IDLE_POLL_S = 0.5
"""Select timeout, in seconds, otherwise: each published event wakes the selector itself."""
_CHUNK_BYTES = 64 * 1024
"""Most encoded bytes held outside the subscription per client (besides the kernel buffer)."""
_UNIX_PATH_MAX = 107


@dataclass(frozen=True)
class UnixAddress:
    path: Path

    def __str__(self) -> str:
        return f"unix://{self.path}"


@dataclass(frozen=True)
class TcpAddress:
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


def remove_stale_socket(path: Path, shown: str) -> None:
    """Remove a unix socket a dead process left at ``path``. StartupError (naming ``shown``) when
    something else is there, or a live process still serves it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StartupError(f"{shown}: cannot inspect {path}: {exc.strerror}") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise StartupError(f"{shown}: {path} exists and is not a socket; not replacing it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(os.fspath(path))
    except OSError:
        pass  # nobody listening: a leftover from a process that did not clean up
    else:
        raise StartupError(f"{shown}: another process is already serving {path}")
    finally:
        probe.close()
    log.info("removing stale socket %s", path)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def parse_any_publish_uri(uri: str) -> UnixAddress | TcpAddress | MqttAddress:
    """``unix:///path``, ``tcp://HOST:PORT`` or ``mqtt(s)://HOST[:PORT]/TOPIC``; anything else
    raises StartupError."""
    if is_mqtt_uri(uri):
        return parse_mqtt_uri(uri)
    return parse_publish_uri(uri)


def parse_publish_uri(uri: str) -> UnixAddress | TcpAddress:
    """``unix:///path`` or ``tcp://HOST:PORT`` (event sockets); anything else raises StartupError."""
    parts = urlsplit(uri)
    if is_mqtt_uri(uri):
        raise StartupError(f"{parts.scheme}://…: an MQTT broker, not an event socket "
                           "(subscribe to it with an MQTT client such as mosquitto_sub)")
    if parts.scheme == "unix":
        path = (parts.netloc + parts.path) if parts.netloc else parts.path
        if not path.startswith("/"):
            raise StartupError(f"publish {uri!r}: a unix socket needs an absolute path (unix:///run/x.sock)")
        if len(os.fsencode(path)) > _UNIX_PATH_MAX:
            raise StartupError(f"publish {uri!r}: socket path longer than {_UNIX_PATH_MAX} bytes")
        return UnixAddress(Path(path))
    if parts.scheme == "tcp":
        try:
            port = parts.port
        except ValueError as exc:
            raise StartupError(f"publish {uri!r}: {exc}") from None
        if port is None:
            raise StartupError(f"publish {uri!r}: a tcp address needs a port (tcp://127.0.0.1:7890)")
        if parts.path not in ("", "/"):
            raise StartupError(f"publish {uri!r}: unexpected path {parts.path!r} after the port")
        return TcpAddress(parts.hostname or "127.0.0.1", port)
    scheme = parts.scheme or "(none)"
    raise StartupError(f"publish {uri!r}: unknown scheme {scheme}; use unix:///PATH, tcp://HOST:PORT "
                       "or mqtt://HOST[:PORT]/TOPIC")


def _loopback_only(host: str, port: int) -> bool:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


_P = TypeVar("_P", bound=Union["SocketPublisher", "MqttPublisher"])
Publisher = Union["SocketPublisher", "MqttPublisher"]
"""What ``start_publishers`` returns: ``uri``, ``start()``, ``close(flush_timeout_s)``, ``clients``,
``buffer_events``, ``counters()``."""


class _Client:
    """One connected subscriber: its socket, its subscription, bytes not yet sent."""

    def __init__(self, sock: socket.socket, sub: Subscription, peer: str) -> None:
        self.sock = sock
        self.sub = sub
        self.peer = peer
        self.pending = b""
        self.want_write = False

    def refill(self) -> None:
        """Move queued events into ``pending`` up to one chunk."""
        parts = [self.pending] if self.pending else []
        size = len(self.pending)
        while size < _CHUNK_BYTES:
            event = self.sub.get(timeout=0)
            if event is None:
                break
            data = encode(event).encode()
            parts.append(data)
            size += len(data)
        self.pending = b"".join(parts)


class SocketPublisher:
    """Serves the event stream on one unix or TCP address until :meth:`close`."""

    def __init__(self, uri: str, bus: EventBus, *, buffer_events: int = 1000,
                 allow_remote: bool = False) -> None:
        self.uri = uri
        self.bus = bus
        self.buffer_events = buffer_events
        self.allow_remote = allow_remote
        self.target = parse_publish_uri(uri)
        self.accepted = 0
        """Clients accepted since start."""
        self.disconnected = 0
        """Clients cut off because they stopped reading and their buffer filled."""
        self.vanished = 0
        """Clients that closed or reset their end."""
        self.sent_bytes = 0
        self._listener: socket.socket | None = None
        self._bound_inode: tuple[int, int] | None = None
        self._clients: dict[int, _Client] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)  # publishing must never block on a busy server thread
        self._stop = threading.Event()
        self._flush_deadline = 0.0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    # ---- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Bind and start serving; raises StartupError with a clear message on failure."""
        if isinstance(self.target, UnixAddress):
            self._listener = self._bind_unix(self.target.path)
        else:
            self._listener = self._bind_tcp(self.target)
        self._listener.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._serve, name=f"publish {self.address}", daemon=True)
        self._thread.start()
        log.info("publishing events on %s", self.address)

    def close(self, flush_timeout_s: float = 0.5) -> None:
        """Stop accepting, send what clients still have queued (up to ``flush_timeout_s``), close."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._stop_thread(flush_timeout_s)
        self._close_listener()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _stop_thread(self, flush_timeout_s: float) -> None:
        assert self._thread is not None
        self._flush_deadline = time.monotonic() + flush_timeout_s
        self._stop.set()
        self._wake()
        self._thread.join(flush_timeout_s + 2.0)
        self._thread = None
        with self._lock:
            remaining = list(self._clients.values())
        for client in remaining:
            self._drop(client, reason=None)

    def __enter__(self) -> SocketPublisher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- what others read ---------------------------------------------------------------

    @property
    def address(self) -> str:
        """The bound address as a URI (the real port when tcp port 0 was asked for)."""
        if isinstance(self.target, TcpAddress) and self._listener is not None:
            host, port = self._listener.getsockname()[:2]
            return str(TcpAddress(host, port))
        return str(self.target)

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def counters(self) -> dict[str, int]:
        """For status events: connected clients and those cut off for not reading."""
        return {"subscribers": self.clients, "disconnected_subscribers": self.disconnected}

    # ---- binding -------------------------------------------------------------------------

    def _bind_unix(self, path: Path) -> socket.socket:
        try:
            path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError(f"publish {self.uri}: cannot create {path.parent}: {exc.strerror}") from None
        remove_stale_socket(path, f"publish {self.uri}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.bind(os.fspath(path))
            # nobody can connect before listen(), so the mode is set before anyone could use it
            os.chmod(path, 0o660)
            st = os.stat(path)
            self._bound_inode = (st.st_dev, st.st_ino)
            sock.listen(64)
        except OSError as exc:
            sock.close()
            raise StartupError(f"publish {self.uri}: cannot bind: {exc.strerror}") from None
        return sock

    def _bind_tcp(self, target: TcpAddress) -> socket.socket:
        if not self.allow_remote and not _loopback_only(target.host, target.port):
            raise StartupError(
                f"publish {self.uri}: {target.host} is not a loopback address; "
                "set output.allow_remote = true to accept connections from other machines")
        try:
            infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise StartupError(f"publish {self.uri}: cannot resolve {target.host}: {exc.strerror}") from None
        family, _, _, _, sockaddr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            sock.listen(64)
        except OSError as exc:
            sock.close()
            raise StartupError(f"publish {self.uri}: cannot bind: {exc.strerror}") from None
        return sock

    def _close_listener(self) -> None:
        if self._listener is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self._listener)
        self._listener.close()
        self._listener = None
        self._remove_socket_file()

    def _remove_socket_file(self) -> None:
        """Unlink our unix socket path, unless someone else has put a file there since."""
        if isinstance(self.target, UnixAddress) and self._bound_inode is not None:
            path = self.target.path
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if (st.st_dev, st.st_ino) == self._bound_inode:
                    path.unlink()
            self._bound_inode = None

    # ---- the server thread ---------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _serve(self) -> None:
        while True:
            stopping = self._stop.is_set()
            if stopping and self._listener is not None:
                self._close_listener()  # no new clients from here on
            with self._lock:
                clients = list(self._clients.values())
            for client in clients:
                self._pump(client)
            if stopping and (time.monotonic() >= self._flush_deadline or not self._anything_to_send()):
                return
            timeout = _POLL_S if stopping else _IDLE_POLL_S  # publishing wakes the selector
            for key, mask in self._selector.select(timeout):
                sock = key.fileobj
                if sock is self._listener:
                    self._accept()
                elif sock is self._wake_r:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(4096)
                elif isinstance(key.data, _Client):
                    if mask & selectors.EVENT_READ:
                        self._read_from(key.data)
                    if mask & selectors.EVENT_WRITE and key.data.sock.fileno() != -1:
                        self._pump(key.data)

    def _anything_to_send(self) -> bool:
        with self._lock:
            return any(c.pending or c.sub.pending() for c in self._clients.values())

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            conn, peer = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.warning("publish %s: accept failed: %s", self.address, exc)
            return
        conn.setblocking(False)
        peer_name = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "unix client"
        sub = self.bus.subscribe(f"socket {peer_name}", maxsize=self.buffer_events, overflow="close")
        sub.on_event = self._wake
        client = _Client(conn, sub, peer_name)
        with self._lock:
            self._clients[id(client)] = client
            self.accepted += 1
        self._selector.register(conn, selectors.EVENT_READ, client)
        log.debug("publish %s: subscriber %s connected", self.address, peer_name)

    def _read_from(self, client: _Client) -> None:
        """Clients have nothing to say; reading only tells us when they hang up."""
        try:
            data = client.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client, reason="vanished")

    def _pump(self, client: _Client) -> None:
        """Send as much as the client's kernel buffer takes, without ever blocking."""
        if client.sub.overflowed:
            self._drop(client, reason="slow")
            return
        while True:
            if not client.pending:
                client.refill()
                if not client.pending:
                    break
            try:
                sent = client.sock.send(client.pending, socket.MSG_NOSIGNAL)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.EBADF):
                    log.warning("publish %s: send to %s failed: %s", self.address, client.peer, exc)
                self._drop(client, reason="vanished")
                return
            self.sent_bytes += sent
            client.pending = client.pending[sent:]
        self._set_write_interest(client, bool(client.pending))

    def _set_write_interest(self, client: _Client, want: bool) -> None:
        if want == client.want_write or client.sock.fileno() == -1:
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want else 0)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.modify(client.sock, events, client)
            client.want_write = want

    def _drop(self, client: _Client, reason: str | None) -> None:
        """Forget a client; ``reason`` "slow" or "vanished" is counted and logged."""
        with self._lock:
            if self._clients.pop(id(client), None) is None:
                return
        if reason == "slow":
            self.disconnected += 1
            log.warning("publish %s: subscriber %s stopped reading; disconnected after %d events buffered",
                        self.address, client.peer, self.buffer_events)
        elif reason == "vanished":
            self.vanished += 1
            log.debug("publish %s: subscriber %s went away", self.address, client.peer)
        self.bus.unsubscribe(client.sub)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(client.sock)
        with contextlib.suppress(OSError):
            client.sock.close()


@dataclass(frozen=True)
class BrokerOptions:
    """What an MQTT publisher needs beyond its URI."""

    settings: MqttSettings | None = None
    labels: tuple[str, ...] = ()
    model: str = ""


def make_publisher(uri: str, bus: EventBus, *, buffer_events: int = 1000,
                   allow_remote: bool = False) -> SocketPublisher:
    """A publisher for ``unix://`` or ``tcp://`` URIs (not yet started); other schemes raise StartupError."""
    return SocketPublisher(uri, bus, buffer_events=buffer_events, allow_remote=allow_remote)


def make_any_publisher(uri: str, bus: EventBus, *, buffer_events: int = 1000, allow_remote: bool = False,
                       broker: BrokerOptions | None = None) -> Publisher:
    """A publisher for ``unix://``, ``tcp://`` or ``mqtt(s)://`` URIs (not yet started)."""
    if is_mqtt_uri(uri):
        from .mqtt import MqttPublisher

        b = broker or BrokerOptions()
        return MqttPublisher(uri, bus, b.settings, labels=b.labels, model=b.model)
    return SocketPublisher(uri, bus, buffer_events=buffer_events, allow_remote=allow_remote)


def start_publishers(uris: Sequence[str], bus: EventBus, *, buffer_events: int = 1000,
                     allow_remote: bool = False) -> list[SocketPublisher]:
    """Start one socket publisher per distinct URI; on any failure close those started and raise."""
    publishers = [make_publisher(uri, bus, buffer_events=buffer_events, allow_remote=allow_remote)
                  for uri in dict.fromkeys(uris)]  # every URI is checked before anything is bound
    return _start_all(publishers)


def start_any_publishers(uris: Sequence[str], bus: EventBus, *, buffer_events: int = 1000,
                         allow_remote: bool = False, broker: BrokerOptions | None = None) -> list[Publisher]:
    """:func:`start_publishers` for sockets and MQTT brokers alike."""
    for uri in dict.fromkeys(uris):  # every URI is checked before anything is bound or connected
        parse_any_publish_uri(uri)
    return _start_all([make_any_publisher(uri, bus, buffer_events=buffer_events, allow_remote=allow_remote,
                                          broker=broker) for uri in dict.fromkeys(uris)])


def _start_all(publishers: Sequence[_P]) -> list[_P]:
    started: list[_P] = []
    try:
        for publisher in publishers:
            publisher.start()
            started.append(publisher)
    except BaseException:
        for publisher in started:
            publisher.close(flush_timeout_s=0.0)
        raise
    return started
