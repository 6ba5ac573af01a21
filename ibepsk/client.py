"""Opening client connections (behind ``ibepsk connect`` and the demo)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from .tls import HandshakeSettings, TLSConnection


@dataclass
class ClientConfig:
    settings: HandshakeSettings
    server_name: str | None = None
    checker: Any = None
    cert_chain: Any = None
    private_key: Any = None
    timeout: float = 10.0


def connect(
    host: str, port: int, config: ClientConfig, session: Any = None, early_data: bytes | None = None
) -> TLSConnection:
    """TCP connect and run the client handshake (with ``early_data`` in the first flight); the caller closes."""
    sock = socket.create_connection((host, port), timeout=config.timeout)
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
