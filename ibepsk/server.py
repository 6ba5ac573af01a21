"""A small threaded TLS server around ``ibepsk.TLSConnection`` (behind ``ibepsk serve``).

One thread per connection; every connection ends in exactly one log line.
Whatever a peer sends, the server answers with an alert or closes, and goes on
serving: failures are logged, never raised out of the accept loop.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tlslite.constants import AlertDescription
from tlslite.errors import TLSAbruptCloseError, TLSAlert, TLSError, TLSLocalAlert, TLSRemoteAlert
from tlslite.utils.codec import DecodeError

from .tls import HandshakeSettings, TLSConnection
from .tls.early_data import EarlyDataStatus

log = logging.getLogger("ibepsk.server")

_ACCEPT_RETRY_SECONDS = 0.05
#: How long a stopping server lets connections in progress finish before it cuts them off.
SHUTDOWN_GRACE_SECONDS = 5.0
#: What --help says about stopping a server.
STOPPING_HELP = (
    f"Ctrl-C or SIGTERM stops it: it stops listening and gives connections in progress "
    f"{SHUTDOWN_GRACE_SECONDS:g} seconds to finish before cutting them off."
)
#: How long it then waits for the threads of the connections it cut to notice.
_CUT_WAIT_SECONDS = 1.0


def stop_on_sigterm() -> None:
    """Make a service manager's SIGTERM stop a server as Ctrl-C does: KeyboardInterrupt in the main thread."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def shut_down(server: TLSServer) -> str:
    """Stop accepting, give connections in progress the grace period, and say how that went."""
    server.close()
    cut = server.drain(SHUTDOWN_GRACE_SECONDS)
    return f"{cut} connection(s) cut short after {SHUTDOWN_GRACE_SECONDS:g} s" if cut else "all connections finished"


Application = Callable[[TLSConnection], None]


@dataclass
class ServerConfig:
    settings: HandshakeSettings
    cert_chain: Any = None
    private_key: Any = None
    alpn: list[bytes] = field(default_factory=list)
    #: Seconds a peer may stay silent (handshake and application I/O).
    timeout: float = 10.0
    #: Send a CertificateRequest in certificate handshakes (``settings.client_auth_anchors`` validates the answer).
    verify_client: bool = False


@dataclass
class ServerStats:
    handshakes: int = 0
    failures: int = 0
    #: Offered 0-RTT by outcome: "accepted", or the rejection reason ("replay", "disabled", …).
    early_data: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, conn: TLSConnection, ok: bool) -> None:
        with self._lock:
            if ok:
                self.handshakes += 1
            else:
                self.failures += 1
            outcome = early_data_outcome(conn)
            if outcome is not None:
                self.early_data[outcome] += 1


def early_data_outcome(conn: TLSConnection) -> str | None:
    """``accepted``, the reason early data was rejected, or None when none was offered."""
    if conn.early_data_status == EarlyDataStatus.NOT_OFFERED:
        return None
    if conn.early_data_status == EarlyDataStatus.ACCEPTED:
        return "accepted"
    return str(conn.early_data_rejection or "rejected")


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, TLSLocalAlert):
        return f"sent alert {AlertDescription.toRepr(exc.description)}: {exc.message or ''}".rstrip(": ")
    if isinstance(exc, TLSRemoteAlert):
        return f"peer sent alert {AlertDescription.toRepr(exc.description)}"
    if isinstance(exc, TLSAbruptCloseError | ConnectionError | EOFError):
        return "peer closed the connection"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "peer timed out"
    return f"{type(exc).__name__}: {exc}"


def describe_connection(conn: TLSConnection) -> str:
    parts = [f"mode={conn.handshake_mode or '-'}"]
    if conn.ibe_identity:
        parts.append(f"identity={conn.ibe_identity}")
    if conn.psk_key_exchange:
        parts.append(f"kex={conn.psk_key_exchange}")
    parts.append(f"cipher={conn.getCipherName()}")
    outcome = early_data_outcome(conn)
    if outcome is not None:
        parts.append(f"early_data={outcome}")
    if conn.client_auth is not None:
        parts.append(f"client={conn.client_auth.subject!r} ({conn.client_auth.method})")
    return " ".join(parts)


