"""The IoT device: queue a reading, deliver it over IBE-PSK, forget it only once the gateway has acknowledged it.

The device knows its gateway's name and the TA's public parameters, nothing
about the gateway's keys. A first connection encapsulates a fresh PSK to the
gateway's name, sends the oldest queued reading as 0-RTT data, answers the
gateway's post-handshake CertificateRequest with its :class:`~ibepsk.tls.Signer`
(a key file, or a PKCS#11 token the key never leaves), and sends the rest.
The ticket the gateway sends after that authentication carries the device's
identity: later connections of the same process resume with it, which costs
neither a pairing nor a signature (and carries no 0-RTT data, since ibepsk
sends early data only under an IBE-PSK). Tickets are kept in memory only.

When the gateway cannot be reached, :meth:`Device.deliver_all` retries with
exponential backoff and jitter; the readings wait in the on-disk queue.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tlslite.errors import TLSError

from ..client import open_tcp
from ..epochs import EpochPeriod
from ..keys import TAPublicParams
from ..server import describe_failure
from ..tls import HandshakeMode, HandshakeSettings, Signer, TLSConnection
from ..tls.early_data import EarlyDataStatus
from .protocol import GatewayError, JsonValue, LineBuffer, ProtocolError, Reading, decode_gateway_message, device_name
from .queue import QueuedReading, ReadingQueue

log = logging.getLogger("ibepsk.iot.device")

#: ``open_socket((host, port), timeout)``: the connected socket a connection runs over (tests and benchmarks
#: wrap it to count or record bytes).
SocketOpener = Callable[[tuple[str, int], float], Any]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter between failed connections."""

    initial_delay: float = 1.0
    max_delay: float = 60.0
    multiplier: float = 2.0
    #: Give up after this many failed connections in a row; None retries for ever.
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.initial_delay <= self.max_delay or self.multiplier < 1:
            raise ValueError("retry delays need 0 < initial_delay <= max_delay and multiplier >= 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (or None: for ever)")

    def delays(self, rng: random.Random) -> Iterator[float]:
        """The waits after each failure: half the ceiling plus a random half, the ceiling growing to max_delay.

        The random half spreads out devices that lost the gateway together, so
        they do not all come back in the same instant.
        """
        ceiling = self.initial_delay
        while True:
            yield ceiling / 2 + rng.uniform(0, ceiling / 2)
            ceiling = min(self.max_delay, ceiling * self.multiplier)


@dataclass(frozen=True)
class DeviceConfig:
    gateway: tuple[str, int]
    #: The gateway's identity (encapsulated to, and sent as SNI).
    gateway_name: str
    ta_public: TAPublicParams
    #: Encapsulate to ``gateway_name|<current epoch>`` (docs/replay.md).
    epoch: EpochPeriod | None = None
    #: Seconds to wait for the gateway (connect, handshake, each acknowledgement).
    timeout: float = 10.0
    #: Most readings sent on one connection.
    batch: int = 100
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class Delivery:
    """One connection that delivered readings."""

    acknowledged: int
    #: ibe-psk, or resumption with a ticket.
    mode: HandshakeMode | None
    early_data: EarlyDataStatus
    #: The device signed a post-handshake CertificateRequest (False when the ticket restored its identity).
    signed: bool
    #: From TCP connect to the end of the handshake, and to the last acknowledgement.
    handshake_ms: float
    acknowledged_ms: float


class DeliveryError(Exception):
    """One connection failed before every reading on it was acknowledged."""


class GatewayRefusedError(DeliveryError):
    """The gateway said why it would not take the readings."""


class GatewayUnreachableError(Exception):
    """``max_attempts`` connections in a row failed; the readings stay queued."""


