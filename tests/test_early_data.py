"""0-RTT early data over IBE-PSK, between real ibepsk peers and with TiigerTLS's captured flight."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from tlslite.errors import TLSRemoteAlert

from ibepsk import HandshakeSettings, IbeKeyring, TLSConnection
from ibepsk.client import connect, open_tcp
from ibepsk.keys import IdentityKey, TAMasterKey, TAPublicParams
from ibepsk.netem import FirstFlightRecorder
from ibepsk.server import TLSServer
from ibepsk.tls.driving import run_to_completion
from ibepsk.tls.early_data import EarlyDataStatus
from ibepsk.tls.replay import MemoryReplayStore

from tls_support import (
    TIMEOUT,
    ibe_client_config,
    parse_server_hello,
    read_record,
    running_server,
    wait_for,
)

REQUEST = b"GET /reading HTTP/1.1\r\n\r\n"


@dataclass
class EarlySeen:
    chunks: list[bytes] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    answer: bool = True

    def handler(self, conn: Any, chunk: bytes) -> bytes | None:
        self.chunks.append(chunk)
        self.arrived.set()
        return b"0.5-rtt:" + chunk if self.answer else None


def server_settings(key: IdentityKey, accept: int = 1024, seen: EarlySeen | None = None) -> HandshakeSettings:
    settings = HandshakeSettings()
    settings.ibe_keyring = IbeKeyring([key])
    settings.accept_early_data = accept
    settings.replay_store = MemoryReplayStore(window_seconds=3600)
    if seen is not None:
        settings.early_data_handler = seen.handler
    return settings


def echo_rest(conn: TLSConnection) -> None:
    data = conn.read()
    conn.write(b"echo:" + data)


@pytest.fixture()
def early_server(ta: TAMasterKey) -> Iterator[tuple[TLSServer, EarlySeen]]:
    seen = EarlySeen()
    with running_server(server_settings(ta.extract("localhost"), seen=seen), echo_rest) as (server, _):
        yield server, seen


def test_early_data_accepted_answered_at_once_and_delivered(
    early_server: tuple[TLSServer, EarlySeen], ta: TAMasterKey
) -> None:
    server, seen = early_server
    conn = connect(*server.address, ibe_client_config(ta.public), early_data=REQUEST)
    try:
        assert conn.early_data_status == EarlyDataStatus.ACCEPTED
        assert conn.read() == b"0.5-rtt:" + REQUEST, "the server's 0.5-RTT answer comes first"
        conn.write(b"after the handshake")
        assert conn.read() == b"echo:after the handshake"
    finally:
        conn.close()
    assert seen.chunks == [REQUEST]
    wait_for(lambda: server.stats.early_data["accepted"] == 1)


def test_early_data_spanning_several_records(ta: TAMasterKey) -> None:
    seen = EarlySeen(answer=False)
    big = bytes(range(256)) * 100  # 25,600 bytes: two records
    with running_server(server_settings(ta.extract("localhost"), accept=40000, seen=seen), echo_rest) as (server, _):
        conn = connect(*server.address, ibe_client_config(ta.public, ibe_max_early_data=40000), early_data=big)
        conn.write(b"done")
        assert conn.read() == b"echo:done"
        conn.close()
    assert conn.early_data_status == EarlyDataStatus.ACCEPTED
    assert b"".join(seen.chunks) == big and len(seen.chunks) >= 2


def test_rejected_by_policy_is_resent_after_the_handshake(ta: TAMasterKey) -> None:
    settings = server_settings(ta.extract("localhost"), accept=0)
    with running_server(settings, echo_rest) as (server, _):
        conn = connect(*server.address, ibe_client_config(ta.public), early_data=REQUEST)
        try:
            assert conn.early_data_status == EarlyDataStatus.REJECTED
            assert conn.read() == b"echo:" + REQUEST
        finally:
            conn.close()
        wait_for(lambda: server.stats.handshakes == 1)
    assert server.stats.early_data["disabled"] == 1


def test_rejected_early_data_is_resent_by_an_async_handshake_too(ta: TAMasterKey) -> None:
    with running_server(server_settings(ta.extract("localhost"), accept=0), echo_rest) as (server, _):
        sock = open_tcp(server.address, TIMEOUT)
        sock.setblocking(False)
        conn = TLSConnection(sock)
        config = ibe_client_config(ta.public)
        steps = conn.handshakeClientCert(
            settings=config.settings, serverName="localhost", async_=True, early_data=REQUEST
        )
        run_to_completion(steps, sock)
        sock.setblocking(True)
        sock.settimeout(TIMEOUT)
        try:
            assert conn.early_data_status == EarlyDataStatus.REJECTED
            assert conn.read() == b"echo:" + REQUEST
        finally:
            conn.close()


def test_no_resend_when_the_application_says_so(ta: TAMasterKey) -> None:
    with running_server(server_settings(ta.extract("localhost"), accept=0), echo_rest) as (server, _):
        conn = connect(*server.address, ibe_client_config(ta.public, early_data_resend=False), early_data=REQUEST)
        try:
            assert conn.early_data_status == EarlyDataStatus.REJECTED
            conn.write(b"fresh")
            assert conn.read() == b"echo:fresh"
        finally:
            conn.close()


def test_replayed_first_flight_is_refused(early_server: tuple[TLSServer, EarlySeen], ta: TAMasterKey) -> None:
    server, seen = early_server
    recorder = FirstFlightRecorder(socket.create_connection(server.address, timeout=TIMEOUT))
    conn = TLSConnection(recorder)
    conn.handshakeClientCert(settings=ibe_client_config(ta.public).settings, serverName="localhost", early_data=REQUEST)
    conn.close()
    assert conn.early_data_status == EarlyDataStatus.ACCEPTED
    with socket.create_connection(server.address, timeout=TIMEOUT) as replay:
        replay.sendall(bytes(recorder.first_flight))
        parse_server_hello(read_record(replay))  # the server still answers the handshake
    wait_for(lambda: server.stats.early_data["replay"] == 1)
    assert seen.chunks == [REQUEST], "the replayed early data must never reach the application"


def assert_server_sent(caplog: pytest.LogCaptureFixture, server: TLSServer, alert: str) -> None:
    """The client may see the alert or, racing it, a reset: the server's log line says what it sent."""
    wait_for(lambda: server.stats.failures == 1)
    assert any(f"sent alert {alert}" in record.getMessage() for record in caplog.records), caplog.text


