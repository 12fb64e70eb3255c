"""A TCP proxy in front of a real service, which a test can break to simulate an outage.

``cut()`` resets every connection and refuses new ones (a service that is down);
``blackhole()`` keeps every connection open but forwards no byte, in either direction,
until ``restore()`` (a network that drops packets, or a paused service: clients see no
error, only silence, and must time out by themselves). Bytes sent into the blackhole are
held and delivered on ``restore()``, as TCP would retransmit them.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = False
        self._flowing = threading.Event()
        self._flowing.set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self._cut:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        with suppress(OSError):
            while True:
                self._flowing.wait()
                data = src.recv(65536)
                if not data:
                    break
                self._flowing.wait()  # read just before a blackhole: held until restore
                dst.sendall(data)
        with suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def blackhole(self) -> None:
        """Stop forwarding bytes; keep every connection (and new ones) open."""
        self._flowing.clear()

    def restore(self) -> None:
        """Forward again what was held and everything after."""
        self._flowing.set()

    def cut(self) -> None:
        self._cut = True
        self._flowing.set()
        with self._lock:
            for s in self._open:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def close(self) -> None:
        self.cut()
        self.server.close()