class Device:
    """A device's readings on their way to the gateway."""

    def __init__(
        self,
        config: DeviceConfig,
        signer: Signer,
        queue: ReadingQueue,
        *,
        open_socket: SocketOpener = open_tcp,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.queue = queue
        self.name = device_name(signer.certificate_chain[0])
        self.failed_attempts = 0
        self._settings = HandshakeSettings()
        self._settings.ibe_public_params = config.ta_public
        self._settings.ibe_epoch = config.epoch
        self._settings.client_auth_signer = signer
        self._open_socket = open_socket
        self._rng = rng or random.Random()  # jitter only: no secret depends on it
        self._ticket_session: Any = None
        self._stopping = threading.Event()

    @property
    def has_ticket(self) -> bool:
        return self._ticket_session is not None

    def record(self, value: JsonValue, at: float | None = None) -> QueuedReading:
        """Queue a reading (on disk) for the next delivery."""
        return self.queue.put(value, at)

    def stop(self) -> None:
        """Make :meth:`deliver_all` return at its next wait."""
        self._stopping.set()

    def deliver_all(self) -> list[Delivery]:
        """Deliver until the queue is empty, backing off after failures; returns early after :meth:`stop`.

        Raises GatewayUnreachableError after ``retry.max_attempts`` failures in a row.
        """
        deliveries: list[Delivery] = []
        delays = self.config.retry.delays(self._rng)
        failures_in_a_row = 0
        while not self._stopping.is_set():
            try:
                delivery = self.deliver()
            except DeliveryError as exc:
                failures_in_a_row += 1
                limit = self.config.retry.max_attempts
                if limit is not None and failures_in_a_row >= limit:
                    raise GatewayUnreachableError(f"{failures_in_a_row} connections failed, the last: {exc}") from exc
                delay = next(delays)
                log.info(
                    "%s: delivery failed (%s); %d queued; next try in %.2fs", self.name, exc, len(self.queue), delay
                )
                self._stopping.wait(delay)
                continue
            if delivery is None:
                return deliveries
            deliveries.append(delivery)
            delays, failures_in_a_row = self.config.retry.delays(self._rng), 0
        return deliveries

    def deliver(self) -> Delivery | None:
        """One connection delivering up to ``batch`` queued readings; None when nothing is queued."""
        pending = self.queue.pending(self.config.batch)
        if not pending:
            return None
        try:
            return self._deliver(pending)
        except (OSError, EOFError, TLSError, ProtocolError) as exc:
            self.failed_attempts += 1
            if isinstance(exc, TLSError):
                self._ticket_session = None  # a failed TLS exchange starts again from the IBE-PSK
            raise DeliveryError(_describe(exc)) from exc
        except DeliveryError:
            self.failed_attempts += 1
            raise

    def _deliver(self, pending: list[QueuedReading]) -> Delivery:
        started = time.perf_counter()
        sock = self._open_socket(self.config.gateway, self.config.timeout)
        conn = TLSConnection(sock)
        try:
            # Without a ticket, the oldest reading rides in the first flight.
            early = pending[0] if self._ticket_session is None else None
            conn.handshakeClientCert(
                settings=self._settings,
                serverName=self.config.gateway_name,
                session=self._ticket_session,
                early_data=self._line(early) if early is not None else None,
            )
            handshake_ms = _ms_since(started)
            rest = pending[1:] if early is not None else pending
            if rest:
                conn.write(b"".join(self._line(reading) for reading in rest))
            self._await_acks(conn, {reading.seq for reading in pending})
            delivery = Delivery(
                len(pending),
                conn.handshake_mode,
                conn.early_data_status,
                conn.certificate_requests_answered > 0,
                handshake_ms,
                _ms_since(started),
            )
            self._keep_newest_ticket(conn)
        finally:
            _close_quietly(conn, sock)
        log.info("%s: %d acknowledged (%s)", self.name, delivery.acknowledged, delivery.mode)
        return delivery

    def _line(self, reading: QueuedReading) -> bytes:
        return Reading(self.name, self.queue.queue_id, reading.seq, reading.at, reading.value).encode()

    def _await_acks(self, conn: TLSConnection, outstanding: set[int]) -> None:
        """Read until every reading is acknowledged, dropping each from the queue as its ack arrives.

        The gateway's CertificateRequest and tickets are handled inside these reads.
        """
        lines = LineBuffer()
        while outstanding:
            data = conn.read()
            if not data:
                raise DeliveryError(
                    f"the gateway closed the connection with {len(outstanding)} readings unacknowledged"
                )
            for line in lines.feed(data):
                message = decode_gateway_message(line)
                if isinstance(message, GatewayError):
                    raise GatewayRefusedError(f"the gateway refused: {message.message}")
                acknowledged = outstanding.intersection(message.seqs)
                self.queue.acknowledge(acknowledged)
                outstanding -= acknowledged

    def _keep_newest_ticket(self, conn: TLSConnection) -> None:
        """Resume next time with the newest ticket of this connection: after PHA, the one carrying our identity.

        A connection's session lists only the tickets it received, so a ticket is never used twice.
        """
        session = conn.session
        tickets = getattr(session, "tickets", None)
        if not tickets:
            self._ticket_session = None
            return
        tickets[:] = tickets[-1:]
        self._ticket_session = session


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, TimeoutError) and exc.strerror:
        return exc.strerror  # "Connection refused", "No route to host", ...
    if isinstance(exc, ProtocolError):
        return f"the gateway broke the protocol: {exc}"
    return describe_failure(exc)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _close_quietly(conn: TLSConnection, sock: Any) -> None:
    with contextlib.suppress(Exception):  # close_notify to a gateway that is gone: nothing left to tell it
        conn.close()
    with contextlib.suppress(OSError):
        sock.close()
