"""``ibepsk serve`` on an event loop: trickling clients, worker processes, and a ticket key shared by a fleet."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import struct
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tlslite.constants import AlertDescription, ExtensionType
from tlslite.errors import TLSRemoteAlert
from tlslite.extensions import SNIExtension
from tlslite.handshakesettings import HandshakeSettings as StockSettings
from tlslite.tlsconnection import TLSConnection as StockConnection

from ibepsk import HandshakeMode, HandshakeSettings, IbeKeyring, keys
from ibepsk.aio.server import AsyncTLSServer, echo_application, www_application
from ibepsk.asyncio import open_connection
from ibepsk.client import ClientConfig, connect
from ibepsk.keys import TAMasterKey
from ibepsk.server import ServerConfig

from test_cli_ta import assert_one_line_error, ibepsk
from tls_support import TIMEOUT, ListeningProcess, capture_client_hello

TRICKLERS = 200


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, ta: TAMasterKey) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("serve")
    paths = {"public": directory / "public.pem", "localhost": directory / "localhost.key"}
    keys.write_key_file(paths["public"], ta.public)
    keys.write_key_file(paths["localhost"], ta.extract("localhost"))
    for name, size in (("ticket", 32), ("other-ticket", 48)):
        paths[name] = directory / f"{name}.key"
        paths[name].write_bytes(os.urandom(size))
        paths[name].chmod(0o600)
    return paths


class Serve(ListeningProcess):
    def __init__(self, *args: str) -> None:
        super().__init__([sys.executable, "-m", "ibepsk.cli", "serve", "--accept", "127.0.0.1:0", *args])


def client_config(files: dict[str, Path]) -> ClientConfig:
    settings = HandshakeSettings()
    settings.ibe_public_params = keys.load_public_params(files["public"])
    return ClientConfig(settings, server_name="localhost")


def echo(port: int, config: ClientConfig, session: object = None) -> object:
    """One echo exchange; the client's connection (closed)."""
    conn = connect("127.0.0.1", port, config, session=session)
    try:
        conn.write(b"ping")
        assert conn.read() == b"ping"
    finally:
        conn.close()
    return conn


def threads_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^Threads:\s+(\d+)$", status, re.MULTILINE)
    assert match
    return int(match.group(1))


class Tricklers:
    """Clients that send a ClientHello's record header one byte at a time, never finishing it."""

    def __init__(self, port: int, count: int) -> None:
        self.sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def _trickle(self) -> None:
        header = b"\x16\x03\x01\x40\x00"  # a 16 KiB record is announced, and never comes
        for byte in header * 1000:
            for sock in self.sockets:
                sock.send(bytes([byte]))
            if self._stop.wait(0.05):
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.sockets:
            sock.close()


@contextlib.contextmanager
def trickling(port: int, count: int) -> Iterator[Tricklers]:
    tricklers = Tricklers(port, count)
    try:
        yield tricklers
    finally:
        tricklers.close()


def test_a_new_client_is_served_while_200_others_trickle_on_few_threads(files: dict[str, Path]) -> None:
    server = Serve("--ibe-key", str(files["localhost"]))
    try:
        with trickling(server.port, TRICKLERS):
            conn = echo(server.port, client_config(files))
            threads = threads_of(server.process.pid)
    finally:
        log = server.stop()
    assert conn.handshake_mode == HandshakeMode.IBE_PSK
    assert threads <= 8, f"{threads} threads serving {TRICKLERS + 1} connections"  # not one per connection
    assert log.count("handshake ok") == 1, log


def test_a_ticket_from_one_server_resumes_on_another_with_the_same_ticket_key(files: dict[str, Path]) -> None:
    config = client_config(files)
    first = Serve("--ibe-key", str(files["localhost"]), "--ticket-key", str(files["ticket"]))
    second = Serve("--ibe-key", str(files["localhost"]), "--ticket-key", str(files["ticket"]))
    stranger = Serve("--ibe-key", str(files["localhost"]))
    try:
        session = echo(first.port, config).session  # type: ignore[attr-defined]
        resumed = echo(second.port, config, session)
        not_resumed = echo(stranger.port, config, session)
    finally:
        for server in (first, second, stranger):
            server.stop()
    assert resumed.handshake_mode == HandshakeMode.RESUMPTION  # type: ignore[attr-defined]
    assert not_resumed.handshake_mode == HandshakeMode.IBE_PSK  # type: ignore[attr-defined]


