"""Post-handshake client authentication against real OpenSSL processes (``s_client`` and ``s_server``)."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tlslite.constants import AlertDescription

from ibepsk import HandshakeMode, HandshakeSettings, KeySigner, TLSConnection, TrustAnchors
from ibepsk.client import ClientConfig, connect
from ibepsk.tls import requiring_client_auth
from ibepsk.tls.certs import ServerCertificateChecker

from pki import Issued, issue, make_ca
from tls_support import TIMEOUT, running_server

PSK_IDENTITY = "ibepsk-pha-test"
PSK_HEX = "8f" * 32


@pytest.fixture(scope="module")
def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        message = "openssl is needed for the interop tests (scripts/test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("openssl")


class Greeter:
    """Server application: authenticate the client first (requiring_client_auth), then greet it by name."""

    def __init__(self) -> None:
        self.outcomes: queue.Queue[Any] = queue.Queue()
        self._greet = requiring_client_auth(self._greeting)

    def __call__(self, conn: TLSConnection) -> None:
        try:
            self._greet(conn)
        except Exception as exc:
            self.outcomes.put(exc)
            raise

    def _greeting(self, conn: TLSConnection) -> None:
        assert conn.client_auth is not None
        self.outcomes.put((conn.handshake_mode, conn.client_auth))
        conn.write(f"authenticated {conn.client_auth.subject}\n".encode())

    def next_outcome(self) -> Any:
        return self.outcomes.get(timeout=TIMEOUT)


def s_client(
    openssl: str, address: tuple[str, int], cert: Path, key: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """Connect, answer whatever the server asks, print what it sends, until it closes."""
    command = [openssl, "s_client", "-tls1_3", "-enable_pha", "-cert", str(cert), "-key", str(key)]
    command += ["-connect", f"{address[0]}:{address[1]}", "-ign_eof", "-quiet", *extra]
    return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)


# --- openssl s_client against an ibepsk server asking for a certificate ------------------------------


def external_psk_settings(ca: Issued) -> HandshakeSettings:
    """A server sharing s_client's -psk/-psk_identity, trusting ``ca`` for client certificates."""
    settings = HandshakeSettings()
    settings.pskConfigs = [(bytearray(PSK_IDENTITY.encode()), bytearray.fromhex(PSK_HEX), "sha256")]
    settings.client_auth_anchors = TrustAnchors([ca.certificate])
    return settings


@pytest.mark.parametrize("kind", ["p256", "rsa2048", "ed25519"])
def test_s_client_after_an_external_psk_handshake(openssl: str, ca: Issued, files: Path, kind: str) -> None:
    cert, key = issue(ca, f"openssl-{kind}", kind=kind, server=False).write(files, f"client-{kind}")
    settings = external_psk_settings(ca)
    app = Greeter()
    with running_server(settings, app) as (server, _):
        result = s_client(openssl, server.address, cert, key, "-psk", PSK_HEX, "-psk_identity", PSK_IDENTITY)
    mode, auth = app.next_outcome()
    assert mode == HandshakeMode.EXTERNAL_PSK
    assert auth.subject == f"CN=openssl-{kind}"
    assert f"authenticated CN=openssl-{kind}" in result.stdout, result.stderr


def test_s_client_after_a_certificate_handshake(openssl: str, ca: Issued, files: Path) -> None:
    cert, key = issue(ca, "openssl-cert", server=False).write(files, "client-cert")
    (files / "ca.pem").write_bytes(ca.cert_pem())
    settings = HandshakeSettings()
    settings.client_auth_anchors = TrustAnchors([ca.certificate])
    app = Greeter()
    with running_server(settings, app, cert=issue(ca, "localhost")) as (server, _):
        result = s_client(openssl, server.address, cert, key, "-CAfile", str(files / "ca.pem"))
    mode, auth = app.next_outcome()
    assert mode == HandshakeMode.CERTIFICATE and auth.subject == "CN=openssl-cert"
    assert "authenticated CN=openssl-cert" in result.stdout, result.stderr


