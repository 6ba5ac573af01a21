"""Both ends on non-blocking sockets, driven by tlslite-ng's generator API and one selector loop.

An event loop drives tlslite-ng this way: ``handshakeServerAsync``, ``handshakeClientCert(async_=True)``,
``readAsync``, ``writeAsync`` and ibepsk's ``*_async`` twins yield 0 (want read) or 1 (want write)
and never wait themselves. Any hook that waited on the socket would raise here (tlslite's
BufferedSocket has no ``fileno()``) or stall the loop.
"""

from __future__ import annotations

import itertools
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from tlslite.constants import AlertDescription
from tlslite.errors import TLSAbruptCloseError, TLSLocalAlert, TLSRemoteAlert

from ibepsk import HandshakeMode, HandshakeSettings, IbeKeyring, KeySigner, TLSConnection, TrustAnchors
from ibepsk.keys import TAMasterKey
from ibepsk.netem import FirstFlightRecorder
from ibepsk.pki import Issued, issue, make_ca
from ibepsk.tls import ClientAuthentication, ClientAuthMethod
from ibepsk.tls.early_data import EarlyDataRejection, EarlyDataStatus
from ibepsk.tls.replay import MemoryReplayStore

from tls_support import TIMEOUT

REQUEST = b"GET /reading HTTP/1.1\r\n\r\n"


@dataclass
class Run:
    """One end's steps on its socket: what they yield besides 0/1 (``values``), what they raise (``error``)."""

    sock: socket.socket
    steps: Iterator[Any]
    values: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    wants: int | None = None

    def advance(self) -> bool:
        """Step until the run would block (True) or is over (False)."""
        try:
            for value in self.steps:
                if value in (0, 1):
                    self.wants = value
                    return True
                self.values.append(value)
        except Exception as exc:  # the test looks at it; the other end keeps running
            self.error = exc
        return False


def drive(*runs: Run) -> None:
    """Run every end until all are over, waiting only in select() on the raw sockets."""
    active = [run for run in runs if run.advance()]
    deadline = time.monotonic() + TIMEOUT
    while active:
        readers = [run.sock for run in active if run.wants == 0]
        writers = [run.sock for run in active if run.wants == 1]
        readable, writable, _ = select.select(readers, writers, [], max(0.0, deadline - time.monotonic()))
        if not readable and not writable:
            raise TimeoutError(f"no end can move on: {active}")
        ready = [run for run in active if run.sock in (readable if run.wants == 0 else writable)]
        active = [run for run in active if run not in ready or run.advance()]


def client_handshake(conn: TLSConnection, settings: HandshakeSettings, **options: Any) -> Iterator[Any]:
    """tlslite-ng's client handshake as generator steps (``handshakeClientCert(async_=True)``)."""
    steps: Iterator[Any] = conn.handshakeClientCert(settings=settings, serverName="localhost", async_=True, **options)
    return steps


def chained(*steps: Iterator[Any]) -> Iterator[Any]:
    return itertools.chain.from_iterable(steps)


def nonblocking_pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    for sock in (client, server):
        sock.setblocking(False)
    return server, client


@dataclass
class Pki:
    ca: Issued
    client: Issued

    @property
    def signer(self) -> KeySigner:
        return KeySigner([self.client.certificate], self.client.key)


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca = make_ca()
    return Pki(ca, issue(ca, "client-device", server=False))


@pytest.fixture()
def server_settings(ta: TAMasterKey, pki: Pki) -> HandshakeSettings:
    settings = HandshakeSettings()
    settings.ibe_keyring = IbeKeyring([ta.extract("localhost")])
    settings.accept_early_data = 1024
    settings.replay_store = MemoryReplayStore(window_seconds=3600)
    settings.client_auth_anchors = TrustAnchors([pki.ca.certificate])
    settings.ticketKeys = [bytearray(32)]
    return settings


