"""A small threaded TLS server around ``ibepsk.TLSConnection`` (behind ``ibepsk serve``).

One thread per connection. Each connection logs its handshake (or how it failed),
each post-handshake authentication as it happens, and how it failed if it did;
a connection the peer ends (close_notify, or just closing its socket) is not a
failure. When the application is done, the server reads a certificate request's
answer still in flight, then closes with close_notify both ways.
Whatever a peer sends, the server answers with an alert or closes, and goes on
serving: failures are logged, never raised out of the accept loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlslite.constants import AlertDescription, KeyUpdateMessageType
from tlslite.errors import TLSAbruptCloseError, TLSAlert, TLSError, TLSLocalAlert, TLSRemoteAlert
from tlslite.utils.codec import DecodeError

from .keys import IdentityKey
from .stopping import CLOSE_TIMEOUT, SHUTDOWN_GRACE_SECONDS, STOPPING_HELP
from .tls import ClientAuthentication, HandshakeSettings, IbeKeyring, PostHandshakeAuthError, TLSConnection
from .tls.driving import run_to_completion
from .tls.early_data import EarlyDataStatus
from .tls.replay import ReplayStore
from .tls.versions import TLS_1_3

__all__ = ["SHUTDOWN_GRACE_SECONDS", "STOPPING_HELP"]  # also here for the servers built on this module

log = logging.getLogger("ibepsk.server")

_ACCEPT_RETRY_SECONDS = 0.05
#: How long it then waits for the threads of the connections it cut to notice.
_CUT_WAIT_SECONDS = 1.0
_LINGER_CHUNK = 65536


#: Bytes of a session ticket key (tlslite-ng encrypts tickets with AES-256-GCM or ChaCha20-Poly1305).
TICKET_KEY_BYTES = 32
#: Also allow PSK-only key exchange (no forward secrecy), psk_dhe_ke still preferred.
PSK_MODES_WITH_PSK_KE = ["psk_dhe_ke", "psk_ke"]


def server_settings(
    identity_keys: list[IdentityKey],
    *,
    default_identity: str | None = None,
    allow_psk_ke: bool = False,
    tickets: bool = True,
    accept_early_data: int = 0,
    replay_store: ReplayStore | None = None,
    external_psks: list[tuple[bytearray, bytearray, str]] | None = None,
    ticket_keys: list[bytes] | None = None,
) -> HandshakeSettings:
    """Server settings for IBE-PSK (and external PSK) handshakes.

    ``ticket_keys``: the first encrypts new tickets, all decrypt (rotation); by default one random key, so only
    this process can resume its tickets.
    """
    settings = HandshakeSettings()
    settings.pskConfigs = list(external_psks or [])
    settings.accept_early_data = accept_early_data
    settings.replay_store = replay_store
    if identity_keys:
        settings.ibe_keyring = IbeKeyring(identity_keys, default=default_identity)
    if allow_psk_ke:
        settings.psk_modes = PSK_MODES_WITH_PSK_KE
    if tickets:
        settings.ticketKeys = [bytearray(key) for key in ticket_keys or [os.urandom(TICKET_KEY_BYTES)]]
    return settings


def load_ticket_key(path: str | Path) -> bytes:
    """A session ticket key from a file of at least 32 secret bytes, readable by its owner only (mode 0600).

    Every server (or worker) given the same file resumes the others' tickets. The file's bytes are hashed to
    the key, so any 32+ bytes of randomness do: ``head -c 32 /dev/urandom > ticket.key``.
    """
    path = Path(path)
    if path.stat().st_mode & 0o077:
        raise ValueError(f"{path}: the ticket key is readable by others: chmod 600 {path}")
    secret = path.read_bytes()
    if len(secret) < TICKET_KEY_BYTES:
        raise ValueError(f"{path}: a ticket key needs at least {TICKET_KEY_BYTES} bytes, this file has {len(secret)}")
    return hashlib.sha256(b"ibepsk session ticket key\0" + secret).digest()


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
    #: Seconds an established connection may stay idle, when not ``timeout`` (the asyncio server only).
    idle_timeout: float | None = None
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
    if isinstance(exc, PostHandshakeAuthError):  # tlslite's str() of its errors is their repr()
        return " ".join(map(str, exc.args))
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
        conn.closeSocket = False  # tlslite would close it right after an alert: we linger first, then close it
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
            _linger(sock, exc)
            return
        self.stats.count(conn, ok=True)
        log_handshake(peer, conn, (time.perf_counter() - started) * 1000)
        conn.on_client_auth = lambda answer: log_client_auth(peer, answer)
        try:
            self.application(conn)
        except (TLSAbruptCloseError, ConnectionError):  # the peer closed its socket: its way to end, not a failure
            log_closed_without_close_notify(peer)
        except Exception as exc:  # nor can an application error
            self._log_failure(peer, started, exc, conn, stage="after handshake")
            _close_quietly(conn)
            _linger(sock, exc)
        else:
            self._finish(conn, sock, peer, started)

    def _finish(self, conn: TLSConnection, sock: socket.socket, peer: tuple[str, int], started: float) -> None:
        """After the application: judge a certificate request's answer still in flight, then close_notify both ways.

        Closing at once would cut such an answer off (the peer gets a reset) and leave it unjudged.
        """
        try:
            _read_pending_answers(conn, self.config.timeout)
        except Exception as exc:
            self._log_failure(peer, started, exc, conn, stage="post-handshake auth")
            _close_quietly(conn)
            _linger(sock, exc)
            return
        _close_both_ways(conn, sock, self.config.timeout)

    @staticmethod
    def _log_failure(
        peer: tuple[str, int], started: float, exc: BaseException, conn: TLSConnection, stage: str = "handshake"
    ) -> None:
        log_failure(peer, exc, conn, (time.perf_counter() - started) * 1000, stage)


def log_handshake(peer: tuple[str, int], conn: TLSConnection, took_ms: float) -> None:
    log.info("%s:%d handshake ok %s %.1fms", peer[0], peer[1], describe_connection(conn), took_ms)


def log_failure(
    peer: tuple[str, int], exc: BaseException, conn: TLSConnection, took_ms: float, stage: str = "handshake"
) -> None:
    """One line; a traceback only for what no peer should be able to cause (a bug)."""
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


def log_closed_without_close_notify(peer: tuple[str, int]) -> None:
    log.info("%s:%d closed by the peer without close_notify", peer[0], peer[1])


def _close_quietly(closable: Any) -> None:
    # The peer may already be gone; there is nothing left to tell it.
    with contextlib.suppress(Exception):
        closable.close()


def _linger(sock: socket.socket, failure: BaseException) -> None:
    """After an alert: half-close, then read and drop what the peer still sends until it closes (CLOSE_TIMEOUT
    at most). It runs in the connection's own thread: the accept loop goes on meanwhile.

    Closing at once would answer the peer's bytes still in flight (the rest of its flight, its request) with a
    reset, which reaches the peer before it reads the alert: it sees "connection reset" or EPIPE instead.
    """
    if isinstance(failure, TimeoutError | TLSAbruptCloseError | ConnectionError):
        return  # a silent peer has nothing in flight, a gone one reads nothing more
    deadline = time.monotonic() + CLOSE_TIMEOUT
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            if not sock.recv(_LINGER_CHUNK):
                return


def log_client_auth(peer: tuple[str, int], answer: ClientAuthentication | None) -> None:
    if answer is None:
        log.info("%s:%d post-handshake auth declined: the client sent no certificate", peer[0], peer[1])
    else:
        log.info("%s:%d post-handshake auth ok client=%r (%s)", peer[0], peer[1], answer.subject, answer.method)


def _read_pending_answers(conn: TLSConnection, timeout: float) -> None:
    """Read until every certificate request is answered (each answer is judged as it arrives), for ``timeout``
    seconds at most; data the application left unread is dropped."""
    deadline = time.monotonic() + timeout
    while conn.client_auth_pending:
        if conn.closed:
            raise PostHandshakeAuthError("the client closed the connection without answering the certificate request")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the client did not answer the certificate request")
        conn.sock.settimeout(remaining)
        conn.read(min=0)


def _close_both_ways(conn: TLSConnection, sock: socket.socket, timeout: float) -> None:
    """Send close_notify, then read (for ``timeout`` seconds at most) until the peer's close_notify or EOF.

    tlslite's close() closes the socket right after its close_notify: what the peer
    sends meanwhile (a KeyUpdate, its own close_notify) then meets a reset. Shutting
    our write side after close_notify also stops tlslite from sending a second one
    when the peer's arrives. Whatever happens now, the exchange itself is complete.
    """
    if conn.closed:
        return  # the peer's close_notify came first, and tlslite has answered it
    deadline = time.monotonic() + timeout
    try:
        conn.send_close_notify()
        sock.shutdown(socket.SHUT_WR)
        while not conn.closed and (remaining := deadline - time.monotonic()) > 0:
            conn.sock.settimeout(remaining)
            conn.read()  # a KeyUpdate is processed, application data dropped
    except (TLSError, OSError):
        pass


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


#: The most of a request ``--www`` reads before it answers anyway.
MAX_WWW_REQUEST = 16384


def complete_request(data: bytes | bytearray) -> bool:
    return b"\r\n\r\n" in data


def www_page(conn: TLSConnection, request: bytes) -> bytes:
    request_line = request.split(b"\r\n", 1)[0].decode("latin-1")
    body = (
        f"ibepsk s_server\n{describe_connection(conn)}\nprotocol={conn.getVersionName()}\nrequest={request_line}\n"
    ).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode() + body


def asks_for_key_update(request: bytes | bytearray) -> bool:
    """``GET /keyupdate``: the path tlslite-ng's test server answers after a KeyUpdate (conformance suites use it)."""
    request_line = request.split(b"\r\n", 1)[0].split(b" ")
    return len(request_line) > 1 and request_line[1].startswith(b"/keyupdate")