def test_too_much_early_data_is_unexpected_message(ta: TAMasterKey, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ibepsk.server")
    settings = server_settings(ta.extract("localhost"), accept=16)
    with running_server(settings, echo_rest) as (server, _):
        with pytest.raises((TLSRemoteAlert, OSError)):
            conn = connect(*server.address, ibe_client_config(ta.public), early_data=b"x" * 17)
            conn.read()
        assert_server_sent(caplog, server, "unexpected_message")


class WrongEarlyKeyConnection(TLSConnection):
    """A client that encrypts its early data under a key the server cannot have."""

    def _early_state(self, secret: bytearray, implementations: list[str]) -> Any:
        return super()._early_state(bytearray(len(secret)), implementations)


def test_early_data_under_a_wrong_key_is_bad_record_mac(ta: TAMasterKey, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ibepsk.server")
    with running_server(server_settings(ta.extract("localhost")), echo_rest) as (server, _):
        conn = WrongEarlyKeyConnection(socket.create_connection(server.address, timeout=TIMEOUT))
        with pytest.raises((TLSRemoteAlert, OSError)):
            conn.handshakeClientCert(
                settings=ibe_client_config(ta.public).settings, serverName="localhost", early_data=REQUEST
            )
            conn.read()
        assert_server_sent(caplog, server, "bad_record_mac")


def test_no_early_data_after_hello_retry_request(ta: TAMasterKey) -> None:
    settings = server_settings(ta.extract("localhost"))
    settings.eccCurves, settings.keyShares = ["secp256r1"], ["secp256r1"]
    config = ibe_client_config(ta.public, keyShares=["x25519"], eccCurves=["x25519", "secp256r1"])
    with running_server(settings, echo_rest) as (server, _):
        conn = connect(*server.address, config, early_data=REQUEST)
        try:
            assert conn.early_data_status == EarlyDataStatus.REJECTED
            assert conn.read() == b"echo:" + REQUEST
        finally:
            conn.close()


def test_early_data_needs_an_ibe_psk_and_a_limit(ta: TAMasterKey) -> None:
    conn = TLSConnection(socket.socket())
    with pytest.raises(ValueError, match="needs an IBE-PSK"):
        conn.handshakeClientCert(settings=HandshakeSettings(), serverName="localhost", early_data=b"x")
    with pytest.raises(ValueError, match="exceed the limit of 16384"):
        conn.handshakeClientCert(
            settings=ibe_client_config(ta.public).settings, serverName="localhost", early_data=b"x" * 16385
        )


def _tiiger_server_settings(vectors: dict[str, Any], seen: EarlySeen) -> HandshakeSettings:
    public = TAPublicParams.from_bytes(bytes.fromhex(vectors["ta_public_key_g1"]))
    key = IdentityKey.from_bytes("localhost", bytes.fromhex(vectors["identity_key_g2"]), public)
    return server_settings(key, seen=seen)


def test_captured_tiiger_flight_accepted_once_then_refused_as_replay(vectors: dict[str, Any]) -> None:
    flight = vectors["captured_first_flight"]
    seen = EarlySeen()
    with running_server(_tiiger_server_settings(vectors, seen)) as (server, _):
        with socket.create_connection(server.address, timeout=TIMEOUT) as first:
            first.sendall(bytes.fromhex(flight["records_hex"]))
            parse_server_hello(read_record(first))
            assert seen.arrived.wait(TIMEOUT), "the server never decrypted the 0-RTT record"
        assert seen.chunks == [bytes.fromhex(flight["early_data_plaintext_hex"])]
        wait_for(lambda: server.stats.early_data["accepted"] == 1)

        with socket.create_connection(server.address, timeout=TIMEOUT) as second:
            second.sendall(bytes.fromhex(flight["records_hex"]))
            server_hello = parse_server_hello(read_record(second))
            assert server_hello.getExtension(41).selected == 0, "the handshake goes on with the IBE-PSK"
        wait_for(lambda: server.stats.early_data["replay"] == 1)
    assert len(seen.chunks) == 1


def test_ticket_first_means_no_early_data(ta: TAMasterKey) -> None:
    settings = server_settings(ta.extract("localhost"))
    settings.ticketKeys = [bytearray(32)]
    with running_server(settings, echo_rest) as (server, _):
        first = connect(*server.address, ibe_client_config(ta.public))
        first.write(b"hi")
        first.read()
        first.close()
        conn = connect(*server.address, ibe_client_config(ta.public), session=first.session, early_data=REQUEST)
        try:
            assert conn.handshake_mode == "resumption"
            assert conn.early_data_status == EarlyDataStatus.NOT_OFFERED
        finally:
            conn.close()


def test_rejected_full_record_of_early_data_is_skipped(ta: TAMasterKey) -> None:
    big = b"r" * 16384  # the client's default maximum: one full record
    with running_server(server_settings(ta.extract("localhost"), accept=0), echo_rest) as (server, _):
        conn = connect(*server.address, ibe_client_config(ta.public), early_data=big)
        try:
            assert conn.early_data_status == EarlyDataStatus.REJECTED
            received = bytearray()
            while len(received) < len(big) + 5:
                received += conn.read()
            assert bytes(received) == b"echo:" + big, "skipped as RFC 8446 §4.2.10 says, then resent"
        finally:
            conn.close()


def test_request_split_across_early_data_and_after_is_answered(ta: TAMasterKey) -> None:
    from ibepsk.server import www_application, www_early_data_handler

    settings = server_settings(ta.extract("localhost"))
    settings.early_data_handler = www_early_data_handler
    with running_server(settings, www_application) as (server, _):
        conn = connect(*server.address, ibe_client_config(ta.public), early_data=b"GET / HTTP/1.1\r\n")
        try:
            assert conn.early_data_status == EarlyDataStatus.ACCEPTED
            conn.write(b"\r\n")
            assert conn.read().startswith(b"HTTP/1.1 200 OK")
        finally:
            conn.close()


def test_failing_handler_ends_with_internal_error(ta: TAMasterKey, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ibepsk.server")

    def broken(conn: Any, chunk: bytes) -> bytes:
        raise RuntimeError("application bug")

    settings = server_settings(ta.extract("localhost"))
    settings.early_data_handler = broken
    with running_server(settings, echo_rest) as (server, _):
        with pytest.raises((TLSRemoteAlert, OSError)):
            conn = connect(*server.address, ibe_client_config(ta.public), early_data=REQUEST)
            conn.read()
        assert_server_sent(caplog, server, "internal_error")
