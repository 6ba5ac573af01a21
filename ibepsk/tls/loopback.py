"""Both ends of a TLS connection in one thread over 127.0.0.1, with the CPU time each end spends.

tlslite-ng's ``...Async`` methods are generators that yield 0 (waiting to
read) or 1 (waiting to write) on a non-blocking socket. :func:`run_both`
steps a client's and a server's generators in turn and times each step with
``time.process_time``, so a benchmark can say what a handshake (or a
transfer) costs the client and the server without threads or scheduling
noise::

    client_sock, server_sock = tcp_pair()
    client, server = TLSConnection(client_sock), TLSConnection(server_sock)
    cpu = run_both(
        client.handshakeClientCert(settings=client_settings, serverName="localhost", async_=True),
        server.handshakeServerAsync(settings=server_settings),
        (client_sock, server_sock),
    )
    cpu.client.seconds, cpu.server.seconds
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: What tlslite-ng's generators yield while waiting on the socket.
_WAITING = (0, 1)
#: Both ends waiting and no byte in flight for this long means neither can make progress.
STALL_SECONDS = 10.0


class LoopbackStalled(RuntimeError):
    """Both ends are waiting for the other: the exchange cannot finish."""


def tcp_pair(blocking: bool = False) -> tuple[socket.socket, socket.socket]:
    """A connected pair of TCP sockets on 127.0.0.1, Nagle off: (client end, server end)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    for end in (client, server):
        end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        end.setblocking(blocking)
    return client, server


@dataclass
class EndResult:
    """What one end's generator cost and produced (its last non-waiting value, e.g. ``readAsync``'s data)."""

    seconds: float = 0.0
    value: Any = None
    done: bool = False


@dataclass
class BothResults:
    client: EndResult = field(default_factory=EndResult)
    server: EndResult = field(default_factory=EndResult)

    @property
    def seconds(self) -> float:
        return self.client.seconds + self.server.seconds


_WANTS_READ = 0


def _step(steps: Iterator[Any], result: EndResult) -> int | None:
    """Advance one end by one step; what it waits for (0 read, 1 write), or None if it is not waiting."""
    started = time.process_time()
    try:
        value = next(steps)
    except StopIteration:
        result.done = True
        return None
    finally:
        result.seconds += time.process_time() - started
    if value in _WAITING:
        return int(value)
    result.value = value
    return None


def run_both(client: Iterator[Any], server: Iterator[Any], sockets: tuple[socket.socket, socket.socket]) -> BothResults:
    """Run a client's and a server's tlslite-ng generators over ``sockets`` (client end, server end) to completion.

    The ends take turns, one step each; when both wait, ``select`` (outside
    the timed steps) sleeps until one of them can go on, and gives up after
    :data:`STALL_SECONDS`. Exceptions from either generator propagate.
    """
    results = BothResults()
    ends = [(client, results.client, sockets[0]), (server, results.server, sockets[1])]
    while not (results.client.done and results.server.done):
        waits = [(_step(steps, result), sock) for steps, result, sock in ends if not result.done]
        if waits and all(wait is not None for wait, _ in waits):
            readers = [sock for wait, sock in waits if wait == _WANTS_READ]
            writers = [sock for wait, sock in waits if wait != _WANTS_READ]
            if not any(select.select(readers, writers, [], STALL_SECONDS)):
                raise LoopbackStalled(f"no progress for {STALL_SECONDS} s: both ends are waiting")
    return results
