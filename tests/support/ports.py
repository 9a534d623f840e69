"""Ephemeral port allocation for test-owned network services."""

from __future__ import annotations

import socket

LOCALHOST = "127.0.0.1"


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port on ``host`` that was free a moment ago.

    The kernel picks the port (bind to port 0), we read it back and release
    it.  Another process may grab it before the caller binds it, so callers
    that start servers should be prepared to retry with a new port when the
    bind fails (``Broker.start`` does this on its first start).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def port_accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    """Return True when a TCP connection to ``host:port`` succeeds right now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
