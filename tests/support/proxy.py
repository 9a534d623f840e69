"""A TCP proxy whose link can be cut and restored: a network outage between the agent and
the broker while the broker (and the test's subscriber) stay up, like a cut uplink."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

from tests.support.ports import free_port


class CuttableProxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.target_port = target_port
        self.port = free_port(host)
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.connections = 0
        self._frozen: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> Self:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        """Drop every connection and refuse new ones until restore()."""
        with self._lock:
            listener, self._listener = self._listener, None
            socks, self._socks = self._socks, set()
        for s in [*socks, *([listener] if listener else [])]:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def freeze(self) -> None:
        """Silently drop every byte on the current connections, leaving them open: a link
        that died without a FIN or RST (a pulled cable, a NAT that forgot us). New
        connections work."""
        with self._lock:
            self._frozen = set(self._socks)

    def restore(self) -> None:
        self.start()

    def close(self) -> None:
        self.cut()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((self.host, self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._socks.update((client, upstream))
                self.connections += 1
            pairs = ((client, upstream, self.editor(True)), (upstream, client, self.editor(False)))
            for a, b, edit in pairs:
                threading.Thread(target=self._pump, args=(a, b, edit), daemon=True).start()

    def editor(self, to_server: bool) -> Callable[[bytes], bytes] | None:
        """For each new connection and direction: a function that turns the bytes received
        into the bytes passed on (None: all of them, unchanged). It runs on the thread that
        reads them, so sleeping in it holds back what follows, as a slow link does."""
        return None

    def _pump(
        self, src: socket.socket, dst: socket.socket, edit: Callable[[bytes], bytes] | None
    ) -> None:
        try:
            while data := src.recv(65536):
                if edit is not None:
                    data = edit(data)
                if data and src not in self._frozen:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
