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

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NoReturn

from tlslite.errors import TLSError, TLSLocalAlert

from ..aio.server import AsyncTLSServer, read_within, use_uvloop
from ..aio.streams import request_client_auth
from ..keys import IdentityKey
from ..server import ServerConfig, describe_failure, server_settings
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
    """Serves many devices at once on one event loop (no thread per device), storing their readings in SQLite.

    The loop runs in a background thread after :meth:`start` (tests, benchmarks), or in the caller's thread
    in :meth:`serve_forever` until Ctrl-C or SIGTERM (``KeyboardInterrupt``), after which :meth:`close` drains.
    """

    def __init__(self, config: GatewayConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config
        self.store = ReadingStore(config.database)
        self.stats = GatewayStats()
        server_config = ServerConfig(gateway_settings(config), timeout=config.timeout)
        self.server = AsyncTLSServer(server_config, self.serve_device)
        use_uvloop()
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self.server.start(host, port))  # bound now: ``address`` works at once
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    def start(self) -> Gateway:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._loop.run_forever, name="ibepsk-gateway", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._loop.run_forever()

    def close(self) -> str:
        """Stop serving, let devices in the middle of a delivery finish, close the database; how that went."""
        if self._thread is not None:
            outcome = asyncio.run_coroutine_threadsafe(self.server.shut_down(), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        else:
            outcome = self._loop.run_until_complete(self.server.shut_down())
        self._loop.close()
        self.store.close()
        return outcome

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- one device connection ----------------------------------------------------------

    async def serve_device(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
        """The application behind the TLS server."""
        with counted_outcome(self.stats):
            await self._serve(reader, writer, timeout)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
        conn: TLSConnection = writer.get_extra_info("tls")
        auth = await self._authenticate(writer, conn, timeout)
        try:
            device = device_name(auth.certificate)
        except ValueError as exc:
            _refuse(writer.write, str(exc))
        self.stats.count_authenticated(auth.method)
        readings = Readings(device, self.store, self.stats)
        answer(readings, conn.early_data, writer.write, early=True)
        while data := await read_within(reader, timeout):
            answer(readings, data, writer.write, early=False)
            await writer.drain()
        log.info("%s (%s) done", device, auth.method)

    @staticmethod
    async def _authenticate(writer: asyncio.StreamWriter, conn: TLSConnection, timeout: float) -> ClientAuthentication:
        """The device's identity: restored from its ticket, or proved now with its certificate."""
        if conn.client_auth is not None:
            return conn.client_auth
        if not conn.post_handshake_auth_offered:
            _refuse(
                writer.write,
                "devices must authenticate: offer post_handshake_auth and answer with a device certificate",
            )
        try:
            async with asyncio.timeout(timeout):
                auth = await request_client_auth(writer, required=True)
        except TLSLocalAlert as exc:  # the alert (unknown_ca, certificate_required, ...) has reached the device
            raise DeviceRefusedError(describe_failure(exc)) from exc
        if auth is None:
            _refuse(writer.write, "the device declined to authenticate")
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


class Readings:
    """The readings protocol of one authenticated device, without I/O: bytes in, the acknowledgement out.

    A bad line, or a reading of another device, raises :class:`DeviceRefusedError` carrying the error line
    for the device.
    """

    def __init__(self, device: str, store: ReadingStore, stats: GatewayStats) -> None:
        self.device = device
        self._store = store
        self._stats = stats
        self._lines = LineBuffer()

    def take(self, data: bytes, *, early: bool) -> bytes:
        """Store the readings ``data`` completes; their acknowledgement (resends included), or b"" for none."""
        try:
            lines = self._lines.feed(data)
        except ProtocolError as exc:
            raise DeviceRefusedError(str(exc)) from exc
        try:
            readings = [Reading.decode(line) for line in lines]
        except ProtocolError as exc:
            raise DeviceRefusedError(f"bad reading: {exc}") from exc
        if not readings:
            return b""
        stranger = next((r.device for r in readings if r.device != self.device), None)
        if stranger is not None:
            raise DeviceRefusedError(f"a reading from {stranger!r} on a connection authenticated as {self.device!r}")
        self._stats.count_readings(self._store.add(self.device, readings, early=early), early)
        return Ack(tuple(r.seq for r in readings)).encode()


def exchange_readings(conn: TLSConnection, device: str, store: ReadingStore, stats: GatewayStats) -> None:
    """Store and acknowledge the readings of an authenticated ``device``, its 0-RTT data first, until it closes
    (blocking I/O: the mutual-TLS baseline of ``ibepsk bench iot``)."""
    readings = Readings(device, store, stats)
    answer(readings, conn.early_data, conn.write, early=True)
    while data := conn.read():
        answer(readings, data, conn.write, early=False)


def answer(readings: Readings, data: bytes, write: Callable[[bytes], object], *, early: bool) -> None:
    """Take ``data`` and write the acknowledgement, or the error line that refuses the device."""
    try:
        ack = readings.take(data, early=early)
    except DeviceRefusedError as refusal:
        _refuse(write, str(refusal))
    if ack:
        write(ack)


def _refuse(write: Callable[[bytes], object], reason: str) -> NoReturn:
    """Tell the device why (an error line), and end its connection."""
    with contextlib.suppress(TLSError, OSError):  # the device may be gone already
        write(GatewayError(reason).encode())
    raise DeviceRefusedError(reason)
