"""asyncio streams over ``ibepsk.TLSConnection``: tlslite-ng's generators driven by the event loop.

tlslite-ng's I/O methods (``handshakeServerAsync``, ``handshakeClientCert(async_=True)``,
``readAsync``, ``writeAsync``) are generators that yield 0 when they would block on a read.
Here they run over a socket-like buffer: ``recv()`` hands over what the event loop has
received (or says "would block"), ``send()`` passes bytes straight to the transport, so a
send never blocks and never yields. Each time bytes arrive the protocol resumes the
generator in progress — the handshake, then an endless read that feeds an
``asyncio.StreamReader``. No threads; one object per connection.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol, cast

from tlslite.constants import ContentType
from tlslite.errors import TLSAbruptCloseError

from ..stopping import CLOSE_TIMEOUT
from ..tls import ClientAuthentication, HandshakeSettings, PostHandshakeAuthError, TLSConnection
from ..tls.driving import is_waiting
from ..tls.records import HEADER_LENGTH, declared_length

#: Seconds a peer may take to complete the handshake before it is cut off.
DEFAULT_HANDSHAKE_TIMEOUT = 10.0

ClientConnectedCallback = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None]


class HandshakeObserver(Protocol):
    """What a server wants to hear about its connections (``ibepsk serve`` logs and counts them)."""

    def connection_started(self, protocol: TLSProtocol) -> None: ...

    def handshake_done(self, conn: TLSConnection, peer: tuple[str, int], seconds: float) -> None: ...

    def handshake_failed(
        self, conn: TLSConnection, peer: tuple[str, int], exc: BaseException, seconds: float
    ) -> None: ...


class _TransportSocket:
    """The socket tlslite-ng sees: received bytes from a buffer, sent bytes straight to the transport."""

    __slots__ = ("_eof", "_received", "_record_left", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._received = bytearray()
        self._record_left = 0  # bytes of the record being handed out still to hand out
        self._eof = False

    def feed(self, data: bytes) -> None:
        self._received += data

    def feed_eof(self) -> None:
        self._eof = True

    def recv(self, bufsize: int) -> bytes:
        """Whole records only: a tlslite read that waits is then always at a record boundary, with nothing half
        read in its generator's locals, so the read can be started over (a CertificateRequest sent meanwhile
        changes which messages tlslite's read accepts)."""
        if not self._record_left:
            self._record_left = _whole_record_length(self._received)
        if self._record_left:
            data = bytes(self._received[: min(bufsize, self._record_left)])
            del self._received[: len(data)]
            self._record_left -= len(data)
            return data
        if self._eof:  # what is left of a truncated record, then b"": the end
            data = bytes(self._received[:bufsize])
            del self._received[:bufsize]
            return data
        raise BlockingIOError(errno.EAGAIN, "no whole record received yet")  # tlslite yields 0

    def send(self, data: bytes | bytearray) -> int:
        if not self._transport.is_closing():
            self._transport.write(bytes(data))
        return len(data)

    @property
    def between_records(self) -> bool:
        """Nothing of a next record has arrived: a read that waits now waits for a new record, not for the rest of
        one (as in a bulk transfer, whose records arrive in pieces)."""
        return not self._received and not self._record_left

    def sendall(self, data: bytes | bytearray) -> None:
        self.send(data)

    def close(self) -> None:
        """tlslite closes its socket when the TLS connection ends; the protocol decides when the transport closes."""

    def shutdown(self, how: int) -> None:
        """As :meth:`close`."""

    def getpeername(self) -> Any:
        return self._transport.get_extra_info("peername")

    def getsockname(self) -> Any:
        return self._transport.get_extra_info("sockname")

    def settimeout(self, value: float | None) -> None:
        """Timeouts are the event loop's business."""

    def gettimeout(self) -> float | None:
        return None

    def setsockopt(self, level: int, optname: int, value: int) -> None:
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(level, optname, value)


def _whole_record_length(received: bytearray) -> int:
    """The length (header included) of the record ``received`` starts with once all of it is there, else 0."""
    # Not records.record_length: that one takes application data only; here a record of any type passes.
    if len(received) < HEADER_LENGTH:
        return 0
    if received[0] not in ContentType.all:
        return len(received)  # no TLS record (an SSLv2 hello, garbage): tlslite decides what it is
    length = declared_length(received)
    return length if len(received) >= length else 0


