"""The IoT gateway: an IBE-PSK server that stores readings only from devices it has authenticated.

Per connection: the IBE-PSK handshake authenticates the gateway to the device
(0-RTT data may come with it); then the gateway authenticates the device, by
the identity a resumption ticket restores or else by post-handshake
authentication against the device CA. Only then are readings parsed, stored
(:class:`~ibepsk.iot.store.ReadingStore`, once each) and acknowledged, the
0-RTT ones included. A replayed first flight never gets this far: the strike
register keeps its early data from the connection, and whoever replays it
cannot finish the handshake, let alone authenticate.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NoReturn

from tlslite.errors import TLSError, TLSLocalAlert

from ..keys import IdentityKey
from ..server import ServerConfig, TLSServer, describe_failure, server_settings, shut_down
from ..tls import ClientAuthentication, HandshakeSettings, TLSConnection, TrustAnchors
from ..tls.errors import PostHandshakeAuthError
from ..tls.replay import ReplayStore
from .protocol import Ack, GatewayError, LineBuffer, ProtocolError, Reading, device_name
from .store import AddResult, ReadingStore

log = logging.getLogger("ibepsk.iot.gateway")

#: A session ticket lets a device reconnect without a pairing or a signature for this long.
DEFAULT_TICKET_LIFETIME = 24 * 3600


@dataclass(frozen=True)
class GatewayConfig:
    identity_keys: Sequence[IdentityKey]
    device_anchors: TrustAnchors
    database: Path
    #: Most 0-RTT bytes accepted per connection; 0 refuses early data.
    early_data: int = 4096
    #: The strike register (default: one in this process).
    replay_store: ReplayStore | None = None
    #: Seconds a device may stay silent.
    timeout: float = 10.0
    #: Send session tickets: one after each handshake and one after each post-handshake authentication.
    tickets: bool = True
    ticket_lifetime: int = DEFAULT_TICKET_LIFETIME


@dataclass
class GatewayStats:
    """What the gateway did, counted per connection and per reading."""

    #: Connections whose device authenticated, by how (post-handshake or resumption).
    authenticated: Counter[str] = field(default_factory=Counter)
    #: Connections refused: no certificate offered, a chain the device CA does not accept, bad messages.
    refused: int = 0
    #: Connections the device dropped or let time out before it was done.
    dropped: int = 0
    #: Unexpected failures (bugs); logged with a traceback.
    errors: int = 0
    stored: int = 0
    duplicates: int = 0
    #: Of ``stored``: readings that arrived as 0-RTT data.
    stored_early: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_readings(self, result: AddResult, early: bool) -> None:
        with self._lock:
            self.stored += result.stored
            self.duplicates += result.duplicates
            if early:
                self.stored_early += result.stored

    def count(self, outcome: Literal["refused", "dropped", "errors"]) -> None:
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + 1)

    def count_authenticated(self, method: str) -> None:
        with self._lock:
            self.authenticated[method] += 1

    def summary(self) -> str:
        with self._lock:
            methods = ", ".join(f"{count} {method}" for method, count in sorted(self.authenticated.items())) or "none"
            return (
                f"{self.stored} readings stored ({self.stored_early} from 0-RTT data), {self.duplicates} duplicates; "
                f"authenticated: {methods}; refused {self.refused}, dropped {self.dropped}, errors {self.errors}"
            )


class DeviceRefusedError(Exception):
    """The gateway ends this connection: the device was told why (an alert or an error line)."""


def gateway_settings(config: GatewayConfig) -> HandshakeSettings:
    """IBE-PSK with 0-RTT, PHA against the device CA, and (unless turned off) one ticket per handshake and per PHA.

    The ticket sent after post-handshake authentication carries the device's
    chain: resuming with it authenticates the device again without a signature.
    A ticket per connection means a device never has to use one twice (RFC 8446
    §C.4: reused tickets make a client's connections linkable).
    """
    settings = server_settings(
        list(config.identity_keys),
        tickets=config.tickets,
        accept_early_data=config.early_data,
        replay_store=config.replay_store,
    )
    settings.ticket_count = 1
    settings.ticketLifetime = config.ticket_lifetime
    settings.client_auth_anchors = config.device_anchors
    return settings


class Gateway:
    """Serves many devices at once (a thread each) and stores their readings in SQLite."""

    def __init__(self, config: GatewayConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config
        self.store = ReadingStore(config.database)
        self.stats = GatewayStats()
        server_config = ServerConfig(gateway_settings(config), timeout=config.timeout)
        self.server = TLSServer(server_config, self.serve_device, host, port)

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    def start(self) -> Gateway:
        """Serve in a background thread."""
        self.server.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def close(self) -> str:
        """Stop serving, let devices in the middle of a delivery finish, close the database; how that went."""
        outcome = shut_down(self.server)
        if not self.server.in_progress:  # a thread that outlived its cut connection would find it closed
            self.store.close()
        return outcome

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- one device connection ----------------------------------------------------------

    def serve_device(self, conn: TLSConnection) -> None:
        """The application behind the TLS server."""
        with counted_outcome(self.stats):
            self._serve(conn)

    def _serve(self, conn: TLSConnection) -> None:
        auth = self._authenticate(conn)
        try:
            device = device_name(auth.certificate)
        except ValueError as exc:
            _refuse(conn, str(exc))
        self.stats.count_authenticated(auth.method)
        exchange_readings(conn, device, self.store, self.stats)
        log.info("%s (%s) done", device, auth.method)

    def _authenticate(self, conn: TLSConnection) -> ClientAuthentication:
        """The device's identity: restored from its ticket, or proved now with its certificate."""
        if conn.client_auth is not None:
            return conn.client_auth
        if not conn.post_handshake_auth_offered:
            _refuse(conn, "devices must authenticate: offer post_handshake_auth and answer with a device certificate")
        conn.request_client_auth(required=True)
        try:
            auth = conn.wait_for_client_auth()
        except TLSLocalAlert as exc:  # the alert (unknown_ca, certificate_required, ...) has reached the device
            raise DeviceRefusedError(describe_failure(exc)) from exc
        if auth is None:
            _refuse(conn, "the device declined to authenticate")
        return auth


@contextlib.contextmanager
def counted_outcome(stats: GatewayStats) -> Iterator[None]:
    """Every device connection ends in one outcome, counted in ``stats`` and logged once; none escapes."""
    try:
        yield
    except DeviceRefusedError as refusal:
        stats.count("refused")
        log.info("refused: %s", refusal)
    except (TLSError, PostHandshakeAuthError, OSError, EOFError) as exc:
        stats.count("dropped")
        log.info("device went away: %s", describe_failure(exc))
    except Exception:
        stats.count("errors")
        log.exception("gateway error")


def exchange_readings(conn: TLSConnection, device: str, store: ReadingStore, stats: GatewayStats) -> None:
    """Store and acknowledge the readings of an authenticated ``device``, its 0-RTT data first, until it closes."""
    lines = LineBuffer()
    _take(conn, device, _lines(conn, lines, conn.early_data), store, stats, early=True)
    while data := conn.read():
        _take(conn, device, _lines(conn, lines, data), store, stats, early=False)


def _take(
    conn: TLSConnection, device: str, lines: list[bytes], store: ReadingStore, stats: GatewayStats, *, early: bool
) -> None:
    """Store the readings of these lines, then acknowledge them all (resends included)."""
    if not lines:
        return
    try:
        readings = [Reading.decode(line) for line in lines]
    except ProtocolError as exc:
        _refuse(conn, f"bad reading: {exc}")
    stranger = next((r.device for r in readings if r.device != device), None)
    if stranger is not None:
        _refuse(conn, f"a reading from {stranger!r} on a connection authenticated as {device!r}")
    stats.count_readings(store.add(device, readings, early=early), early)
    conn.write(Ack(tuple(r.seq for r in readings)).encode())


def _lines(conn: TLSConnection, buffer: LineBuffer, data: bytes) -> list[bytes]:
    try:
        return buffer.feed(data)
    except ProtocolError as exc:
        _refuse(conn, str(exc))


def _refuse(conn: TLSConnection, reason: str) -> NoReturn:
    with contextlib.suppress(TLSError, OSError):  # the device may be gone already
        conn.write(GatewayError(reason).encode())
    raise DeviceRefusedError(reason)
