"""``ibepsk connect`` (and ``serve --psk``) as real processes: external PSKs against OpenSSL, resumption
against a server that keeps the connection open, errors a user can act on, stdin and stdout like s_client."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_pha_openssl

from ibepsk import keys
from ibepsk.keys import TAMasterKey

from pki import Issued, issue, make_ca
from test_cli_endpoints import ServerProcess
from test_cli_ta import assert_error_after_connecting, assert_one_line_error, ibepsk
from tls_support import TIMEOUT, reset

PSK_HEX = "5e" * 32
PSK_IDENTITY = "ibepsk-cli-test"
PSK = ["--psk", PSK_HEX, "--psk-identity", PSK_IDENTITY]
HTTP_GET = r"GET / HTTP/1.0\r\n\r\n"

openssl = test_pha_openssl.openssl  # the fixture: the openssl binary, or skip (fail under CI)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, ta: TAMasterKey) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("connect")
    paths = {name: directory / f"{name}.key" for name in ("localhost", "gateway")}
    paths["public"] = directory / "public.pem"
    keys.write_key_file(paths["public"], ta.public)
    for name in ("localhost", "gateway"):
        keys.write_key_file(paths[name], ta.extract(name))
    return paths


@pytest.fixture()
def echo_server(files: dict[str, Path]) -> Iterator[ServerProcess]:
    """The echo server (no --www): it keeps each connection open until the client closes it."""
    server = ServerProcess("--ibe-key", str(files["localhost"]))
    yield server
    server.stop()


def connect_args(server: ServerProcess, files: dict[str, Path], *extra: str) -> list[str]:
    return ["connect", f"127.0.0.1:{server.port}", "--ta", str(files["public"]), "--identity", "localhost", *extra]


def status_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " connection" in line or line.startswith("connection")]


# --- 9. external PSKs: --psk HEX --psk-identity ID [--psk-hash] --------------------------------------


@pytest.mark.parametrize("command", ["serve", "connect"])
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--psk", "xyz", "--psk-identity", "id"], "--psk is not a hex string"),
        (["--psk", "", "--psk-identity", "id"], "--psk is empty"),
        (["--psk", PSK_HEX], "--psk and --psk-identity go together"),
        (["--psk-identity", "id"], "--psk and --psk-identity go together"),
        (["--psk", PSK_HEX, "--psk-identity", ""], "--psk-identity is empty"),
    ],
)
def test_psk_options_are_checked(command: str, options: list[str], message: str) -> None:
    target = ["--accept", "127.0.0.1:0"] if command == "serve" else ["127.0.0.1:9"]
    assert_one_line_error(ibepsk(command, *target, *options), message)


def test_serve_psk_only_to_s_client(openssl: str) -> None:
    server = ServerProcess(*PSK, "--www")
    try:
        command = [openssl, "s_client", "-tls1_3", "-connect", f"127.0.0.1:{server.port}", *_openssl_psk()]
        result = subprocess.run(
            [*command, "-ign_eof", "-quiet"], input="GET / HTTP/1.0\r\n\r\n", capture_output=True, text=True,
            timeout=TIMEOUT,
        )  # fmt: skip
    finally:
        log = server.stop()
    assert "HTTP/1.1 200 OK" in result.stdout and "mode=external-psk" in result.stdout, result.stderr
    assert "handshake ok mode=external-psk" in log and "Traceback" not in log


def _openssl_psk() -> list[str]:
    return ["-psk", PSK_HEX, "-psk_identity", PSK_IDENTITY]


class OpenSslServer:
    """``openssl s_server -www`` with an external PSK and no certificate, for one connection."""

    def __init__(self, openssl: str, *extra: str) -> None:
        command = [openssl, "s_server", "-tls1_3", "-accept", "127.0.0.1:0", "-naccept", "1", "-www", "-nocert"]
        self.process = subprocess.Popen(
            [*command, *_openssl_psk(), *extra], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("ACCEPT "):
                self.port = int(line.rsplit(":", 1)[1])
                return
        raise AssertionError(f"s_server exited: {self.stop()}")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
        output, _ = self.process.communicate(timeout=TIMEOUT)
        return output


def test_connect_psk_to_s_server(openssl: str) -> None:
    server = OpenSslServer(openssl)
    try:
        result = ibepsk("connect", f"127.0.0.1:{server.port}", *PSK, "--send", HTTP_GET)
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert "mode=external-psk kex=psk_dhe_ke cipher=aes128gcm" in result.stderr
    assert "HTTP/1.0 200 ok" in result.stdout and "TLS_AES_128_GCM_SHA256" in result.stdout


def test_connect_with_another_psk_key_than_s_server(openssl: str) -> None:
    server = OpenSslServer(openssl)
    try:
        result = ibepsk("connect", f"127.0.0.1:{server.port}", "--psk", "17" * 32, "--psk-identity", PSK_IDENTITY)
    finally:
        server.stop()
    assert_one_line_error(
        result, f"(alert illegal_parameter): does its key for PSK identity '{PSK_IDENTITY}' match --psk and --psk-hash?"
    )


@pytest.mark.parametrize(("psk_hash", "cipher"), [("sha256", "aes128gcm"), ("sha384", "aes256gcm")])
def test_psk_ibepsk_to_ibepsk(psk_hash: str, cipher: str) -> None:
    server = ServerProcess(*PSK, "--psk-hash", psk_hash, "--www")
    try:
        result = ibepsk("connect", f"127.0.0.1:{server.port}", *PSK, "--psk-hash", psk_hash, "--send", HTTP_GET)
    finally:
        log = server.stop()
    assert result.returncode == 0, result.stderr
    assert f"mode=external-psk kex=psk_dhe_ke cipher={cipher}" in result.stderr
    assert "HTTP/1.1 200 OK" in result.stdout
    assert f"handshake ok mode=external-psk kex=psk_dhe_ke cipher={cipher}" in log


def test_psk_hash_mismatch_is_named() -> None:
    server = ServerProcess(*PSK, "--psk-hash", "sha384")
    try:
        result = ibepsk("connect", f"127.0.0.1:{server.port}", *PSK, "--psk-hash", "sha256", "--send", "hi")
    finally:
        server.stop()
    assert_one_line_error(result, "(alert decrypt_error): does its key for PSK identity")


def test_psk_client_refuses_a_certificate_it_cannot_check(files: dict[str, Path], tmp_path: Path) -> None:
    # A server that does not know the client's PSK identity answers with a certificate: without --ca,
    # only the PSK could authenticate the server, so the client must not go ahead.
    cert, key = issue(make_ca(), "localhost").write(tmp_path, "server")
    server = ServerProcess("--cert", str(cert), "--key", str(key), "--psk", PSK_HEX, "--psk-identity", "someone-else")
    try:
        result = ibepsk("connect", f"127.0.0.1:{server.port}", *PSK, "--send", "secret")
    finally:
        log = server.stop()
    assert_one_line_error(result, "the server did not accept --psk")
    assert "secret" not in log


# --- 11. --reconnect resumes against a server that keeps the connection open -------------------------


def test_reconnect_resumes_against_the_echo_server(echo_server: ServerProcess, files: dict[str, Path]) -> None:
    result = ibepsk(*connect_args(echo_server, files, "--send", "ping", "--reconnect", "--wait", "1"))
    log = echo_server.stop()
    assert result.returncode == 0, result.stderr
    first, second = status_lines(result.stderr)
    assert first.startswith("connection to") and "mode=ibe-psk" in first
    assert second.startswith("resumed connection to") and "mode=resumption" in second, second
    assert result.stdout == "pingping"
    modes = re.findall(r"handshake ok mode=(\S+)", log)
    assert modes == ["ibe-psk", "resumption"], log


def test_reconnect_says_when_it_did_not_resume(files: dict[str, Path]) -> None:
    server = ServerProcess("--ibe-key", str(files["localhost"]), "--no-tickets")
    try:
        result = ibepsk(*connect_args(server, files, "--send", "ping", "--reconnect", "--wait", "0.5"))
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    second = status_lines(result.stderr)[1]
    assert second.startswith("new connection (not resumed) to") and "mode=ibe-psk" in second, second


# --- 12. errors a user can act on -----------------------------------------------------------------


def test_wrong_ta_says_what_to_check(echo_server: ServerProcess, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    keys.write_key_file(other, TAMasterKey.generate().public)
    result = ibepsk("connect", f"127.0.0.1:{echo_server.port}", "--ta", str(other), "--identity", "localhost")
    assert_one_line_error(
        result,
        "the server could not open the IBE-PSK identity for 'localhost': wrong TA public key, "
        "or the server has no key for that identity/epoch (alert decrypt_error)",
    )


@pytest.fixture()
def two_identity_server(files: dict[str, Path]) -> Iterator[ServerProcess]:
    """Keys for localhost and gateway, no --default-identity: a client without SNI gets localhost's."""
    server = ServerProcess("--ibe-key", str(files["localhost"]), "--ibe-key", str(files["gateway"]))
    yield server
    server.stop()


