"""How ``ibepsk serve`` treats its clients: asking for certificates, closing, logging, KeyUpdate (issue 10).

Real ``ibepsk serve`` processes against real clients: ``ibepsk connect``, an ibepsk ``TLSConnection`` and
``openssl s_client``; and ``ibepsk connect`` against ``openssl s_server``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_pha_openssl

from ibepsk import HandshakeSettings, KeySigner, keys
from ibepsk.client import ClientConfig, connect, read_until_closed
from ibepsk.keys import TAMasterKey

from pki import issue, make_ca
from test_cli_endpoints import ServerProcess
from test_cli_ta import ibepsk
from tls_support import TIMEOUT

openssl = test_pha_openssl.openssl  # the fixture: the openssl binary (skips without one, fails in CI)

REQUEST = b"GET / HTTP/1.0\r\n\r\n"
PHA_OK = "post-handshake auth ok client='CN=device-7' (post-handshake)"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, ta: TAMasterKey) -> dict[str, Path]:
    """TA public parameters and the localhost identity key; a device CA with a device and a stranger; a server
    certificate (openssl clients need a certificate handshake)."""
    directory = tmp_path_factory.mktemp("behaviour")
    paths = {"public": directory / "public.pem", "localhost": directory / "localhost.key", "ca": directory / "ca.pem"}
    keys.write_key_file(paths["public"], ta.public)
    keys.write_key_file(paths["localhost"], ta.extract("localhost"))
    ca = make_ca("device CA")
    paths["ca"].write_bytes(ca.cert_pem())
    paths["device"], paths["device.key"] = issue(ca, "device-7", server=False).write(directory, "device")
    stranger = issue(make_ca("stranger CA"), "stranger", server=False)
    paths["stranger"], paths["stranger.key"] = stranger.write(directory, "stranger")
    paths["server"], paths["server.key"] = issue(ca, "localhost").write(directory, "server")
    return paths


def serve(files: dict[str, Path], *options: str) -> ServerProcess:
    """``ibepsk serve`` with the localhost IBE key and a certificate, trusting the device CA for client auth."""
    server_credentials = ["--cert", str(files["server"]), "--key", str(files["server.key"])]
    return ServerProcess("--ibe-key", str(files["localhost"]), *server_credentials, "--ca", str(files["ca"]), *options)


@pytest.fixture()
def asking_www(files: dict[str, Path]) -> Iterator[ServerProcess]:
    server = serve(files, "--www", "--request-client-auth")
    yield server
    server.stop()


def client_config(files: dict[str, Path], cert: str | None = None) -> ClientConfig:
    """An IBE-PSK client of the localhost identity; with ``cert`` it answers certificate requests."""
    settings = HandshakeSettings()
    settings.ibe_public_params = keys.load_public_params(files["public"])
    if cert is not None:
        settings.client_auth_signer = KeySigner.from_pem_files(files[cert], files[f"{cert}.key"])
    return ClientConfig(settings, server_name="localhost", timeout=TIMEOUT)


def connect_command(server: ServerProcess, files: dict[str, Path], *options: str) -> list[str]:
    target = f"127.0.0.1:{server.port}"
    return ["connect", target, "--ta", str(files["public"]), "--identity", "localhost", *options]


def s_client(openssl: str, server: ServerProcess, stdin: bytes, *options: str) -> subprocess.CompletedProcess[str]:
    """``openssl s_client`` sending ``stdin`` and printing what it gets until the server closes."""
    command = [openssl, "s_client", "-tls1_3", "-connect", f"127.0.0.1:{server.port}", "-ign_eof", *options]
    result = subprocess.run(command, input=stdin, capture_output=True, timeout=30)
    return subprocess.CompletedProcess(command, result.returncode, result.stdout.decode(), result.stderr.decode())


# --- 1. --request-client-auth serves a client that cannot be asked ---------------------------------


def test_request_client_auth_serves_a_client_without_post_handshake_auth(
    asking_www: ServerProcess, files: dict[str, Path], openssl: str
) -> None:
    anonymous = ibepsk(*connect_command(asking_www, files), "--send", r"GET / HTTP/1.0\r\n\r\n")
    plain = s_client(openssl, asking_www, REQUEST, "-quiet")  # no -enable_pha
    log = asking_www.stop()
    assert anonymous.returncode == 0, anonymous.stderr
    assert "HTTP/1.1 200 OK" in anonymous.stdout and "client=" not in anonymous.stdout
    assert "HTTP/1.1 200 OK" in plain.stdout, plain.stderr
    assert log.count("handshake ok") == 2 and "failed" not in log and "post-handshake auth" not in log, log


# --- 2. an answer in flight is read and judged; the connection ends with close_notify both ways --------


def test_an_answer_in_flight_is_judged_before_close_notify(asking_www: ServerProcess, files: dict[str, Path]) -> None:
    conn = connect("127.0.0.1", asking_www.port, client_config(files, "device"))
    conn.closeSocket = False  # keep the socket after the close_notify exchange, to see how TCP ends
    conn.write(REQUEST)
    time.sleep(0.5)  # the server has sent its page (and asked before): the answer leaves after that
    page = read_until_closed(conn)  # answers the request; raises on a reset or an EOF without close_notify
    assert b"HTTP/1.1 200 OK" in page
    assert conn.certificate_requests_answered == 1
    assert conn.sock.socket.recv(1) == b""  # then the server's FIN, not a reset
    conn.sock.socket.close()

    # Judged and acted on: the ticket the server sent after the answer remembers the device.
    resumed = connect("127.0.0.1", asking_www.port, client_config(files), session=conn.session)
    resumed.write(REQUEST)
    assert b"client='CN=device-7' (resumption)" in read_until_closed(resumed)
    resumed.close()
    log = asking_www.stop()
    assert log.count(PHA_OK) == 1 and "failed" not in log, log


def test_s_client_answering_gets_close_notify(asking_www: ServerProcess, files: dict[str, Path], openssl: str) -> None:
    result = s_client(openssl, asking_www, REQUEST, "-enable_pha", "-cert", str(files["device"]), "-key",
                      str(files["device.key"]), "-msg")  # fmt: skip
    log = asking_www.stop()
    assert "HTTP/1.1 200 OK" in result.stdout
    assert "<<< TLS 1.3, Alert [length 0002], warning close_notify" in result.stdout, result.stdout
    assert "errno=104" not in result.stdout + result.stderr  # ECONNRESET
    assert log.count(PHA_OK) == 1 and "failed" not in log, log


# --- 3. each post-handshake authentication is logged as it happens ----------------------------------


def test_post_handshake_auth_outcomes_are_logged(files: dict[str, Path], openssl: str) -> None:
    server = serve(files, "--require-client-auth")  # the echo server
    try:
        device = ibepsk(*connect_command(server, files, "--cert", str(files["device"]), "--key",
                                        str(files["device.key"]), "--send", "hello"))  # fmt: skip
        stranger = ibepsk(*connect_command(server, files, "--cert", str(files["stranger"]), "--key",
                                          str(files["stranger.key"]), "--send", "hello"))  # fmt: skip
    finally:
        log = server.stop()
    assert device.returncode == 0 and "hello" in device.stdout, device.stderr
    assert stranger.returncode != 0
    assert log.count(PHA_OK) == 1, log
    assert log.count("failed: sent alert unknown_ca") == 1, log

    asking = serve(files, "--www", "--request-client-auth")
    declining = s_client(openssl, asking, REQUEST, "-enable_pha", "-quiet")  # offers PHA, has no certificate
    log = asking.stop()
    assert declining.returncode == 0, declining.stderr
    assert "post-handshake auth declined: the client sent no certificate" in log and "failed" not in log, log


# --- 7. a peer ending the connection is not a failure -------------------------------------------------


def test_a_client_closing_is_not_a_failure(files: dict[str, Path]) -> None:
    echo = serve(files)
    config = client_config(files)
    try:
        polite = connect("127.0.0.1", echo.port, config)
        polite.write(b"bye")
        assert polite.read() == b"bye"
        polite.close()  # close_notify
        abrupt = connect("127.0.0.1", echo.port, config)
        abrupt.write(b"bye")
        assert abrupt.read() == b"bye"
        abrupt.sock.socket.close()  # no close_notify: many clients just close their socket
    finally:
        log = echo.stop()
    assert log.count("handshake ok") == 2 and "failed" not in log, log
    assert log.count("closed by the peer without close_notify") == 1, log

    www = serve(files, "--www")
    try:
        connect("127.0.0.1", www.port, config).close()  # close_notify before asking anything
    finally:
        log = www.stop()
    assert log.count("handshake ok") == 1 and "failed" not in log, log


# --- 8. KeyUpdate: GET /keyupdate on --www, connect --key-update -----------------------------------------


def test_get_keyupdate_answers_after_a_key_update(files: dict[str, Path], openssl: str) -> None:
    server = serve(files, "--www")
    try:
        conn = connect("127.0.0.1", server.port, client_config(files))
        server_secret, client_secret = bytes(conn.session.sr_app_secret), bytes(conn.session.cl_app_secret)
        conn.write(b"GET /keyupdate HTTP/1.0\r\n\r\n")
        page = read_until_closed(conn)
        conn.close()
        traced = s_client(openssl, server, b"GET /keyupdate HTTP/1.0\r\n\r\n", "-msg")
    finally:
        log = server.stop()
    assert b"request=GET /keyupdate" in page
    # The server's KeyUpdate(update_requested) moved its keys, and the client's answer moved the client's.
    assert bytes(conn.session.sr_app_secret) != server_secret
    assert bytes(conn.session.cl_app_secret) != client_secret
    lines = traced.stdout.splitlines()
    key_update = lines.index("<<< TLS 1.3, Handshake [length 0005], KeyUpdate")
    assert key_update < lines.index("HTTP/1.1 200 OK"), traced.stdout
    assert "failed" not in log, log


def test_connect_key_update_sends_one(files: dict[str, Path], openssl: str) -> None:
    command = [openssl, "s_server", "-tls1_3", "-accept", "127.0.0.1:0", "-naccept", "1", "-msg"]
    command += ["-cert", str(files["server"]), "-key", str(files["server.key"])]
    s_server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert s_server.stdout is not None
        accept = next(line for line in s_server.stdout if line.startswith(b"ACCEPT "))
        port = accept.decode().strip().rsplit(":", 1)[1]
        result = ibepsk(
            "connect", f"127.0.0.1:{port}", "--ca", str(files["ca"]), "--servername", "localhost",
            "--key-update", "--send", r"after the update\n", "--wait", "1",
        )  # fmt: skip
        output, _ = s_server.communicate(timeout=TIMEOUT)
    finally:
        if s_server.poll() is None:
            s_server.kill()
            s_server.wait()
    assert result.returncode == 0, result.stderr
    lines = output.decode().splitlines()
    received = lines.index("<<< TLS 1.3, Handshake [length 0005], KeyUpdate")
    assert received < lines.index("after the update"), lines
