"""``ibepsk serve`` and ``ibepsk connect`` as real processes."""

from __future__ import annotations

import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ibepsk import HandshakeSettings, keys
from ibepsk.client import ClientConfig, connect
from ibepsk.keys import TAMasterKey

from pki import issue, make_ca
from test_cli_ta import assert_error_after_connecting, assert_one_line_error, ibepsk
from tls_support import ListeningProcess, wait_for


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, ta: TAMasterKey) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("endpoints")
    paths = {"public": directory / "public.pem", "localhost": directory / "localhost.key"}
    keys.write_key_file(paths["public"], ta.public)
    keys.write_key_file(paths["localhost"], ta.extract("localhost"))
    return paths


class ServerProcess(ListeningProcess):
    """``ibepsk serve`` on an ephemeral port of 127.0.0.1."""

    def __init__(self, *args: str) -> None:
        super().__init__([sys.executable, "-m", "ibepsk.cli", "serve", "--accept", "127.0.0.1:0", *args])


def test_sigterm_lets_a_connection_in_progress_finish(files: dict[str, Path]) -> None:
    server = ServerProcess("--ibe-key", str(files["localhost"]))
    settings = HandshakeSettings()
    settings.ibe_public_params = keys.load_public_params(files["public"])
    conn = connect("127.0.0.1", server.port, ClientConfig(settings, server_name="localhost"))
    try:
        server.process.terminate()
        wait_for(lambda: not _accepts("127.0.0.1", server.port))  # it has stopped listening...
        conn.write(b"still there?")
        assert conn.read() == b"still there?"  # ...and still serves the connection it had
    finally:
        conn.close()
    _, log = server.process.communicate(timeout=10)
    assert server.process.returncode == 0, log
    assert "ibepsk serve: stopping (all connections finished)" in log, log


def _accepts(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture()
def www_server(files: dict[str, Path]) -> Iterator[ServerProcess]:
    server = ServerProcess("--ibe-key", str(files["localhost"]), "--www", "--ta", str(files["public"]))
    yield server
    server.stop()


def test_connect_to_www_server(www_server: ServerProcess, files: dict[str, Path]) -> None:
    result = ibepsk(
        "connect", f"127.0.0.1:{www_server.port}", "--ta", str(files["public"]), "--identity", "localhost",
        "--send", r"GET / HTTP/1.0\r\n\r\n", "--reconnect",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "mode=ibe-psk identity=localhost" in result.stderr  # status lines on stderr, data on stdout
    assert "resumed connection" in result.stderr and "mode=resumption" in result.stderr
    assert result.stdout.count("HTTP/1.1 200 OK") == 2
    log = www_server.stop()
    assert len(re.findall(r"handshake ok mode=ibe-psk identity=localhost kex=psk_dhe_ke cipher=\S+ [\d.]+ms", log)) == 1
    assert "Traceback" not in log


def test_wrong_ta_gets_a_clear_error(www_server: ServerProcess, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    keys.write_key_file(other, TAMasterKey.generate().public)
    result = ibepsk("connect", f"127.0.0.1:{www_server.port}", "--ta", str(other), "--identity", "localhost")
    assert_one_line_error(result, "decrypt_error")
    log = www_server.stop()
    assert "handshake failed: sent alert decrypt_error" in log and "Traceback" not in log


def test_connect_to_nothing(files: dict[str, Path]) -> None:
    result = ibepsk("connect", "127.0.0.1:9", "--ta", str(files["public"]), "--identity", "localhost")
    assert_one_line_error(result, "onnection refused")


def test_serve_refuses_key_from_another_ta(files: dict[str, Path], tmp_path: Path) -> None:
    stranger = tmp_path / "stranger.key"
    keys.write_key_file(stranger, TAMasterKey.generate().extract("localhost"))
    result = ibepsk("serve", "--accept", "127.0.0.1:0", "--ibe-key", str(stranger), "--ta", str(files["public"]))
    assert_one_line_error(result, "issued by TA")


def test_serve_needs_credentials() -> None:
    assert_one_line_error(ibepsk("serve", "--accept", "127.0.0.1:0"), "give at least one --ibe-key")


def test_serve_bad_accept_address(files: dict[str, Path]) -> None:
    assert_one_line_error(ibepsk("serve", "--accept", "x:y", "--ibe-key", str(files["localhost"])), "HOST:PORT")


def test_connect_needs_an_identity_for_an_address(files: dict[str, Path]) -> None:
    assert_one_line_error(ibepsk("connect", "127.0.0.1:4433", "--ta", str(files["public"])), "--identity")


@pytest.fixture(scope="module")
def device_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca("device CA")
    cert, key = issue(ca, "device-7", server=False).write(directory, "device")
    (directory / "ca.pem").write_bytes(ca.cert_pem())
    return {"ca": directory / "ca.pem", "cert": cert, "key": key}


def test_serve_requiring_client_auth(files: dict[str, Path], device_files: dict[str, Path]) -> None:
    server = ServerProcess(
        "--ibe-key", str(files["localhost"]), "--www", "--require-client-auth", "--ca", str(device_files["ca"])
    )
    try:
        base = ["connect", f"127.0.0.1:{server.port}", "--ta", str(files["public"]), "--identity", "localhost"]
        request = ["--send", r"GET / HTTP/1.0\r\n\r\n"]
        good = ibepsk(*base, *request, "--cert", str(device_files["cert"]), "--key", str(device_files["key"]))
        anonymous = ibepsk(*base, *request)
    finally:
        log = server.stop()
    assert good.returncode == 0, good.stderr
    assert "client='CN=device-7' (post-handshake)" in good.stdout, good.stdout
    assert_error_after_connecting(anonymous, "certificate_required")
    assert "Traceback" not in log


def test_require_client_auth_needs_a_ca(files: dict[str, Path]) -> None:
    result = ibepsk("serve", "--accept", "127.0.0.1:0", "--ibe-key", str(files["localhost"]), "--require-client-auth")
    assert_one_line_error(result, "need --ca")


def test_serve_refuses_bad_certificate_files(files: dict[str, Path], tmp_path: Path) -> None:
    ca = make_ca()
    cert, key = issue(ca, "localhost").write(tmp_path, "server")
    empty = tmp_path / "empty.pem"
    empty.write_text("no certificate here\n")
    base = ["serve", "--accept", "127.0.0.1:0"]
    assert_one_line_error(ibepsk(*base, "--cert", str(empty), "--key", str(key)), "")
    assert_one_line_error(ibepsk(*base, "--cert", str(cert), "--key", str(empty)), "not an unencrypted PEM private key")
    _, other_key = issue(ca, "localhost").write(tmp_path, "other")
    assert_one_line_error(
        ibepsk(*base, "--cert", str(cert), "--key", str(other_key)), "does not belong to the first certificate"
    )


def test_connect_refuses_an_encrypted_client_key(files: dict[str, Path], tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    issued = issue(make_ca(), "device", server=False)
    cert, _ = issued.write(tmp_path, "device")
    locked = tmp_path / "locked.key"
    locked.write_bytes(
        issued.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    result = ibepsk(
        "connect", "127.0.0.1:9", "--ta", str(files["public"]), "--identity", "localhost",
        "--cert", str(cert), "--key", str(locked),
    )  # fmt: skip
    assert_one_line_error(result, "--cert/--key")
