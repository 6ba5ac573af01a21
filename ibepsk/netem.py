"""Network tools for demos and benchmarks: a delaying proxy and a first-flight recorder.

The proxy adds a fixed one-way delay, to show round trips on loopback.

0-RTT saves a round trip; on loopback a round trip costs microseconds, so the
demo and the benchmark put this proxy between client and server (e.g. 20 ms
each way) to make the saving visible. Bytes keep their order and timing
relative to each other; only latency is added.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from typing import Any

_CHUNK = 65536
_STOP = b""


class _ProxiedConnection:
    """Both sockets of one proxied connection, closed once both directions have ended."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.sockets = (client, upstream)
        self._open_directions = 2
        self._lock = threading.Lock()

    def direction_ended(self) -> None:
        with self._lock:
            self._open_directions -= 1
            if self._open_directions > 0:
                return
        self._close()

    def _close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv on it
            sock.close()


class DelayProxy:
    """Listens on 127.0.0.1 and forwards each connection to ``target`` with ``delay`` seconds each way."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self.target = target
        self.delay = delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="delay-proxy", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return host, port

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closing.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _ProxiedConnection(client, upstream)  # each ends by itself, data still delayed included
            self._pipe(client, upstream, connection)
            self._pipe(upstream, client, connection)

    def _pipe(self, source: socket.socket, sink: socket.socket, connection: _ProxiedConnection) -> None:
        pending: queue.Queue[tuple[float, bytes]] = queue.Queue()
        threading.Thread(target=self._read, args=(source, pending), daemon=True).start()
        threading.Thread(target=self._write, args=(sink, pending, connection), daemon=True).start()

    def _read(self, source: socket.socket, pending: queue.Queue[tuple[float, bytes]]) -> None:
        data = b"x"
        while data:
            try:
                data = source.recv(_CHUNK)
            except OSError:
                data = _STOP
            pending.put((time.monotonic() + self.delay, data))

    @staticmethod
    def _write(sink: socket.socket, pending: queue.Queue[tuple[float, bytes]], connection: _ProxiedConnection) -> None:
        try:
            DelayProxy._deliver(sink, pending)
        finally:
            connection.direction_ended()

    @staticmethod
    def _deliver(sink: socket.socket, pending: queue.Queue[tuple[float, bytes]]) -> None:
        while True:
            due, data = pending.get()
            time.sleep(max(0.0, due - time.monotonic()))
            if data == _STOP:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
                return
            try:
                sink.sendall(data)
            except OSError:
                return


class FirstFlightRecorder:
    """A socket stand-in that keeps what a client sent before it heard anything back (its first flight).

    Replaying those bytes is exactly what an attacker who captured a 0-RTT
    first flight can do; the demo and the tests use it to show the strike
    register refusing the repeat.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.first_flight = bytearray()
        self._heard_back = False

    def send(self, data: bytes) -> int:
        sent = self._sock.send(data)
        self._record(data[:sent])
        return sent

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)
        self._record(data)

    def recv(self, size: int) -> bytes:
        data = self._sock.recv(size)
        self._heard_back = self._heard_back or bool(data)
        return data

    def _record(self, data: bytes) -> None:
        if not self._heard_back:
            self.first_flight += data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)
