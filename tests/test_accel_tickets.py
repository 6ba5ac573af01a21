"""Session tickets sealed and opened on cryptography: the same tickets stock tlslite-ng seals and opens."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
import tlslite.tlsconnection
from tlslite import HandshakeSettings as StockSettings
from tlslite import TLSConnection as StockConnection
from tlslite.errors import TLSAbruptCloseError
from tlslite.utils import cipherfactory

from ibepsk import HandshakeSettings, TLSConnection
from ibepsk.bench_tls import UnacceleratedConnection, run_pair
from ibepsk.pki import Issued

TICKET_CIPHERS = ["aes128gcm", "aes256gcm", "aes128ccm", "aes128ccm_8", "aes256ccm", "aes256ccm_8", "chacha20-poly1305"]


class TicketServer:
    """A certificate server of one kind (stock tlslite-ng or ibepsk) with a given ticket key and cipher."""

    def __init__(self, kind: type[Any], issued: Issued, ticket_key: bytearray, ticket_cipher: str) -> None:
        self.kind = kind
        self.settings = StockSettings() if kind is StockConnection else HandshakeSettings()
        self.settings.ticketKeys = [ticket_key]
        self.settings.ticketCipher = ticket_cipher
        self.chain, self.key = issued.tlslite_chain(), issued.tlslite_key()

    def __call__(self, sock: socket.socket) -> None:
        conn = self.kind(sock)
        conn.handshakeServer(settings=self.settings, certChain=self.chain, privateKey=self.key)
        conn.write(conn.read())


def _connect(server: TicketServer, session: Any = None) -> tuple[Any, bool]:
    """One connection from an ibepsk client: the session it leaves (with the tickets it received), and
    whether it resumed ``session``.

    The client's ``resumed`` says whether the server accepted the ticket (tlslite-ng's server-side flag
    stays False in TLS 1.3), i.e. whether it could open it.
    """
    outcome: list[tuple[Any, bool]] = []

    def client(sock: socket.socket) -> None:
        conn = TLSConnection(sock)
        conn.handshakeClientCert(serverName="localhost", session=session)
        conn.write(b"x")
        conn.read()  # NewSessionTickets arrive before the echo
        outcome.append((conn.session, conn.resumed))

    run_pair(client, server)
    return outcome[0]


def _key_for(ticket_cipher: str) -> bytearray:
    return bytearray(os.urandom(16 if "128" in ticket_cipher else 32))


@pytest.mark.parametrize("ticket_cipher", TICKET_CIPHERS)
@pytest.mark.parametrize(
    ("issuer", "resumer"), [(TLSConnection, StockConnection), (StockConnection, TLSConnection)], ids=["ours", "stock"]
)
def test_a_ticket_one_side_seals_the_other_opens(
    server_cert: Issued, ticket_cipher: str, issuer: type[Any], resumer: type[Any]
) -> None:
    key = _key_for(ticket_cipher)
    issuing, resuming = (TicketServer(kind, server_cert, key, ticket_cipher) for kind in (issuer, resumer))
    session, _ = _connect(issuing)
    assert session.tickets, "the issuing server sent tickets"
    _, resumed = _connect(resuming, session)
    assert resumed


@pytest.fixture()
def no_pure_python_aeads(monkeypatch: pytest.MonkeyPatch) -> None:
    """tlslite-ng's pure-Python AEADs refuse to run (ibepsk records never use them; only tickets could)."""

    def refuse(*args: Any) -> None:
        raise AssertionError("tlslite-ng's pure-Python AEAD was used")

    for module in ("python_aesgcm", "python_aesccm", "python_chacha20_poly1305"):
        monkeypatch.setattr(getattr(cipherfactory, module), "new", refuse)


@pytest.mark.parametrize("ticket_cipher", ["aes256gcm", "aes128ccm_8", "chacha20-poly1305"])
@pytest.mark.usefixtures("no_pure_python_aeads")
def test_tickets_never_touch_tlslite_pure_python_aeads(server_cert: Issued, ticket_cipher: str) -> None:
    server = TicketServer(TLSConnection, server_cert, _key_for(ticket_cipher), ticket_cipher)
    session, _ = _connect(server)
    _, resumed = _connect(server, session)
    assert resumed
    # What the fixture stops: stock tlslite-ng sealing its first ticket (the client then sees the socket close).
    stock = TicketServer(StockConnection, server_cert, _key_for(ticket_cipher), ticket_cipher)
    refused: list[AssertionError] = []

    def stock_server(sock: socket.socket) -> None:
        try:
            stock(sock)
        except AssertionError as exc:
            refused.append(exc)
            raise

    with pytest.raises((AssertionError, TLSAbruptCloseError)):
        run_pair(lambda sock: TLSConnection(sock).handshakeClientCert(serverName="localhost"), stock_server)
    assert "pure-Python AEAD was used" in str(refused[0])


@pytest.mark.parametrize("ticket_cipher", TICKET_CIPHERS)
@pytest.mark.parametrize("key_length", [16, 32])
def test_ticket_keys_are_derived_as_tlslite_derives_them(ticket_cipher: str, key_length: int) -> None:
    settings = HandshakeSettings()
    settings.ticketCipher = ticket_cipher
    nonce, user_key = bytearray(os.urandom(32)), bytearray(os.urandom(key_length))
    ours = TLSConnection._derive_key_iv(nonce, user_key, settings)
    assert ours == StockConnection._derive_key_iv(nonce, user_key, settings)


def test_ticket_keys_skip_tlslite_hmac_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """One-shot HMACs, not tlslite-ng's Python HMAC/HKDF chain (about twice the time)."""

    def refuse(*args: Any) -> None:
        raise AssertionError("tlslite-ng's HMAC chain was used")

    monkeypatch.setattr(tlslite.tlsconnection, "secureHMAC", refuse)
    nonce, user_key, settings = bytearray(32), bytearray(32), HandshakeSettings()
    assert len(TLSConnection._derive_key_iv(nonce, user_key, settings)[1]) == 12
    with pytest.raises(AssertionError, match="HMAC chain"):  # what the patch stops: the stock derivation
        UnacceleratedConnection._derive_key_iv(nonce, user_key, settings)