class TLSServer:
    """Accepts TCP connections, runs the TLS handshake, then hands each connection to ``application``."""

    def __init__(self, config: ServerConfig, application: Application, host: str = "127.0.0.1", port: int = 0):
        self.config = config
        self.application = application
        self.stats = ServerStats()
        self._listener = socket.create_server((host, port), reuse_port=False)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: set[socket.socket] = set()  # connections being served
        self._settled = threading.Condition()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return host, port

    def start(self) -> TLSServer:
        """Serve in a background thread (tests, the demo)."""
        self._thread = threading.Thread(target=self.serve_forever, name="ibepsk-accept", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, peer = self._listener.accept()
            except OSError as exc:
                if self._stopping.is_set():
                    return
                # EMFILE under load, ECONNABORTED from a peer gone before accept(): keep serving.
                log.warning("accept failed: %s", exc)
                time.sleep(_ACCEPT_RETRY_SECONDS)
                continue
            self._start_serving(sock, peer)

    def _start_serving(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        with self._settled:
            self._live.add(sock)
        try:
            threading.Thread(target=self._serve_tracked, args=(sock, peer), daemon=True).start()
        except RuntimeError as exc:  # no thread to be had (resource limits): drop this one, keep serving
            log.warning("%s:%d dropped, no thread to serve it: %s", peer[0], peer[1], exc)
            self._forget(sock)
        except BaseException:  # Ctrl-C between accept() and start(): nothing will serve it
            self._forget(sock)
            raise

    def close(self) -> None:
        self._stopping.set()
        # shutdown() wakes a thread blocked in accept(); close() alone does not on Linux.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def in_progress(self) -> int:
        """Connections being served right now."""
        with self._settled:
            return len(self._live)

    def drain(self, timeout: float) -> int:
        """After :meth:`close`: wait up to ``timeout`` seconds for connections in progress to end, then cut
        the rest off (abruptly: their threads see the connection end and finish); how many were cut."""
        with self._settled:
            self._settled.wait_for(lambda: not self._live, timeout)
            unfinished = list(self._live)
        for sock in unfinished:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked reading or writing
        with self._settled:
            self._settled.wait_for(lambda: not self._live, _CUT_WAIT_SECONDS)
        return len(unfinished)

    def __enter__(self) -> TLSServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _serve_tracked(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        try:
            self._serve_one(sock, peer)
        finally:
            self._forget(sock)

    def _forget(self, sock: socket.socket) -> None:
        with self._settled:
            self._live.discard(sock)
            self._settled.notify_all()
        _close_quietly(sock)

    def _serve_one(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        """Handshake and run the application; the caller closes ``sock`` afterwards."""
        started = time.perf_counter()
        try:
            sock.settimeout(self.config.timeout)
            # Post-handshake messages are small writes answered by the peer: Nagle would hold them back.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:  # the peer reset before we got to it
            log.info("%s:%d gone before the handshake: %s", peer[0], peer[1], exc)
            return
        conn = TLSConnection(sock)
        try:
            conn.handshakeServer(
                settings=self.config.settings,
                certChain=self.config.cert_chain,
                privateKey=self.config.private_key,
                alpn=self.config.alpn or None,
                reqCert=self.config.verify_client,
            )
        except Exception as exc:  # a peer must never take the server down
            self.stats.count(conn, ok=False)
            self._log_failure(peer, started, exc, conn)
            return
        self.stats.count(conn, ok=True)
        took_ms = (time.perf_counter() - started) * 1000
        log.info("%s:%d handshake ok %s %.1fms", peer[0], peer[1], describe_connection(conn), took_ms)
        try:
            self.application(conn)
        except Exception as exc:  # nor can an application error
            self._log_failure(peer, started, exc, conn, stage="after handshake")
        finally:
            _close_quietly(conn)

    @staticmethod
    def _log_failure(
        peer: tuple[str, int], started: float, exc: BaseException, conn: TLSConnection, stage: str = "handshake"
    ) -> None:
        took_ms = (time.perf_counter() - started) * 1000
        expected = isinstance(exc, TLSAlert | TLSError | OSError | DecodeError | EOFError)
        outcome = early_data_outcome(conn)
        early = f" early_data={outcome}" if outcome is not None else ""
        log.log(
            logging.INFO if expected else logging.ERROR,
            "%s:%d %s failed: %s%s %.1fms",
            peer[0],
            peer[1],
            stage,
            describe_failure(exc),
            early,
            took_ms,
            exc_info=not expected,
        )


def _close_quietly(closable: Any) -> None:
    # The peer may already be gone; there is nothing left to tell it.
    with contextlib.suppress(Exception):
        closable.close()


# --- applications -----------------------------------------------------------------


def echo_application(conn: TLSConnection) -> None:
    """Send back whatever the client sends, until it closes."""
    while True:
        data = conn.read()
        if not data:
            return
        conn.write(data)


def echo_early_data_handler(conn: TLSConnection, early_data: bytes) -> bytes:
    """Echo 0-RTT data at once, as 0.5-RTT data."""
    return early_data


def _complete_request(data: bytes | bytearray) -> bool:
    return b"\r\n\r\n" in data


def _www_page(conn: TLSConnection, request: bytes) -> bytes:
    request_line = request.split(b"\r\n", 1)[0].decode("latin-1")
    body = (
        f"ibepsk s_server\n{describe_connection(conn)}\nprotocol={conn.getVersionName()}\nrequest={request_line}\n"
    ).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode() + body


def www_early_data_handler(conn: TLSConnection, early_data: bytes) -> bytes | None:
    """Answer a request that arrived whole as 0-RTT data at once, as 0.5-RTT data."""
    request = conn.early_data
    return _www_page(conn, request) if _complete_request(request) else None


def www_application(conn: TLSConnection) -> None:
    """Like ``openssl s_server -www``: answer one HTTP request with a page describing the connection."""
    if conn.early_data_answered:
        return  # answered already, before the handshake completed
    request = bytearray(conn.early_data)
    while not _complete_request(request) and len(request) < 16384:
        chunk = conn.read()
        if not chunk:
            break
        request += chunk
    conn.write(_www_page(conn, bytes(request)))