def test_rotated_ticket_keys_still_decrypt_tickets_of_the_old_key(files: dict[str, Path]) -> None:
    config = client_config(files)
    old = Serve("--ibe-key", str(files["localhost"]), "--ticket-key", str(files["ticket"]))
    rotated = Serve(
        "--ibe-key", str(files["localhost"]), "--ticket-key", str(files["other-ticket"]),
        "--ticket-key", str(files["ticket"]),
    )  # fmt: skip
    try:
        session = echo(old.port, config).session  # type: ignore[attr-defined]
        resumed = echo(rotated.port, config, session)
    finally:
        old.stop()
        rotated.stop()
    assert resumed.handshake_mode == HandshakeMode.RESUMPTION  # type: ignore[attr-defined]


def test_two_workers_serve_and_stop_together(files: dict[str, Path]) -> None:
    server = Serve("--ibe-key", str(files["localhost"]), "--workers", "2")
    config = client_config(files)
    try:
        session = echo(server.port, config).session  # type: ignore[attr-defined]
        modes = {echo(server.port, config, session).handshake_mode for _ in range(10)}  # type: ignore[attr-defined]
    finally:
        log = server.stop()
    assert server.process.returncode == 0, log
    assert modes == {HandshakeMode.RESUMPTION}  # whichever worker took it: they share the ticket key
    assert log.count(": all connections finished)") == 2, log


def test_workers_with_a_memory_strike_register_are_refused(files: dict[str, Path]) -> None:
    result = ibepsk(
        "serve", "--accept", "127.0.0.1:0", "--ibe-key", str(files["localhost"]), "--workers", "2",
        "--max-early-data", "1024",
    )  # fmt: skip
    assert_one_line_error(result, "--replay-store redis://")


@pytest.mark.parametrize(
    ("size", "mode", "fragment"), [(32, 0o644, "readable by others"), (16, 0o600, "at least 32 bytes")]
)
def test_a_bad_ticket_key_file_is_refused(
    files: dict[str, Path], tmp_path: Path, size: int, mode: int, fragment: str
) -> None:
    path = tmp_path / "ticket.key"
    path.write_bytes(os.urandom(size))
    path.chmod(mode)
    result = ibepsk("serve", "--accept", "127.0.0.1:0", "--ibe-key", str(files["localhost"]), "--ticket-key", str(path))
    assert_one_line_error(result, fragment)


# --- bad input: the RFC 8446 alert, one log line, no traceback --------------------------------------------


def sslv2_client_hello() -> bytes:
    """An SSLv2-framed ClientHello (RFC 5246 appendix E.2) offering TLS 1.0 and two RSA suites."""
    specs = bytes.fromhex("00002f000035")
    challenge = bytes(range(16))
    body = b"\x01\x03\x01" + struct.pack(">HHH", len(specs), 0, len(challenge)) + specs + challenge
    return struct.pack(">H", 0x8000 | len(body)) + body


CLOSE_NOTIFY = b"\x15\x03\x03\x00\x02\x01\x00"