def _run_without_waiting(steps: Iterator[Any]) -> Any:
    """Run a tlslite generator that only sends (over :class:`_TransportSocket` it never waits); its result."""
    result = None
    for step in steps:
        if is_waiting(step):
            raise RuntimeError("tlslite-ng waited for the peer in an operation that only sends")
        result = step
    return result


class TLSProtocol(asyncio.Protocol):
    """One TLS connection: runs the handshake, then reads records into the application's protocol.

    Ten thousand of these may sit idle at once, so a connection waiting for its peer between records holds
    no tlslite generator (a read starts afresh when a record arrives) and no keyed record cipher. One
    waiting for the rest of a record keeps both (a few KiB), since the rest is on its way; a peer that
    stalls there is the application's read timeout's to end (as ``ibepsk serve``'s does).
    """

    def __init__(
        self,
        start_handshake: Callable[[TLSConnection], Iterator[Any]],
        on_established: Callable[[TLSProtocol], object],
        *,
        handshake_timeout: float | None,
        observer: HandshakeObserver | None = None,
    ) -> None:
        self._start_handshake = start_handshake
        self._on_established = on_established
        self._handshake_timeout = handshake_timeout
        self._observer = observer
        self.handshake_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.conn: TLSConnection | None = None
        self.transport: asyncio.Transport | None = None
        self.app_protocol: asyncio.Protocol | None = None
        self._socket: _TransportSocket | None = None
        self._steps: Iterator[Any] | None = None
        self._reading = False
        self._read_idle = False  # reading, and the last read waited for a record: none is in progress
        self._release_after_writes: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._started = 0.0
        self._client_auth_waiters: list[asyncio.Future[None]] = []
        self._failure: Exception | None = None
        self._lingering = False

    @property
    def peer(self) -> tuple[str, int]:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        return (peer[0], peer[1]) if peer else ("?", 0)

    @property
    def failure(self) -> Exception | None:
        """What ended the connection other than a clean close (``TLSAbruptCloseError``: no close_notify)."""
        return self._failure

    def _failure_for_application(self) -> Exception | None:
        """A socket closed without close_notify reads as the end of the stream, as with asyncio's own TLS."""
        return None if isinstance(self._failure, TLSAbruptCloseError) else self._failure

    # --- asyncio.Protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.transport = transport
        self._started = time.perf_counter()
        self._socket = _TransportSocket(transport)
        self.conn = TLSConnection(self._socket)
        if self._handshake_timeout is not None:
            self._timer = asyncio.get_running_loop().call_later(self._handshake_timeout, self._handshake_timed_out)
        try:
            self._steps = self._start_handshake(self.conn)
        except Exception as exc:  # bad settings: the handshake cannot even start
            self._fail(exc)
            return
        self._advance()

    def data_received(self, data: bytes) -> None:
        if self._socket is not None and not self._lingering:
            self._socket.feed(data)
            self._resume()

    def eof_received(self) -> bool:
        if self._socket is not None and not self._lingering:
            self._socket.feed_eof()
            self._resume()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if not self.handshake_done.done():
            self._fail(exc or ConnectionResetError("the peer closed the connection during the handshake"))
        self._close_steps()
        if self.app_protocol is not None:
            self.app_protocol.connection_lost(exc or self._failure_for_application())
        self._settle_client_auth(exc or self._failure or ConnectionResetError("the connection is closed"))
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        if self.app_protocol is not None:
            self.app_protocol.pause_writing()

    def resume_writing(self) -> None:
        if self.app_protocol is not None:
            self.app_protocol.resume_writing()

    # --- driving tlslite ------------------------------------------------------

    def _resume(self) -> None:
        """Bytes (or the end) arrived: go on with the handshake, or start the read that waits for them."""
        if self._read_idle:
            self._read_idle = False
            self._read_next()
        self._advance()

    def _advance(self) -> None:
        """Run the generator in progress until it waits for bytes; deliver what the reads return."""
        while self._steps is not None:
            try:
                step = next(self._steps)
            except StopIteration:
                self._steps = None
                if self._reading:
                    self._read_next()  # a read of nothing more (b"" comes back as a value, not here)
                else:
                    self._established()
                continue
            except Exception as exc:
                self._steps = None
                self._fail(exc)
                return
            if is_waiting(step):  # sends never block here: "wants write" is as good as "wants read"
                if self._reading and self._socket is not None and self._socket.between_records:
                    self._go_idle()
                self._check_client_auth()
                return
            if self._reading:
                self._deliver(step)

    def _go_idle(self) -> None:
        """The read waits at a record boundary (see _TransportSocket.recv) with nothing of the next record here: a
        new read can take over when it arrives, so none is kept meanwhile, nor the record ciphers' keyed state. (A
        read waiting for the rest of a record keeps both: the rest is on its way, and each re-keying costs ~2 µs.)"""
        assert self.conn is not None
        self._close_steps()
        self._read_idle = True
        self.conn.release_idle_ciphers()

    def _established(self) -> None:
        self._cancel_timer()
        assert self.conn is not None
        if self._observer is not None:
            self._observer.handshake_done(self.conn, self.peer, time.perf_counter() - self._started)
        self.handshake_done.set_result(None)
        self._on_established(self)
        self._read_next()

    def _read_next(self) -> None:
        assert self.conn is not None
        if self.conn.closed:
            self._steps = None
            return
        self._reading = True
        self._steps = self.conn.readAsync()

    def _deliver(self, data: bytes | bytearray) -> None:
        assert self.conn is not None
        self._check_client_auth()
        if data:
            if self.app_protocol is not None:
                self.app_protocol.data_received(bytes(data))
            self._read_next()
            return
        # The peer's close_notify (tlslite has answered it): end of stream.
        self._steps = None
        if self.app_protocol is not None:
            self.app_protocol.eof_received()
        self._close_transport()

    def _fail(self, exc: Exception) -> None:
        self._cancel_timer()
        self._failure = exc
        if not self.handshake_done.done():
            if self._observer is not None and self.conn is not None:
                self._observer.handshake_failed(self.conn, self.peer, exc, time.perf_counter() - self._started)
            self.handshake_done.set_exception(exc)
            self.handshake_done.exception()  # retrieved: a server's failed handshakes are the observer's to report
        elif isinstance(exc, TLSAbruptCloseError) and self.app_protocol is not None:
            self.app_protocol.eof_received()  # the peer closed its socket without close_notify
        self._settle_client_auth(exc)
        self.linger()

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if not self.handshake_done.done():
            self._steps = None
            self._fail(TimeoutError("the handshake did not complete in time"))
            if self.transport is not None:
                self.transport.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close_steps(self) -> None:
        self._read_idle = False
        steps, self._steps = self._steps, None
        if steps is not None and hasattr(steps, "close"):
            steps.close()

    def _close_transport(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    # --- what the stream side asks for --------------------------------------------

    def send(self, steps: Iterator[Any]) -> Any:
        """Run a tlslite operation that only sends (a write, a KeyUpdate, a CertificateRequest)."""
        return _run_without_waiting(steps)

    def after_write(self) -> None:
        """Application data went out: a connection waiting for its peer frees the ciphers again once the application
        is done writing for this turn of the event loop, so a burst of writes keys the write cipher once, not once
        per write, and a connection that answers and waits holds no keyed cipher while it waits."""
        if self._read_idle and self._release_after_writes is None:
            self._release_after_writes = asyncio.get_running_loop().call_soon(self._release_ciphers_after_writes)

    def _release_ciphers_after_writes(self) -> None:
        self._release_after_writes = None
        if self._read_idle and self.conn is not None:
            self.conn.release_idle_ciphers()

    def ask_for_client_auth(self, *, required: bool) -> None:
        """Send a CertificateRequest; the answer is judged as it arrives (see :meth:`wait_for_client_auth`)."""
        assert self.conn is not None
        self.send(self.conn.request_client_auth_async(required=required))
        self.read_again()

    def read_again(self) -> None:
        """Start tlslite's read over (it waits at a record boundary): it chooses the messages it accepts as it
        starts, and a CertificateRequest sent since makes the client's Certificate one of them."""
        if self._reading and self._steps is not None:
            self._close_steps()
            self._read_next()
            self._advance()

    async def wait_for_client_auth(self) -> None:
        """Until no certificate request is pending; raises what ended the connection meanwhile."""
        assert self.conn is not None
        if self._failure is not None:
            raise self._failure
        if not self.conn.client_auth_pending:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._client_auth_waiters.append(waiter)
        await waiter

    def _check_client_auth(self) -> None:
        if self._client_auth_waiters and self.conn is not None and not self.conn.client_auth_pending:
            self._settle_client_auth(None)

    def _settle_client_auth(self, exc: Exception | None) -> None:
        waiters, self._client_auth_waiters = self._client_auth_waiters, []
        for waiter in waiters:
            if waiter.done():
                continue
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)

    def linger(self) -> None:
        """End the connection without close_notify (after an alert, say): half-close, then drop what the peer
        still sends until it closes, ``CLOSE_TIMEOUT`` at most.

        Closing at once would leave the peer's bytes in flight (the rest of its flight, its request) to meet a
        reset, which reaches the peer before it reads the alert: it sees "connection reset" or EPIPE instead.
        """
        transport = self.transport
        if transport is None or transport.is_closing() or self._lingering:
            return
        if not transport.can_write_eof():
            transport.close()
            return
        self._lingering = True
        self._close_steps()
        transport.write_eof()  # what is written (the alert) still goes out first
        self._cancel_timer()
        self._timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._close_transport)

    async def close_gracefully(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """close_notify, then wait (``timeout`` at most) for the peer's close_notify or EOF before closing.

        Closing the transport at once would cut off what the peer still sends (its close_notify, a KeyUpdate):
        it would meet a reset.
        """
        conn, transport = self.conn, self.transport
        if conn is None or transport is None or transport.is_closing():
            return
        if not conn.closed:
            self._close_steps()
            try:
                _run_without_waiting(conn.closeAsync())
            except Exception:
                transport.abort()
                return
        if transport.can_write_eof():
            transport.write_eof()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except TimeoutError:
            transport.abort()


class TLSTransport(asyncio.Transport):
    """The application's transport: writes are encrypted; ``get_extra_info("tls")`` is the TLS connection."""

    def __init__(self, protocol: TLSProtocol) -> None:
        super().__init__()
        self._tls = protocol
        assert protocol.conn is not None and protocol.transport is not None
        self._conn = protocol.conn
        self._raw = protocol.transport
        self._closing = False

    @property
    def tls_protocol(self) -> TLSProtocol:
        return self._tls

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "tls":
            return self._conn
        return self._raw.get_extra_info(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._conn.closed:
            raise ConnectionResetError("the TLS connection is closed")
        if data:
            self._tls.send(self._conn.writeAsync(bytes(data)))
            self._tls.after_write()

    def can_write_eof(self) -> bool:
        return False  # TLS has no half-close: close_notify ends both directions' data in tlslite

    def is_closing(self) -> bool:
        return self._closing or self._raw.is_closing()

    def close(self) -> None:
        """close_notify both ways (in the background)."""
        if self._closing:
            return
        self._closing = True
        task = asyncio.get_running_loop().create_task(self._tls.close_gracefully())
        _background.add(task)
        task.add_done_callback(_background.discard)

    def abort(self) -> None:
        self._closing = True
        self._raw.abort()

    def pause_reading(self) -> None:
        self._raw.pause_reading()

    def resume_reading(self) -> None:
        self._raw.resume_reading()

    def is_reading(self) -> bool:
        return self._raw.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._raw.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._raw.get_write_buffer_size()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._tls.app_protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._tls.app_protocol is not None
        return self._tls.app_protocol


#: Graceful closes in progress (a task nobody references may be collected before it runs).
_background: set[asyncio.Task[None]] = set()


def _attach_streams(
    protocol: TLSProtocol, client_connected_cb: ClientConnectedCallback | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamReaderProtocol, TLSTransport]:
    """Stack asyncio's stream protocol on the TLS connection, as asyncio's own SSL support does."""
    reader = asyncio.StreamReader()
    stream_protocol = asyncio.StreamReaderProtocol(reader, client_connected_cb)
    transport = TLSTransport(protocol)
    transport.set_protocol(stream_protocol)
    stream_protocol.connection_made(transport)
    return reader, stream_protocol, transport


async def open_connection(
    host: str,
    port: int,
    *,
    settings: HandshakeSettings,
    server_name: str | None = None,
    early_data: bytes | None = None,
    session: Any = None,
    checker: Any = None,
    cert_chain: Any = None,
    private_key: Any = None,
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect, run the client handshake (``early_data`` goes in the first flight), return the streams.

    ``writer.get_extra_info("tls")`` is the :class:`ibepsk.TLSConnection` (handshake_mode, ibe_identity,
    early_data_status, and ``session`` to resume with).
    """
    loop = asyncio.get_running_loop()

    def start(conn: TLSConnection) -> Iterator[Any]:
        return conn.handshakeClientCert(  # type: ignore[no-any-return]
            certChain=cert_chain,
            privateKey=private_key,
            session=session,
            settings=settings,
            checker=checker,
            serverName=server_name,
            async_=True,
            early_data=early_data,
        )

    streams: list[tuple[asyncio.StreamReader, asyncio.StreamReaderProtocol, TLSTransport]] = []
    _, protocol = await loop.create_connection(
        lambda: TLSProtocol(
            start, lambda done: streams.append(_attach_streams(done)), handshake_timeout=handshake_timeout
        ),
        host,
        port,
    )
    await protocol.handshake_done
    reader, stream_protocol, transport = streams[0]
    return reader, asyncio.StreamWriter(transport, stream_protocol, reader, loop)


async def start_server(
    client_connected_cb: ClientConnectedCallback,
    host: str | None = None,
    port: int | None = None,
    *,
    settings: HandshakeSettings,
    cert_chain: Any = None,
    private_key: Any = None,
    alpn: list[bytes] | None = None,
    verify_client: bool = False,
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
    observer: HandshakeObserver | None = None,
    **server_options: Any,
) -> asyncio.Server:
    """Listen; for each client that completes the handshake, call ``client_connected_cb(reader, writer)``.

    A handshake that fails (the peer gets the alert) or takes longer than ``handshake_timeout`` seconds
    never reaches the callback. ``server_options`` go to ``loop.create_server`` (``reuse_port``, ``backlog``,
    ``sock``...).
    """

    factory = server_protocol_factory(
        client_connected_cb,
        settings=settings,
        cert_chain=cert_chain,
        private_key=private_key,
        alpn=alpn,
        verify_client=verify_client,
        handshake_timeout=handshake_timeout,
        observer=observer,
    )
    return await asyncio.get_running_loop().create_server(factory, host, port, **server_options)


def server_protocol_factory(
    client_connected_cb: ClientConnectedCallback,
    *,
    settings: HandshakeSettings,
    cert_chain: Any = None,
    private_key: Any = None,
    alpn: list[bytes] | None = None,
    verify_client: bool = False,
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
    observer: HandshakeObserver | None = None,
) -> Callable[[], TLSProtocol]:
    """What ``loop.create_server`` needs to run server handshakes and hand the streams to the callback."""

    def start(conn: TLSConnection) -> Iterator[Any]:
        return conn.handshakeServerAsync(
            settings=settings, certChain=cert_chain, privateKey=private_key, alpn=alpn, reqCert=verify_client
        )

    def established(protocol: TLSProtocol) -> None:
        _attach_streams(protocol, client_connected_cb)

    def protocol_factory() -> TLSProtocol:
        protocol = TLSProtocol(start, established, handshake_timeout=handshake_timeout, observer=observer)
        if observer is not None:
            observer.connection_started(protocol)
        return protocol

    return protocol_factory


def tls_protocol(writer: asyncio.StreamWriter) -> TLSProtocol:
    """The TLS protocol under a writer from :func:`open_connection` or :func:`start_server`."""
    transport = writer.transport
    if not isinstance(transport, TLSTransport):
        raise TypeError("not a writer of an ibepsk.asyncio connection")
    return transport.tls_protocol


async def request_client_auth(writer: asyncio.StreamWriter, *, required: bool = True) -> ClientAuthentication | None:
    """Post-handshake authentication: ask the client for a certificate and wait for its answer.

    Returns who the client is (None: it declined a request that was not ``required``). A refused answer
    raises the ``TLSLocalAlert`` sent to the client; one that cannot be asked, ``PostHandshakeAuthError``.
    Application data that arrives meanwhile stays readable.
    """
    protocol = tls_protocol(writer)
    conn = protocol.conn
    assert conn is not None
    answers: list[ClientAuthentication | None] = []
    report = conn.on_client_auth

    def record(answer: ClientAuthentication | None) -> None:
        answers.append(answer)
        if report is not None:
            report(answer)

    conn.on_client_auth = record
    try:
        protocol.ask_for_client_auth(required=required)
        await protocol.wait_for_client_auth()
    finally:
        conn.on_client_auth = report
    if not answers:
        raise PostHandshakeAuthError("the client did not answer the certificate request")
    return answers[-1]