def test_s_client_with_an_untrusted_certificate(openssl: str, ca: Issued, files: Path) -> None:
    cert, key = issue(make_ca("stranger CA"), "stranger", server=False).write(files, "stranger")
    settings = external_psk_settings(ca)
    app = Greeter()
    with running_server(settings, app) as (server, _):
        result = s_client(openssl, server.address, cert, key, "-psk", PSK_HEX, "-psk_identity", PSK_IDENTITY)
    refusal = app.next_outcome()
    assert getattr(refusal, "description", None) == AlertDescription.unknown_ca
    assert "alert unknown ca" in result.stderr
    assert "authenticated" not in result.stdout


# --- an ibepsk client against openssl s_server, which asks when told "c" on its stdin ------------------


class SServer:
    """``openssl s_server`` on 127.0.0.1 with a random port; its output is collected as it comes."""

    def __init__(self, openssl: str, ca: Issued, files: Path) -> None:
        cert, key = issue(ca, "localhost").write(files, "s_server")
        (files / "ca.pem").write_bytes(ca.cert_pem())
        command = [openssl, "s_server", "-tls1_3", "-accept", "127.0.0.1:0", "-naccept", "1"]
        command += ["-cert", str(cert), "-key", str(key), "-verify", "1", "-CAfile", str(files / "ca.pem")]
        command += ["-verify_return_error"]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()
        accept = self.wait_for("ACCEPT ")
        self.port = int(accept.rsplit(":", 1)[1])

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line.rstrip("\n"))

    def wait_for(self, text: str, count: int = 1) -> str:
        deadline = time.monotonic() + TIMEOUT
        while True:
            matches = [line for line in self.output if text in line]
            if len(matches) >= count:
                return matches[-1]
            assert self.process.poll() is None or self._reader.is_alive(), f"s_server exited: {self.output}"
            assert time.monotonic() < deadline, f"s_server never printed {text!r}: {self.output}"
            time.sleep(0.02)

    def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=TIMEOUT)


@pytest.fixture()
def s_server(openssl: str, ca: Issued, files: Path) -> Iterator[SServer]:
    server = SServer(openssl, ca, files)
    try:
        yield server
    finally:
        server.stop()


def connect_to_s_server(s_server: SServer, ca: Issued, files: Path, answer_limit: int) -> TLSConnection:
    client = issue(ca, "ibepsk-client", server=False)
    settings = HandshakeSettings()
    settings.client_auth_signer = KeySigner([client.certificate], client.key)
    settings.client_auth_answer_limit = answer_limit
    config = ClientConfig(settings, server_name="localhost")
    config.checker = ServerCertificateChecker(TrustAnchors([ca.certificate]), "localhost")
    return connect("127.0.0.1", s_server.port, config)


@pytest.mark.parametrize("answer_limit", [1, 2])
def test_ibepsk_client_against_s_server(s_server: SServer, ca: Issued, files: Path, answer_limit: int) -> None:
    # The main handshake already carries s_server's CertificateRequest (-verify): the client declines it
    # (patches/0009 makes that an uncompressed empty Certificate); then two post-handshake requests.
    conn = connect_to_s_server(s_server, ca, files, answer_limit)
    received: queue.Queue[bytes] = queue.Queue()
    for round_number in (1, 2):
        reader = threading.Thread(target=lambda: received.put(bytes(conn.read())))
        reader.start()  # the client answers the CertificateRequest while reading
        s_server.type("c")  # SSL_verify_client_post_handshake; s_server waits for the answer
        s_server.wait_for("SSL_do_handshake -> 1", count=round_number)
        s_server.type(f"round {round_number}")
        assert received.get(timeout=TIMEOUT) == f"round {round_number}\n".encode()
        reader.join(TIMEOUT)
    conn.write(b"after authentication\n")
    s_server.wait_for("after authentication")
    conn.close()
    verified = [line for line in s_server.output if line.startswith("depth=0") and "CN = ibepsk-client" in line]
    assert len(verified) == answer_limit, s_server.output
    assert (conn.certificate_requests_received, conn.certificate_requests_answered) == (2, answer_limit)
