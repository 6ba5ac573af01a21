"""Real sockets for TLS tests: servers on 127.0.0.1, raw ClientHellos, plaintext records."""

from __future__ import annotations

import contextlib
import copy
import queue
import re
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tlslite.constants import ContentType, ExtensionType, GroupName
from tlslite.errors import TLSLocalAlert
from tlslite.handshakehashes import HandshakeHashes
from tlslite.handshakehelpers import HandshakeHelpers
from tlslite.messages import ClientHello, ServerHello
from tlslite.utils.codec import Parser
from tlslite.x509certchain import X509CertChain

from ibepsk import ClientAuthentication, HandshakeSettings, TLSConnection
from ibepsk.client import ClientConfig, connect
from ibepsk.keys import TAPublicParams
from ibepsk.server import ServerConfig, TLSServer

from pki import Issued

TIMEOUT = 10


def settings_with(**fields: Any) -> HandshakeSettings:
    """HandshakeSettings with ``fields`` set on them."""
    settings = HandshakeSettings()
    for name, value in fields.items():
        setattr(settings, name, value)
    return settings


def ibe_client_config(public: TAPublicParams, server_name: str = "localhost", **fields: Any) -> ClientConfig:
    """An IBE-PSK client of ``public``'s TA, with ``fields`` set on its settings."""
    return ClientConfig(settings_with(ibe_public_params=public, **fields), server_name=server_name)


@dataclass
class Observed:
    """What the server side saw, recorded by the test application."""

    connections: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, conn: TLSConnection, data: bytes) -> None:
        with self.lock:
            self.connections.append(
                {
                    "mode": conn.handshake_mode,
                    "identity": conn.ibe_identity,
                    "kex": conn.psk_key_exchange,
                    "cipher": conn.getCipherName(),
                    "data": data,
                }
            )


def echo_and_record(observed: Observed) -> Callable[[TLSConnection], None]:
    def application(conn: TLSConnection) -> None:
        data = conn.read()
        observed.record(conn, bytes(data))
        conn.write(b"echo:" + data)

    return application


def tlslite_chain(issued: Issued, *chain: Issued) -> X509CertChain:
    return issued.tlslite_chain(*chain)


def tlslite_key(issued: Issued) -> Any:
    return issued.tlslite_key()


@contextlib.contextmanager
def running_server(
    settings: HandshakeSettings,
    application: Callable[[TLSConnection], None] | None = None,
    cert: Issued | None = None,
) -> Iterator[tuple[TLSServer, Observed]]:
    observed = Observed()
    config = ServerConfig(settings, timeout=TIMEOUT)
    if cert is not None:
        config.cert_chain, config.private_key = tlslite_chain(cert), tlslite_key(cert)
    server = TLSServer(config, application or echo_and_record(observed)).start()
    try:
        yield server, observed
    finally:
        server.close()


@dataclass
class ClientResult:
    mode: Any
    ibe_identity: str | None
    psk_key_exchange: str | None
    cipher: str | None
    group: str | None
    resumed: bool
    session: Any


def exchange(server: TLSServer, config: ClientConfig, message: bytes = b"ping", session: Any = None) -> ClientResult:
    """Connect, send ``message``, check the echo, close, and say what the client saw."""
    conn = connect(*server.address, config, session=session)
    try:
        conn.write(message)
        assert conn.read() == b"echo:" + message
        group = GroupName.toRepr(conn.ecdhCurve) if conn.ecdhCurve else None
        return ClientResult(
            conn.handshake_mode, conn.ibe_identity, conn.psk_key_exchange, conn.getCipherName(), group,
            conn.resumed, conn.session,
        )  # fmt: skip
    finally:
        conn.close()


# --- raw records ---------------------------------------------------------------


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with a reset (SO_LINGER 0), as a crashing or refusing peer may."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def read_record(sock: socket.socket) -> tuple[int, bytes]:
    header = _read_exactly(sock, 5)
    content_type, _version, length = struct.unpack(">BHH", header)
    return content_type, _read_exactly(sock, length)


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError(f"peer closed after {len(data)} of {count} bytes")
        data += chunk
    return bytes(data)


MAX_FRAGMENT = 1 << 14


def handshake_record(message: bytes) -> bytes:
    """The message in as many handshake records as it needs (2^14 bytes of payload each)."""
    chunks = [message[i : i + MAX_FRAGMENT] for i in range(0, len(message), MAX_FRAGMENT)]
    return b"".join(struct.pack(">BHH", ContentType.handshake, 0x0303, len(c)) + c for c in chunks)


def send_and_read_first_record(address: tuple[str, int], payload: bytes) -> tuple[int, bytes]:
    with socket.create_connection(address, timeout=TIMEOUT) as sock:
        sock.sendall(payload)
        return read_record(sock)


def alert_description(record: tuple[int, bytes]) -> int:
    content_type, body = record
    assert content_type == ContentType.alert, f"expected an alert record, got content type {content_type}"
    return body[1]


