"""The server behind ``ibepsk serve``: one event loop, every connection a protocol object (no thread per client).

It logs what :class:`ibepsk.server.TLSServer` logs, in the same words: each
handshake (or how it failed), each post-handshake authentication, and how a
connection failed if it did. A handshake that takes longer than the timeout is
cut off, so silent or trickling clients cost a little memory, never a thread
or another client's time. When the application is done, a certificate
request's answer still in flight is read, then close_notify goes both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable

from tlslite.constants import KeyUpdateMessageType
from tlslite.errors import TLSAbruptCloseError

from ..server import (
    ServerConfig,
    ServerStats,
    log_client_auth,
    log_closed_without_close_notify,
    log_failure,
    log_handshake,
    www_answer,
    www_wants_more,
)
from ..stopping import SHUTDOWN_GRACE_SECONDS
from ..tls import TLSConnection
from ..tls.alerts import TlsAlert
from ..tls.pha import client_auth_to_request
from .streams import TLSProtocol, request_client_auth, server_protocol_factory, tls_protocol

log = logging.getLogger("ibepsk.server")

#: An application: the connection's streams, and how long the peer may stay silent.
AsyncApplication = Callable[[asyncio.StreamReader, asyncio.StreamWriter, float], Awaitable[None]]
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_READ_CHUNK = 65536


def use_uvloop() -> bool:
    """Run event loops on uvloop when it is installed (``pip install ibepsk[uvloop]``); whether it is."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


class AsyncTLSServer:
    """Accepts on an event loop, runs handshakes as bytes arrive, then runs ``application`` on the streams."""

    def __init__(self, config: ServerConfig, application: AsyncApplication) -> None:
        self.config = config
        self.application = application
        self.stats = ServerStats()
        self.server: asyncio.Server | None = None
        self._live: set[TLSProtocol] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0, sock: socket.socket | None = None) -> None:
        factory = server_protocol_factory(
            self._serve,
            settings=self.config.settings,
            cert_chain=self.config.cert_chain,
            private_key=self.config.private_key,
            alpn=self.config.alpn or None,
            verify_client=self.config.verify_client,
            handshake_timeout=self.config.timeout,
            observer=self,
        )
        loop = asyncio.get_running_loop()
        # A full accept queue drops SYNs, which the client retries after 1 s, then 3 s...: the tail latency.
        if sock is not None:
            self.server = await loop.create_server(factory, sock=sock, backlog=socket.SOMAXCONN)
        else:
            self.server = await loop.create_server(factory, host, port, reuse_address=True, backlog=socket.SOMAXCONN)

    @property
    def address(self) -> tuple[str, int]:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return host, port

    @property
    def in_progress(self) -> int:
        """Connections being served right now (handshakes included)."""
        return len(self._live)

    # --- HandshakeObserver ------------------------------------------------------

    def connection_started(self, protocol: TLSProtocol) -> None:
        self._live.add(protocol)
        protocol.closed.add_done_callback(lambda _: self._live.discard(protocol))

    def handshake_done(self, conn: TLSConnection, peer: tuple[str, int], seconds: float) -> None:
        self.stats.count(conn, ok=True)
        log_handshake(peer, conn, seconds * 1000)
        conn.on_client_auth = lambda answer: log_client_auth(peer, answer)

    def handshake_failed(self, conn: TLSConnection, peer: tuple[str, int], exc: BaseException, seconds: float) -> None:
        self.stats.count(conn, ok=False)
        log_failure(peer, exc, conn, seconds * 1000)

    # --- one connection ---------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        protocol = tls_protocol(writer)
        conn = writer.get_extra_info("tls")
        peer = protocol.peer
        started = time.perf_counter()
        try:
            await self.application(reader, writer, self.config.idle_timeout or self.config.timeout)
        except Exception as exc:  # a peer or an application error must never take the server down
            if isinstance(exc, TLSAbruptCloseError | ConnectionError):
                log_closed_without_close_notify(peer)
            else:
                log_failure(peer, exc, conn, _ms_since(started), stage="after handshake")
            protocol.linger()
            return
        if isinstance(protocol.failure, TLSAbruptCloseError):
            log_closed_without_close_notify(peer)  # read as the end of the stream by the application
            return
        await self._finish(protocol, conn, peer, started)

    async def _finish(self, protocol: TLSProtocol, conn: TLSConnection, peer: tuple[str, int], started: float) -> None:
        """Judge a certificate request's answer still in flight, then close_notify both ways."""
        try:
            async with asyncio.timeout(self.config.timeout):
                await protocol.wait_for_client_auth()
        except Exception as exc:
            if conn.client_auth_pending and isinstance(exc, TimeoutError):
                exc = TimeoutError("the client did not answer the certificate request")
            log_failure(peer, exc, conn, _ms_since(started), stage="post-handshake auth")
            protocol.linger()
            return
        await protocol.close_gracefully(self.config.timeout)

    # --- stopping -------------------------------------------------------------

    async def serve_until_signalled(self, signals: tuple[int, ...] = _STOP_SIGNALS) -> str:
        """Serve until one of ``signals``; then stop listening, drain, and say how that went."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in signals:
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        for signum in signals:  # a second one stops at once (KeyboardInterrupt)
            loop.remove_signal_handler(signum)
            signal.signal(signum, signal.default_int_handler)
        return await self.shut_down()

    async def shut_down(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> str:
        """Stop accepting, give connections in progress ``grace`` seconds, cut the rest; how that went."""
        assert self.server is not None
        self.server.close()
        if self._live:
            await asyncio.wait([protocol.closed for protocol in self._live], timeout=grace)
        unfinished = list(self._live)
        for protocol in unfinished:
            if protocol.transport is not None:
                protocol.transport.abort()
        return (
            f"{len(unfinished)} connection(s) cut short after {grace:g} s" if unfinished else "all connections finished"
        )


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


# --- applications -----------------------------------------------------------------


async def read_within(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """What the peer sends next (b"" once it has closed); TimeoutError if it stays silent ``timeout`` seconds.

    ``asyncio.timeout``, not ``asyncio.wait_for``: on Python 3.11 the latter runs each read in a task of its own,
    about 1 KiB more for every connection waiting for its client.
    """
    async with asyncio.timeout(timeout):
        return await reader.read(_READ_CHUNK)


async def echo_application(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
    """Send back whatever the client sends, until it closes."""
    while data := await read_within(reader, timeout):
        writer.write(data)
        await writer.drain()


async def www_application(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
    """:func:`ibepsk.server.www_answer` to one HTTP request."""
    conn: TLSConnection = writer.get_extra_info("tls")
    request = bytearray(conn.early_data)
    while www_wants_more(conn, request) and (chunk := await read_within(reader, timeout)):
        request += chunk
    answer = www_answer(conn, bytes(request))
    if answer is None:
        return
    if answer.key_update:
        tls_protocol(writer).send(conn.send_keyupdate_request(KeyUpdateMessageType.update_requested))
    writer.write(answer.page)
    await writer.drain()


def requiring_client_auth(application: AsyncApplication) -> AsyncApplication:
    """Authenticate the client right after the handshake, serve it only then (unless its ticket says who it is)."""

    async def authenticated_application(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        conn: TLSConnection = writer.get_extra_info("tls")
        try:
            asking = client_auth_to_request(conn, required=True)
        except TlsAlert as alert:
            tls_protocol(writer).send(conn.abort_with_alert_async(alert.description, alert.reason))  # raises it
            return
        if asking:
            async with asyncio.timeout(timeout):
                await request_client_auth(writer, required=True)
        await application(reader, writer, timeout)

    return authenticated_application


def requesting_client_auth(application: AsyncApplication) -> AsyncApplication:
    """Ask a TLS 1.3 client that offered post_handshake_auth for a certificate; serve it either way.

    The answer is judged as it arrives (the server also waits for one still in flight when the application is done).
    """

    async def asking_application(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
        conn: TLSConnection = writer.get_extra_info("tls")
        if client_auth_to_request(conn, required=False):
            tls_protocol(writer).ask_for_client_auth(required=False)
        await application(reader, writer, timeout)

    return asking_application


# --- processes ----------------------------------------------------------------------


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on one port (SO_REUSEPORT when more than one: the kernel spreads new
    connections over them, one per worker process)."""
    first = socket.create_server((host, port), reuse_port=count > 1, backlog=socket.SOMAXCONN)
    bound_port = first.getsockname()[1]
    others = (
        socket.create_server((host, bound_port), reuse_port=True, backlog=socket.SOMAXCONN) for _ in range(count - 1)
    )
    return [first, *others]


