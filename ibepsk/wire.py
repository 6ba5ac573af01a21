"""Counting what a TLS handshake puts on the wire, by direction.

Used by ``ibepsk bench wire``: the client's socket is wrapped so every byte
it sends or receives during the handshake is counted; NewSessionTickets are
turned off so only the handshake itself is measured.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any


@dataclass
class ByteCounts:
    client_to_server: int = 0
    server_to_client: int = 0

    @property
    def total(self) -> int:
        return self.client_to_server + self.server_to_client


class CountingSocket:
    """A socket stand-in that counts the bytes through it (client side: sent = client to server)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.counts = ByteCounts()
        #: Bytes the client sent before it first read (its ClientHello records), once it has read.
        self.first_flight: int | None = None

    def send(self, data: bytes) -> int:
        sent = self._sock.send(data)
        self.counts.client_to_server += sent
        return sent

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)
        self.counts.client_to_server += len(data)

    def recv(self, size: int) -> bytes:
        if self.first_flight is None:
            self.first_flight = self.counts.client_to_server
        data = self._sock.recv(size)
        self.counts.server_to_client += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)