def parse_server_hello(record: tuple[int, bytes]) -> ServerHello:
    content_type, body = record
    assert content_type == ContentType.handshake and body[0] == 2, "expected a plaintext ServerHello"
    return ServerHello().parse(Parser(bytearray(body[1:])))


@dataclass
class CapturedHello:
    hello: ClientHello
    psk_configs: list[tuple[bytearray, bytearray, str]]

    def resign(self) -> bytes:
        """Recompute every binder (after a mutation) and serialise as a record."""
        HandshakeHelpers.update_binders(self.hello, HandshakeHashes(), self.psk_configs)
        return handshake_record(bytes(self.hello.write()))

    def unsigned(self) -> bytes:
        return handshake_record(bytes(self.hello.write()))


def capture_client_hello(settings: HandshakeSettings, server_name: str) -> CapturedHello:
    """Run a real ibepsk client against a bare TCP listener and keep its first ClientHello."""
    listener = socket.create_server(("127.0.0.1", 0))
    conn_box: dict[str, TLSConnection] = {}

    def client() -> None:
        sock = socket.create_connection(listener.getsockname(), timeout=TIMEOUT)
        conn_box["conn"] = TLSConnection(sock)
        with contextlib.suppress(Exception):
            conn_box["conn"].handshakeClientCert(settings=settings, serverName=server_name)

    thread = threading.Thread(target=client)
    thread.start()
    peer, _ = listener.accept()
    with peer:
        peer.settimeout(TIMEOUT)
        content_type, body = read_record(peer)
        # A copy of the IBE-PSK while the client waits for an answer: its failed handshake zeroes the original.
        offer = conn_box["conn"]._ibe_offer
        ibe_config = [] if offer is None else [tuple(map(copy.copy, offer.psk_config()))]
    listener.close()
    thread.join(TIMEOUT)
    assert content_type == ContentType.handshake and body[0] == 1
    hello = ClientHello().parse(Parser(bytearray(body[1:])))
    return CapturedHello(hello, [*ibe_config, *settings.pskConfigs])


def psk_extension(hello: ClientHello) -> Any:
    return hello.getExtension(ExtensionType.pre_shared_key)


def wait_for(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the server"
        time.sleep(0.01)


# --- post-handshake client authentication ----------------------------------------


@dataclass
class AuthOutcome:
    """What a server application that asked for client certificates saw on one connection."""

    answers: list[ClientAuthentication | None]
    error: BaseException | None
    client_auth: ClientAuthentication | None
    session_chain: Any
    compression: Any = None  # the algorithm the client's certificate came compressed with, if any

    @property
    def sent_alert(self) -> int | None:
        return self.error.description if isinstance(self.error, TLSLocalAlert) else None


class AuthenticatingApplication:
    """Server application: ask for a certificate ``requests`` times right after the handshake, then echo.

    One request at a time, or with ``pipelined`` all of them before the first answer.
    """

    def __init__(self, requests: int = 1, required: bool = True, pipelined: bool = False) -> None:
        self.requests, self.required, self.pipelined = requests, required, pipelined
        self.outcomes: queue.Queue[AuthOutcome] = queue.Queue()

    def __call__(self, conn: TLSConnection) -> None:
        answers: list[ClientAuthentication | None] = []
        try:
            for _ in range(self.requests):
                conn.request_client_auth(required=self.required)
                if not self.pipelined:
                    answers.append(conn.wait_for_client_auth())
            if self.pipelined:
                answers.append(conn.wait_for_client_auth())
        except Exception as exc:
            self.outcomes.put(AuthOutcome(answers, exc, conn.client_auth, None))
            raise
        chain, compression = conn.session.clientCertChain, conn.client_cert_compression_algo
        self.outcomes.put(AuthOutcome(answers, None, conn.client_auth, chain, compression))
        while data := conn.read():
            conn.write(b"echo:" + data)

    def next_outcome(self) -> AuthOutcome:
        return self.outcomes.get(timeout=TIMEOUT)


def converse(conn: TLSConnection, message: bytes = b"ping") -> bytes:
    """Write ``message`` and return the reply (the client answers certificate requests while reading)."""
    conn.write(message)
    return bytes(conn.read())


# --- servers as processes --------------------------------------------------------------


class ListeningProcess:
    """A server run as a process; the first line it prints says where it listens on 127.0.0.1."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert self.process.stdout is not None
        banner = self.process.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", banner)
        assert match, f"no banner: {banner!r} {self.stop()}"
        self.port = int(match.group(1))

    def stop(self) -> str:
        """Stop it as a service manager would (SIGTERM, which our servers treat as Ctrl-C); what it logged.

        Not SIGINT: a test run started as a background job inherits an ignored SIGINT, and Python then
        keeps ignoring it.
        """
        self.process.terminate()
        try:
            _, stderr = self.process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return stderr


@dataclass
class Pair:
    """Two ends of one connection (ibepsk or stock tlslite-ng connections)."""

    client: Any
    server: Any


def close(pair: Pair) -> None:
    for conn in (pair.client, pair.server):
        conn.sock.socket.close()