def client_settings(ta: TAMasterKey, **fields: Any) -> HandshakeSettings:
    settings = HandshakeSettings()
    settings.ibe_public_params = ta.public
    for name, value in fields.items():
        setattr(settings, name, value)
    return settings


@dataclass
class Pair:
    server: TLSConnection
    client: TLSConnection
    server_sock: socket.socket
    client_sock: socket.socket

    def handshake(self, settings: HandshakeSettings, client_steps: Iterator[Any]) -> tuple[Run, Run]:
        server = Run(self.server_sock, self.server.handshakeServerAsync(settings=settings))
        client = Run(self.client_sock, client_steps)
        drive(server, client)
        assert server.error is None and client.error is None, (server.error, client.error)
        return server, client

    def exchange(self, server_steps: Iterator[Any], client_steps: Iterator[Any]) -> tuple[Run, Run]:
        server, client = Run(self.server_sock, server_steps), Run(self.client_sock, client_steps)
        drive(server, client)
        return server, client


@pytest.fixture()
def pair() -> Iterator[Pair]:
    server_sock, client_sock = nonblocking_pair()
    yield Pair(TLSConnection(server_sock), TLSConnection(client_sock), server_sock, client_sock)
    server_sock.close()
    client_sock.close()


def test_ibe_psk_handshake_then_data_and_close_notify(
    pair: Pair, ta: TAMasterKey, server_settings: HandshakeSettings
) -> None:
    pair.handshake(server_settings, client_handshake(pair.client, client_settings(ta)))
    assert pair.server.handshake_mode == pair.client.handshake_mode == HandshakeMode.IBE_PSK
    assert pair.server.ibe_identity == pair.client.ibe_identity == "localhost"
    server, client = pair.exchange(
        chained(pair.server.readAsync(), pair.server.send_close_notify_async()),
        chained(pair.client.writeAsync(b"ping"), pair.client.readAsync()),
    )
    assert server.values == [bytearray(b"ping")] and server.error is None
    assert client.values == [bytearray()] and client.error is None, "close_notify reads as the end of the data"
    assert pair.client.closed


def test_early_data_accepted_and_answered_at_once(
    pair: Pair, ta: TAMasterKey, server_settings: HandshakeSettings
) -> None:
    server_settings.early_data_handler = lambda conn, chunk: b"0.5-rtt:" + chunk
    steps = client_handshake(pair.client, client_settings(ta), early_data=REQUEST)
    pair.handshake(server_settings, steps)
    assert pair.server.early_data_status == pair.client.early_data_status == EarlyDataStatus.ACCEPTED
    assert pair.server.early_data == REQUEST and pair.server.early_data_answered
    _, client = pair.exchange(pair.server.writeAsync(b"after"), pair.client.readAsync(min=len(REQUEST) + 13))
    assert b"".join(client.values) == b"0.5-rtt:" + REQUEST + b"after"


def test_early_data_rejected_is_resent_after_the_handshake(
    pair: Pair, ta: TAMasterKey, server_settings: HandshakeSettings
) -> None:
    server_settings.accept_early_data = 0
    steps = pair.client.handshakeClientCert(
        settings=client_settings(ta), serverName="localhost", async_=True, early_data=REQUEST
    )
    pair.handshake(server_settings, steps)
    assert pair.client.early_data_status == EarlyDataStatus.REJECTED
    assert pair.server.early_data_rejection == EarlyDataRejection.DISABLED
    server, _ = pair.exchange(pair.server.readAsync(), iter(()))
    assert server.values == [bytearray(REQUEST)]