def www_early_data_handler(conn: TLSConnection, early_data: bytes) -> bytes | None:
    """Answer a request that arrived whole as 0-RTT data at once, as 0.5-RTT data."""
    request = conn.early_data
    if not complete_request(request) or asks_for_key_update(request):
        return None  # answered after the handshake (a KeyUpdate needs the application traffic keys)
    return www_page(conn, request)


# --- --www without I/O: both servers read and write around these ----------------------


@dataclass(frozen=True)
class WwwAnswer:
    """What ``--www`` sends once it has the request: a KeyUpdate(update_requested) first if ``key_update``."""

    page: bytes
    key_update: bool = False


def www_wants_more(conn: TLSConnection, request: bytes | bytearray) -> bool:
    """Whether to read on: ``request`` (the 0-RTT data, then what was read) is not whole yet, nor answered as 0-RTT
    data already, nor too long to wait for the rest."""
    return not (conn.early_data_answered or complete_request(request) or len(request) >= MAX_WWW_REQUEST)


def www_answer(conn: TLSConnection, request: bytes) -> WwwAnswer | None:
    """Like ``openssl s_server -www``: a page describing the connection; None when there is nothing to send (the
    request was answered as 0-RTT data, or the client closed before asking).

    ``GET /keyupdate`` is answered after a KeyUpdate(update_requested), as tlslite-ng's test server does.
    """
    if conn.early_data_answered or conn.closed:
        return None
    return WwwAnswer(www_page(conn, request), key_update=asks_for_key_update(request) and conn.version == TLS_1_3)


def www_application(conn: TLSConnection) -> None:
    """:func:`www_answer` to one HTTP request."""
    request = bytearray(conn.early_data)
    while www_wants_more(conn, request) and (chunk := conn.read()):
        request += chunk
    answer = www_answer(conn, bytes(request))
    if answer is None:
        return
    if answer.key_update:
        run_to_completion(conn.send_keyupdate_request(KeyUpdateMessageType.update_requested), conn.sock)
    conn.write(answer.page)
