"""Opening client connections (behind ``ibepsk connect`` and the demo)."""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, cast

from tlslite.constants import ContentType
from tlslite.errors import TLSError

from .tls import HandshakeSettings, TLSConnection

#: The record types a TLS server can answer a ClientHello with (ServerHello/HelloRetryRequest, or an alert).
_TLS_ANSWER_TYPES = (ContentType.handshake, ContentType.alert)
_TLS_MAJOR_VERSION = 3
#: A record's content type and the major version: what tells a TLS server's first bytes from anything else.
_TLS_HEADER_START = 2


class NotTLSServerError(TLSError):  # type: ignore[misc]
    """The peer answered the ClientHello with bytes that are no TLS record (an HTTP or SSH server, say)."""


@dataclass
class ClientConfig:
    settings: HandshakeSettings
    server_name: str | None = None
    checker: Any = None
    cert_chain: Any = None
    private_key: Any = None
    timeout: float = 10.0


def open_tcp(address: tuple[str, int], timeout: float) -> socket.socket:
    """A TCP connection without Nagle's algorithm.

    Post-handshake authentication is a ping-pong of small records; with Nagle on
    one side and delayed ACKs on the other, each exchange stalls for tens of
    milliseconds (measured: about 130 ms per connection on loopback).
    """
    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _AnswerRecordingSocket(socket.socket):
    """A TCP socket that keeps the first bytes the peer sent: enough to tell a peer that does not speak TLS
    from a TLS handshake that failed (tlslite reads any bytes as a record and reports illegal_parameter or the like).
    """

    first_bytes = b""

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        if len(self.first_bytes) < _TLS_HEADER_START:
            self.first_bytes += data[: _TLS_HEADER_START - len(self.first_bytes)]
        return data

    @classmethod
    def adopt(cls, sock: socket.socket) -> _AnswerRecordingSocket:
        timeout = sock.gettimeout()
        adopted = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        adopted.settimeout(timeout)
        return adopted

    def answered_in_tls(self) -> bool:
        """False once the peer has sent something that cannot start a TLS server's first record."""
        if not self.first_bytes:
            return True
        if self.first_bytes[0] not in _TLS_ANSWER_TYPES:
            return False
        return len(self.first_bytes) < _TLS_HEADER_START or self.first_bytes[1] == _TLS_MAJOR_VERSION


def connect(
    host: str, port: int, config: ClientConfig, session: Any = None, early_data: bytes | None = None
) -> TLSConnection:
    """TCP connect and run the client handshake (with ``early_data`` in the first flight); the caller closes."""
    sock = _AnswerRecordingSocket.adopt(open_tcp((host, port), config.timeout))
    conn = TLSConnection(sock)
    try:
        conn.handshakeClientCert(
            certChain=config.cert_chain,
            privateKey=config.private_key,
            session=session,
            settings=config.settings,
            checker=config.checker,
            serverName=config.server_name,
            early_data=early_data,
        )
    except TLSError as exc:
        sock.close()
        if not sock.answered_in_tls():
            raise NotTLSServerError(f"not a TLS server: its answer starts with {sock.first_bytes!r}") from exc
        raise
    except BaseException:
        sock.close()
        raise
    return conn


def read_until_closed(conn: TLSConnection, limit: int = 1 << 20) -> bytes:
    """Everything the peer sends until it closes (or ``limit`` bytes)."""
    received = bytearray()
    while len(received) < limit:
        data = conn.read()
        if not data:
            break
        received += data
    return bytes(received)


def read_before(conn: TLSConnection, deadline: float) -> bytes:
    """What the peer sends next; b"" once it has closed, or when ``deadline`` (``time.monotonic()``) has passed.

    tlslite's read() interrupted by a socket timeout shuts the connection down as failed and marks its session
    non-resumable; so this reads without blocking and waits in select() instead, which leaves the connection
    fit for a clean close() (close_notify) and its session for resumption. Certificate requests, tickets and
    KeyUpdates that arrive meanwhile are handled as read() handles them.
    """
    raw = conn.sock.socket  # tlslite's BufferedSocket wraps the TCP socket
    timeout = raw.gettimeout()
    raw.setblocking(False)
    try:
        with contextlib.closing(cast(Generator[Any, None, None], conn.readAsync())) as reading:
            for step in reading:
                if isinstance(step, bytes):
                    return step
                if not _ready(raw, writing=step == 1, deadline=deadline):
                    return b""  # closing the generator (GeneratorExit) leaves tlslite's state alone
    finally:
        if raw.fileno() != -1:  # tlslite closes the socket when the peer closes the connection
            raw.settimeout(timeout)
    return b""


def _ready(sock: socket.socket, writing: bool, deadline: float) -> bool:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return False
    readable, writable, _ = select.select([] if writing else [sock], [sock] if writing else [], [], remaining)
    return bool(readable or writable)
