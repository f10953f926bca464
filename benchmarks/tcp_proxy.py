"""Fault injection: a TCP proxy that can cut a server off and bring it back.

In the fault tests and benchmarks the stack reaches PostgreSQL, Redis and RabbitMQ through a
:class:`TcpProxy`, so a test can take "the database" or "the broker" down for everyone in the
stack (open connections are reset, new ones refused) and restart it, without touching the shared
servers others use.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading

log = logging.getLogger(__name__)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``; :meth:`down` cuts every connection, :meth:`up` accepts again."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        """Listen on a free loopback port (``self.port``) and start forwarding."""
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._accepting = True
        self._stop = threading.Event()
        threading.Thread(target=self._serve, name=f"proxy-{self.port}", daemon=True).start()

    def down(self) -> None:
        """The server "crashes": open connections are reset and new ones refused until :meth:`up`."""
        with self._lock:
            self._accepting = False
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    sock.close()  # linger 0: the peer sees a reset, as when a server process dies

    def up(self) -> None:
        """The server is back: new connections are forwarded again."""
        with self._lock:
            self._accepting = True

    def close(self) -> None:
        """Stop the proxy and every connection."""
        self._stop.set()
        self.down()
        self._listener.close()

    def _serve(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                accepting = self._accepting
            if not accepting:
                with contextlib.suppress(OSError):
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        try:
            sel.register(a, selectors.EVENT_READ, b)
            sel.register(b, selectors.EVENT_READ, a)
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.5):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            sel.close()
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
            with self._lock:
                self._pairs = [p for p in self._pairs if p != (a, b)]
