"""Where `streamclf serve` listens: ``tcp://HOST:PORT`` or ``unix:///PATH``.

A non-loopback TCP host needs ``serve.allow_remote`` (``--allow-remote``), as a non-loopback
``--publish`` address needs ``output.allow_remote``. A unix path already taken by something that
is not a stale socket is never replaced.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import StartupError
from ..sinks.socket import _loopback_only, remove_stale_socket

_UNIX_PATH_MAX = 107


@dataclass(frozen=True)
class ServeAddress:
    """``unix`` set for a unix socket, else ``host`` and ``port``."""

    uri: str
    host: str = ""
    port: int = 0
    unix: Path | None = None


def parse_serve_uri(uri: str, *, allow_remote: bool = False) -> ServeAddress:
    """The address in ``uri``; StartupError (exit 3) with one clear line when it is not usable."""
    parts = urlsplit(uri)
    if parts.scheme == "unix":
        path = parts.netloc + parts.path
        if not path.startswith("/"):
            raise StartupError(f"serve {uri!r}: a unix socket needs an absolute path (unix:///run/x.sock)")
        if len(os.fsencode(path)) > _UNIX_PATH_MAX:
            raise StartupError(f"serve {uri!r}: socket path longer than {_UNIX_PATH_MAX} bytes")
        return ServeAddress(uri, unix=Path(path))
    if parts.scheme != "tcp":
        raise StartupError(f"serve {uri!r}: use tcp://HOST:PORT or unix:///PATH")
    try:
        port = parts.port
    except ValueError:
        raise StartupError(f"serve {uri!r}: bad port (a number from 0 to 65535)") from None
    if port is None or not parts.hostname:
        raise StartupError(f"serve {uri!r}: a tcp address needs a host and a port (tcp://127.0.0.1:10400)")
    if parts.path not in ("", "/"):
        raise StartupError(f"serve {uri!r}: unexpected path {parts.path!r} after the port")
    if not allow_remote and not _loopback_only(parts.hostname, port):
        raise StartupError(f"serve {uri!r}: {parts.hostname} is not a loopback address; add --allow-remote "
                           "(or serve.allow_remote = true) to let other machines stream to it")
    return ServeAddress(uri, host=parts.hostname, port=port)


def clear_stale_socket(path: Path) -> None:
    """Remove a socket left by a dead process at ``path``; StartupError for anything else there."""
    remove_stale_socket(path, "serve")