def test_identity_goes_in_sni_for_an_address(two_identity_server: ServerProcess, files: dict[str, Path]) -> None:
    base = ["connect", f"127.0.0.1:{two_identity_server.port}", "--ta", str(files["public"]), "--send", "hi"]
    result = ibepsk(*base, "--identity", "gateway")
    assert result.returncode == 0, result.stderr
    assert "mode=ibe-psk identity=gateway" in result.stderr and result.stdout == "hi"
    # --servername still has the last word: the server then looks for that name's key
    named = ibepsk(*base, "--identity", "gateway", "--servername", "localhost")
    assert_one_line_error(named, "could not open the IBE-PSK identity for 'gateway'")


def test_not_a_tls_server(files: dict[str, Path]) -> None:
    http = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0"], stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert http.stdout is not None
        port = re.search(r"port (\d+)", http.stdout.readline())
        assert port, "http.server printed no port"
        result = ibepsk("connect", f"127.0.0.1:{port.group(1)}", "--ta", str(files["public"]), "--identity", "x")
    finally:
        http.terminate()
        http.wait(TIMEOUT)
    assert_one_line_error(result, "not a TLS server")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"\x00\x01 no TLS here " * 20, ": not a TLS server (its answer is no TLS record)"),
        (b"", " closed the connection without finishing the handshake"),
    ],
)
def test_a_peer_that_does_not_speak_tls(files: dict[str, Path], answer: bytes, message: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        answering = threading.Thread(target=_answer_once, args=(listener, answer))
        answering.start()
        port = listener.getsockname()[1]
        result = ibepsk("connect", f"127.0.0.1:{port}", "--ta", str(files["public"]), "--identity", "x")
        answering.join(TIMEOUT)
    assert_one_line_error(result, f"127.0.0.1:{port}{message}")


@pytest.mark.parametrize("read_hello_first", [True, False], ids=["after-client-hello", "at-once"])
def test_a_server_that_resets_during_the_handshake_is_one_clear_line(
    files: dict[str, Path], read_hello_first: bool
) -> None:
    def accept_and_reset(listener: socket.socket) -> None:
        peer, _ = listener.accept()
        if read_hello_first:
            peer.recv(4096)
        reset(peer)

    with socket.create_server(("127.0.0.1", 0)) as listener:
        resetting = threading.Thread(target=accept_and_reset, args=(listener,))
        resetting.start()
        port = listener.getsockname()[1]
        result = ibepsk("connect", f"127.0.0.1:{port}", "--ta", str(files["public"]), "--identity", "x")
        resetting.join(TIMEOUT)
    # A reset that meets the ClientHello on its way out reads as the end of the connection (tlslite-ng then reads
    # on, for an alert); one that comes while the client waits for the ServerHello is named.
    reset_named = " (connection reset)" if read_hello_first else ""
    assert_one_line_error(
        result, f"127.0.0.1:{port} closed the connection without finishing the handshake{reset_named}"
    )


def _answer_once(listener: socket.socket, answer: bytes) -> None:
    """Read the ClientHello, answer ``answer`` (not TLS), close."""
    peer, _ = listener.accept()
    with peer:
        peer.recv(4096)
        peer.sendall(answer)


@pytest.fixture(scope="module")
def device_ca() -> Issued:
    return make_ca("device CA")


@pytest.fixture()
def pha_server(files: dict[str, Path], device_ca: Issued, tmp_path: Path) -> Iterator[ServerProcess]:
    (tmp_path / "ca.pem").write_bytes(device_ca.cert_pem())
    server = ServerProcess(
        "--ibe-key", str(files["localhost"]), "--www", "--require-client-auth", "--ca", str(tmp_path / "ca.pem")
    )
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("certificate", "message"),
    [
        ("stranger", "the server refused the client certificate (alert unknown_ca): the server does not trust"),
        ("expired", "the server refused the client certificate (alert certificate_expired): --cert has expired"),
        ("server-eku", "the server refused the client certificate (alert bad_certificate): the server found --cert"),
        (None, "the server requires a client certificate (alert certificate_required): give --cert and --key"),
    ],
)
def test_pha_refusal_names_the_alert_and_its_meaning(
    pha_server: ServerProcess,
    files: dict[str, Path],
    device_ca: Issued,
    tmp_path: Path,
    certificate: str | None,
    message: str,
) -> None:
    credentials: list[str] = []
    if certificate == "stranger":
        credentials = _credentials(issue(make_ca("stranger CA"), "device", server=False), tmp_path)
    elif certificate == "server-eku":  # extendedKeyUsage serverAuth only: not for client authentication
        credentials = _credentials(issue(device_ca, "device", server=True), tmp_path)
    elif certificate == "expired":
        credentials = _credentials(
            issue(device_ca, "device", server=False, not_before_days=-9, valid_days=-1), tmp_path
        )
    result = ibepsk(*connect_args(pha_server, files, "--send", HTTP_GET, *credentials))
    assert_error_after_connecting(result, message)