def raise_open_file_limit() -> int:
    """Raise this process's limit of open files to its hard limit (often 1024 → far more): one per connection."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):  # e.g. an unlimited hard limit the kernel caps lower
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def serve(
    config: ServerConfig,
    application: AsyncApplication,
    sock: socket.socket,
    signals: tuple[int, ...] = _STOP_SIGNALS,
) -> str:
    """Serve on ``sock`` in this process until one of ``signals``; how the drain went."""
    use_uvloop()
    raise_open_file_limit()

    async def main() -> str:
        server = AsyncTLSServer(config, application)
        await server.start(sock=sock)
        return await server.serve_until_signalled(signals)

    return asyncio.run(main())


def serve_in_workers(
    config: ServerConfig, application: AsyncApplication, sockets: list[socket.socket], report: Callable[[str], None]
) -> int:
    """One worker process per socket, each with its own event loop; SIGTERM/SIGINT to this process stop them all.

    Forked after the settings are built, so the workers share the ticket keys (a ticket from one resumes on
    another). Returns how many workers failed.
    """
    workers = [_fork_worker(config, application, sock, sockets, report) for sock in sockets]
    for sock in sockets:
        sock.close()

    def stop_workers(signum: int, frame: object) -> None:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_workers)
    signal.signal(signal.SIGINT, stop_workers)
    return sum(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0 for pid in workers)


def _fork_worker(
    config: ServerConfig,
    application: AsyncApplication,
    sock: socket.socket,
    sockets: list[socket.socket],
    report: Callable[[str], None],
) -> int:
    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:
        for other in sockets:
            if other is not sock:
                other.close()
        # Ctrl-C reaches the whole process group: the parent alone answers it, with one SIGTERM to each worker.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        report(f"worker {os.getpid()}: {serve(config, application, sock, (signal.SIGTERM,))}")
        status = 0
    except KeyboardInterrupt:  # a second SIGTERM: stop at once
        report(f"worker {os.getpid()}: interrupted")
    except BaseException:  # the worker must end here, never return into the parent's code
        log.exception("worker %d failed", os.getpid())
    finally:
        sys.stderr.flush()
        os._exit(status)
