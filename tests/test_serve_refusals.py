"""A refused client gets the alert, not a reset: the server half-closes and lingers after sending it.

Closing a socket that still has the peer's bytes unread (or that receives more afterwards) makes the kernel
send a reset; a client that writes after the reset has arrived gets EPIPE and never reads the alert.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from test_client_cert_profile import OpenSslPki, pki, serve  # noqa: F401 - the fixture
from test_pha_openssl import openssl  # noqa: F401 - the fixture
from tlslite.utils.keyfactory import parsePEMKey

from ibepsk.server import ServerConfig, TLSServer, server_settings, www_application
from ibepsk.tls import TrustAnchors, requiring_client_auth
from ibepsk.tls.certs import load_tlslite_chain

from tls_support import TIMEOUT, reset

#: Seconds between the client's records on their way to the server: the server decides on the client's
#: Certificate long before the rest of the client's flight reaches it.
PACE = 0.2
#: Seconds ``ibepsk connect`` waits after its handshake before it sends: by then the paced flight has met the
#: server's decision, and a reset has come back if there is to be one.
LATE = 1.0


class PacingProxy:
    """Between one client and a server: passes the client's bytes on one TLS record at a time, ``PACE`` seconds
    apart, the server's at once; a reset from the server reaches the client as a reset."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve_one, daemon=True).start()

    def _serve_one(self) -> None:
        client, _ = self._listener.accept()
        self._listener.close()
        upstream = socket.create_connection(self._target)
        threading.Thread(target=self._pass_server_bytes, args=(upstream, client), daemon=True).start()
        try:
            while record := _next_record(client):
                time.sleep(PACE)
                upstream.sendall(record)
                _raise_if_reset(upstream)  # now, not when the client's next record comes
            upstream.shutdown(socket.SHUT_WR)
        except OSError:
            reset(client)

    @staticmethod
    def _pass_server_bytes(upstream: socket.socket, client: socket.socket) -> None:
        try:
            while data := upstream.recv(65536):
                client.sendall(data)
            client.shutdown(socket.SHUT_WR)
        except OSError:
            reset(client)


def _next_record(sock: socket.socket) -> bytes:
    header = sock.recv(5, socket.MSG_WAITALL)
    if len(header) < 5:
        return b""
    length = struct.unpack(">H", header[3:])[0]
    return header + sock.recv(length, socket.MSG_WAITALL)


def _raise_if_reset(sock: socket.socket) -> None:
    time.sleep(PACE / 4)  # on loopback a reset answers what was sent at once
    if error := sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
        raise ConnectionResetError(error, os.strerror(error))


def late_connect(pki: OpenSslPki, port: int, certificate: str | None, *options: str) -> str:  # noqa: F811
    """``ibepsk connect`` sending its request (from stdin) ``LATE`` seconds after its handshake; its stderr."""
    command = [
        sys.executable, "-m", "ibepsk.cli", "connect", f"127.0.0.1:{port}", "--ca", str(pki.path("server-ca.pem")),
        "--servername", "localhost", "--wait", "2", *options,
    ]  # fmt: skip
    if certificate is not None:
        command += ["--cert", str(pki.path(f"{certificate}.pem")), "--key", str(pki.path(f"{certificate}.key"))]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stderr is not None
    status = process.stderr.readline()  # "connection to ...": the client's handshake is done
    time.sleep(LATE)
    _, errors = process.communicate(b"GET / HTTP/1.0\r\n\r\n", timeout=TIMEOUT)
    return (status + errors).decode()


@contextlib.contextmanager
def asyncio_server(pki: OpenSslPki, client_auth: str) -> Iterator[int]:  # noqa: F811
    """``ibepsk serve --www`` (on asyncio) with ``client_auth`` (--verify-client, --require-client-auth)."""
    server = serve(pki, "ca", client_auth)
    try:
        yield server.port
    finally:
        log = server.stop()
    assert "Traceback" not in log, log


@contextlib.contextmanager
def threaded_server(pki: OpenSslPki, client_auth: str) -> Iterator[int]:  # noqa: F811
    """The same on the threaded :class:`TLSServer`."""
    settings = server_settings([])
    settings.client_auth_anchors = TrustAnchors.from_pem_file(pki.path("ca.pem"))
    chain = load_tlslite_chain(pki.path("server.crt"))
    key = parsePEMKey(pki.path("server.key").read_text(), private=True, implementations=["python"])
    config = ServerConfig(settings, cert_chain=chain, private_key=key, verify_client=client_auth == "--verify-client")
    application = requiring_client_auth(www_application) if client_auth == "--require-client-auth" else www_application
    with TLSServer(config, application).start() as server:
        yield server.address[1]


Running = Callable[[OpenSslPki, str], contextlib.AbstractContextManager[int]]


@pytest.fixture(params=[asyncio_server, threaded_server], ids=["asyncio", "threaded"])
def running(request: pytest.FixtureRequest) -> Running:
    return request.param  # type: ignore[no-any-return]


def paced_connect(pki: OpenSslPki, port: int, certificate: str | None, *options: str) -> str:  # noqa: F811
    return late_connect(pki, PacingProxy(("127.0.0.1", port)).port, certificate, *options)


def test_an_untrusted_client_certificate_gets_unknown_ca_not_a_reset(pki: OpenSslPki, running: Running) -> None:  # noqa: F811
    with running(pki, "--verify-client") as port:
        errors = paced_connect(pki, port, "stranger")
    assert "ibepsk: error: the server refused the client certificate (alert unknown_ca)" in errors, errors


def test_a_missing_client_certificate_gets_certificate_required_not_a_reset(pki: OpenSslPki, running: Running) -> None:  # noqa: F811
    with running(pki, "--verify-client") as port:
        errors = paced_connect(pki, port, None)
    assert "ibepsk: error: the server requires a client certificate (alert certificate_required)" in errors, errors


def test_a_refusal_after_the_handshake_gets_its_alert_not_a_reset(pki: OpenSslPki, running: Running) -> None:  # noqa: F811
    """--require-client-auth refuses a client that cannot do post-handshake auth as soon as the handshake is
    done; the client's KeyUpdate (--key-update, sent right after its handshake) reaches the server after that."""
    with running(pki, "--require-client-auth") as port:
        errors = paced_connect(pki, port, None, "--key-update")
    assert "ibepsk: error: the server requires a client certificate (alert certificate_required)" in errors, errors