def _credentials(issued: Issued, directory: Path) -> list[str]:
    cert, key = issued.write(directory, "device")
    return ["--cert", str(cert), "--key", str(key)]


# --- 13. stdin, stdout and stderr like s_client ---------------------------------------------------------


def test_stdin_is_sent_without_send(echo_server: ServerProcess, files: dict[str, Path]) -> None:
    result = ibepsk(*connect_args(echo_server, files, "--wait", "1"), stdin="line one\nline two\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "line one\nline two\n"  # the data, and nothing else
    (status,) = status_lines(result.stderr)
    assert status.startswith("connection to 127.0.0.1:") and "mode=ibe-psk" in status


def test_stdin_from_dev_null(echo_server: ServerProcess, files: dict[str, Path]) -> None:
    command = [sys.executable, "-m", "ibepsk.cli", *connect_args(echo_server, files, "--wait", "0.5")]
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and len(status_lines(result.stderr)) == 1, result.stderr


def test_a_closed_stdout_ends_quietly(echo_server: ServerProcess, files: dict[str, Path]) -> None:
    # Like `ibepsk connect ... --reconnect | head -c1`: the reader is gone before the second connection writes.
    command = [sys.executable, "-m", "ibepsk.cli", *connect_args(echo_server, files, "--reconnect", "--wait", "1")]
    process = subprocess.Popen(
        [*command, "--send", "ping"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(1) == b"p"
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(TIMEOUT) == 0, stderr
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