def test_replayed_first_flight_gets_no_early_data_in(
    pair: Pair, ta: TAMasterKey, server_settings: HandshakeSettings
) -> None:
    recorder = FirstFlightRecorder(pair.client_sock)
    client = TLSConnection(recorder)
    pair.handshake(
        server_settings,
        client.handshakeClientCert(
            settings=client_settings(ta), serverName="localhost", async_=True, early_data=REQUEST
        ),
    )
    assert pair.server.early_data_status == EarlyDataStatus.ACCEPTED
    replay_server_sock, replayer = nonblocking_pair()
    with replay_server_sock, replayer:
        replayer.sendall(bytes(recorder.first_flight))
        replayer.shutdown(socket.SHUT_WR)
        replayed = TLSConnection(replay_server_sock)
        run = Run(replay_server_sock, replayed.handshakeServerAsync(settings=server_settings))
        drive(run)
    assert isinstance(run.error, TLSAbruptCloseError), "the replayer cannot finish the handshake"
    assert replayed.early_data_rejection == EarlyDataRejection.REPLAY and replayed.early_data == b""


def test_post_handshake_auth_requested_and_answered(
    pair: Pair, ta: TAMasterKey, pki: Pki, server_settings: HandshakeSettings
) -> None:
    pair.handshake(
        server_settings,
        client_handshake(pair.client, client_settings(ta, client_auth_signer=pki.signer)),
    )
    server, client = pair.exchange(
        chained(
            pair.server.request_client_auth_async(required=True),
            pair.server.wait_for_client_auth_async(),
            pair.server.writeAsync(b"welcome"),
        ),
        pair.client.readAsync(),
    )
    assert server.error is None and client.error is None, (server.error, client.error)
    context, answer = server.values
    assert isinstance(context, bytes) and len(context) == 32
    assert isinstance(answer, ClientAuthentication) and answer.method == ClientAuthMethod.POST_HANDSHAKE
    assert pair.server.client_auth == answer and answer.certificate == pki.client.certificate
    assert client.values == [bytearray(b"welcome")] and pair.client.certificate_requests_answered == 1


def test_post_handshake_auth_declined_when_required_is_certificate_required(
    pair: Pair, ta: TAMasterKey, pki: Pki, server_settings: HandshakeSettings
) -> None:
    settings = client_settings(ta, client_auth_signer=pki.signer, client_auth_answer_limit=0)
    pair.handshake(server_settings, client_handshake(pair.client, settings))
    server, client = pair.exchange(
        chained(pair.server.request_client_auth_async(), pair.server.wait_for_client_auth_async()),
        pair.client.readAsync(),
    )
    assert isinstance(server.error, TLSLocalAlert) and server.error.description == AlertDescription.certificate_required
    assert (
        isinstance(client.error, TLSRemoteAlert) and client.error.description == AlertDescription.certificate_required
    )
    assert pair.server.client_auth is None


def test_abort_with_alert_async(pair: Pair, ta: TAMasterKey, server_settings: HandshakeSettings) -> None:
    pair.handshake(server_settings, client_handshake(pair.client, client_settings(ta)))
    server, client = pair.exchange(
        pair.server.abort_with_alert_async(AlertDescription.certificate_required, "no certificate, no service"),
        pair.client.readAsync(),
    )
    assert isinstance(server.error, TLSLocalAlert) and isinstance(client.error, TLSRemoteAlert)
    assert client.error.description == AlertDescription.certificate_required


def test_resumption_with_a_ticket(ta: TAMasterKey, server_settings: HandshakeSettings) -> None:
    sessions = []
    for session in (None, "from the first connection"):
        server_sock, client_sock = nonblocking_pair()
        with server_sock, client_sock:
            pair = Pair(TLSConnection(server_sock), TLSConnection(client_sock), server_sock, client_sock)
            steps = client_handshake(pair.client, client_settings(ta), session=sessions[-1] if session else None)
            pair.handshake(server_settings, steps)
            _, client = pair.exchange(pair.server.writeAsync(b"hello"), pair.client.readAsync())
            assert client.values == [bytearray(b"hello")]
            sessions.append(pair.client.session)
            if session is None:
                tickets = list(sessions[0].tickets)
                assert len(tickets) == 2
    assert pair.server.handshake_mode == pair.client.handshake_mode == HandshakeMode.RESUMPTION
    assert sessions[0].tickets == tickets, "resuming leaves the caller's session as it was"