BAD_INPUT = [
    pytest.param(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", "illegal_parameter", id="http-request"),
    pytest.param(b"\x00" * 64, "unexpected_message", id="zeros"),
    pytest.param(b"\x16\x03\x01\x00\x09\x01\x00\x00\x05hello", "decode_error", id="five-byte-hello"),
    pytest.param(sslv2_client_hello(), "handshake_failure", id="sslv2-hello"),
    pytest.param(b"\x17\x03\x03\x00\x05hello", "unexpected_message", id="application-data-first"),
]


def first_record_and_log(files: dict[str, Path], payload: bytes, *, half_close: bool = False) -> tuple[bytes, str]:
    """Send ``payload`` to ``ibepsk serve`` (then half-close, if asked); what came back, and what the server logged
    about this connection."""
    server = Serve("--ibe-key", str(files["localhost"]))
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(payload)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            answer = b"".join(iter(lambda: sock.recv(65536), b""))
            port = sock.getsockname()[1]
    finally:
        log = server.stop()
    assert "Traceback" not in log, log
    lines = [line for line in log.splitlines() if f":{port} " in line]
    assert len(lines) == 1, log
    return answer, lines[0]


def alert_name(answer: bytes) -> str:
    assert answer[:1] == b"\x15" and len(answer) >= 7, answer
    return str(AlertDescription.toStr(answer[6]))


@pytest.mark.parametrize(("payload", "alert"), BAD_INPUT)
def test_bad_input_gets_its_alert_and_one_log_line(files: dict[str, Path], payload: bytes, alert: str) -> None:
    answer, line = first_record_and_log(files, payload)
    assert alert_name(answer) == alert
    assert f"handshake failed: sent alert {alert}" in line, line


def test_a_tls12_only_client_gets_an_alert(files: dict[str, Path]) -> None:
    settings = StockSettings()
    settings.maxVersion = (3, 3)
    server = Serve("--ibe-key", str(files["localhost"]))
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            with pytest.raises(TLSRemoteAlert) as refused:
                StockConnection(sock).handshakeClientCert(settings=settings)
    finally:
        log = server.stop()
    assert "Traceback" not in log, log
    assert f"handshake failed: sent alert {AlertDescription.toStr(refused.value.description)}" in log, log


def test_a_record_cut_short_by_the_client_closing_is_a_close_not_a_bad_record(files: dict[str, Path]) -> None:
    answer, line = first_record_and_log(files, b"\x16\x03\x01\x00\x40\x01\x00\x00", half_close=True)
    assert answer == b""  # nothing to tell a client that has gone
    assert "handshake failed: peer closed the connection" in line, line


def test_close_notify_in_the_middle_of_the_handshake_ends_it_quietly(files: dict[str, Path]) -> None:
    hello = capture_client_hello(client_config(files).settings, "localhost").unsigned()
    answer, line = first_record_and_log(files, hello + CLOSE_NOTIFY)
    assert answer[:1] == b"\x16"  # the server's flight, then it closes
    assert "handshake failed: peer sent alert close_notify" in line, line


def test_a_server_name_without_a_host_name_gets_decode_error(files: dict[str, Path]) -> None:
    captured = capture_client_hello(client_config(files).settings, "localhost")
    sni = captured.hello.getExtension(ExtensionType.server_name)
    sni.serverNames = [SNIExtension.ServerName(1, b"localhost")]  # a name type other than host_name (0)
    answer, line = first_record_and_log(files, captured.unsigned())
    assert alert_name(answer) == "decode_error"  # as OpenSSL answers it (patches/0015)
    assert "handshake failed: sent alert decode_error: server_name extension without a host_name" in line, line


def test_an_sslv2_record_after_the_handshake_gets_unexpected_message(files: dict[str, Path]) -> None:
    server = Serve("--ibe-key", str(files["localhost"]))
    try:
        conn = connect("127.0.0.1", server.port, client_config(files))
        conn.write(b"ping")
        assert conn.read() == b"ping"
        conn.sock.sendall(b"\x80\x10" + bytes(16))  # an SSLv2 header: no such record exists under TLS 1.3 keys
        with pytest.raises(TLSRemoteAlert) as refused:
            conn.read()
    finally:
        log = server.stop()
    assert refused.value.description == AlertDescription.unexpected_message  # patches/0016
    assert "after handshake failed: sent alert unexpected_message" in log and "Traceback" not in log, log


def _reading_task() -> list[str] | None:
    """The names of the functions in the stack of the task that waits for a connection's bytes, if one does."""
    for task in asyncio.all_tasks():
        names = []
        awaiting: Any = task.get_coro()
        while hasattr(awaiting, "cr_code"):  # down the chain of coroutines, each awaiting the next
            names.append(awaiting.cr_code.co_name)
            awaiting = awaiting.cr_await
        if "_wait_for_data" in names:
            return names
    return None


@pytest.mark.parametrize("application", [echo_application, www_application])
def test_an_application_waits_for_its_client_in_its_own_task(
    ta: TAMasterKey, application: Callable[..., Awaitable[None]]
) -> None:
    """A read with a timeout adds no task (asyncio.wait_for does on Python 3.11: ~1 KiB more per idle connection)."""

    async def main() -> list[str] | None:
        settings = HandshakeSettings()
        settings.ibe_keyring = IbeKeyring([ta.extract("localhost")])
        server = AsyncTLSServer(ServerConfig(settings), application)
        await server.start()
        client_settings = HandshakeSettings()
        client_settings.ibe_public_params = ta.public
        _, writer = await open_connection(*server.address, settings=client_settings, server_name="localhost")
        writer.write(b"GET / HTTP/1.0\r\n")  # for www_application, a request that is not complete yet
        async with asyncio.timeout(TIMEOUT):
            while (reading := _reading_task()) is None:
                await asyncio.sleep(0.01)
        writer.close()
        await server.shut_down(grace=1)
        return reading

    assert application.__name__ in asyncio.run(main())
