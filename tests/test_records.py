"""The application data fast path (ibepsk.tls.records) against stock tlslite-ng, over TCP on 127.0.0.1.

A stock ``tlslite.TLSConnection`` on the other end reads what the fast path seals and writes what it
opens; whatever tlslite-ng itself sends or reads in between (KeyUpdate, NewSessionTicket, post-handshake
authentication, close_notify) only works if the fast path advanced the sequence numbers as tlslite-ng
would. :class:`Counting` proves the application data never took tlslite-ng's own message path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_pha_openssl
import tlslite
from test_accel import Credentials, handshake, read_exactly, settings_for
from test_nonblocking import Run, drive
from test_pha_openssl import SServer, connect_to_s_server
from tlslite.constants import AlertDescription, ContentType, KeyUpdateMessageType
from tlslite.errors import TLSLocalAlert, TLSRemoteAlert
from tlslite.messages import ApplicationData

import ibepsk.asyncio
from ibepsk import (
    HandshakeSettings,
    IbeKeyring,
    KeySigner,
    TLSConnection,
    TrustAnchors,
    accelerate_tlslite,
    restore_tlslite,
)
from ibepsk.client import ClientConfig, connect
from ibepsk.keys import TAMasterKey
from ibepsk.tls import records
from ibepsk.tls.certs import ServerCertificateChecker

from pki import Issued, issue
from tls_support import Pair, running_server

#: test_pha_openssl's fixtures: where openssl is, a directory for its files.
openssl, files = test_pha_openssl.openssl, test_pha_openssl.files

SUITES = ["aes128gcm", "aes256gcm", "chacha20-poly1305"]
#: Which end runs ibepsk; the other is stock tlslite-ng.
DIRECTIONS = ["ibepsk-client", "ibepsk-server"]
SIZES = [0, 1, 16383, 16384, 16385]
MIB = 1 << 20


class Counting(TLSConnection):
    """An ibepsk connection that counts the application data reaching tlslite-ng's message layer."""

    def __init__(self, sock: Any) -> None:
        super().__init__(sock)
        self.sent_by_tlslite = 0
        self.read_by_tlslite = 0

    def _sendMsg(self, msg: Any, randomizeFirstBlock: bool = True, update_hashes: bool = True) -> Iterator[Any]:
        self.sent_by_tlslite += msg.contentType == ContentType.application_data
        return super()._sendMsg(msg, randomizeFirstBlock, update_hashes)

    def _getMsg(self, expectedType: Any, secondaryType: Any = None, constructorType: Any = None) -> Iterator[Any]:
        for result in super()._getMsg(expectedType, secondaryType, constructorType):
            self.read_by_tlslite += isinstance(result, ApplicationData)
            yield result


@pytest.fixture()
def fast_stock_ciphers() -> Iterator[None]:
    """Stock tlslite-ng's record layer with cryptography's AEADs: its framing, nonces and sequence numbers,
    at a speed that lets it move a MiB."""
    accelerate_tlslite()
    yield
    restore_tlslite()


def against_stock(direction: str, server: Issued, suite: str = "aes128gcm", **client_fields: Any) -> Pair:
    """An ibepsk end (:class:`Counting`) and a stock tlslite-ng end, handshaken with ``suite``."""
    client_cls, server_cls = (Counting, tlslite.TLSConnection)
    if direction == "ibepsk-server":
        client_cls, server_cls = tlslite.TLSConnection, Counting
    return handshake(
        client_cls,
        server_cls,
        server=Credentials.of(server),
        client_settings=settings_for(client_cls, cipherNames=[suite], **client_fields),
        server_settings=settings_for(server_cls, cipherNames=[suite]),
    )


def ends(pair: Pair) -> tuple[Counting, Any]:
    """(the ibepsk end, the other end)."""
    return (pair.client, pair.server) if isinstance(pair.client, Counting) else (pair.server, pair.client)


def send_and_check(writer: Any, reader: Any, size: int) -> None:
    data = os.urandom(size)
    writer.write(data)
    assert read_exactly(reader, size) == data


def assert_fast_path_only(conn: Counting, after_key_updates: int = 0) -> None:
    """No application data went through tlslite-ng's message layer, except the record tlslite-ng's readAsync
    reads right after each KeyUpdate it handles (it reads on after one, as if asked for nothing)."""
    assert conn.getCipherImplementation() == "cryptography"
    assert (conn.sent_by_tlslite, conn.read_by_tlslite) == (0, after_key_updates)


def update_keys(conn: Any, requested: bool) -> None:
    """Send a KeyUpdate (tlslite-ng's own method, record and all)."""
    kind = KeyUpdateMessageType.update_requested if requested else KeyUpdateMessageType.update_not_requested
    for _ in conn.send_keyupdate_request(kind):
        pass


# --- the same records as tlslite-ng ------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("suite", SUITES)
def test_records_read_and_written_by_stock_tlslite(
    suite: str, direction: str, server_cert: Issued, pairs: list[Pair]
) -> None:
    pair = against_stock(direction, server_cert, suite)
    pairs.append(pair)
    ibepsk, stock = ends(pair)
    for size in SIZES:  # an empty write is one empty record: the next record's nonce shows it was counted
        send_and_check(ibepsk, stock, size)
        send_and_check(stock, ibepsk, size)
    assert ibepsk.getCipherName() == stock.getCipherName()
    assert_fast_path_only(ibepsk)


@pytest.mark.usefixtures("fast_stock_ciphers")
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("suite", SUITES)
def test_a_mebibyte_each_way(suite: str, direction: str, server_cert: Issued, pairs: list[Pair]) -> None:
    pair = against_stock(direction, server_cert, suite)
    pairs.append(pair)
    ibepsk, stock = ends(pair)
    send_and_check(ibepsk, stock, MIB + 1)
    send_and_check(stock, ibepsk, MIB + 1)
    assert_fast_path_only(ibepsk)


def test_an_empty_write_is_one_empty_record_as_with_tlslite(server_cert: Issued, pairs: list[Pair]) -> None:
    pair = against_stock("ibepsk-client", server_cert)
    pairs.append(pair)
    empty = b"\x17\x03\x03\x00\x11"  # the inner content type and the tag
    for writer, reader in ((pair.client, pair.server), (pair.server, pair.client)):
        writer.write(b"")
        assert reader.sock.socket.recv(1024)[:5] == empty


def test_writes_respect_the_peers_record_size_limit(server_cert: Issued, pairs: list[Pair]) -> None:
    # RFC 8449: the stock server accepts records of at most 1023 bytes of data (tlslite-ng enforces it).
    client_cls, server_cls = Counting, tlslite.TLSConnection
    pair = handshake(
        client_cls,
        server_cls,
        server=Credentials.of(server_cert),
        server_settings=settings_for(server_cls, record_size_limit=1024),
    )
    pairs.append(pair)
    assert pair.client.recordSize == 1023
    send_and_check(pair.client, pair.server, 5000)
    assert_fast_path_only(pair.client)


# --- tlslite-ng's own messages between fast-path records ------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_key_updates_both_ways_between_records(direction: str, server_cert: Issued, pairs: list[Pair]) -> None:
    pair = against_stock(direction, server_cert)
    pairs.append(pair)
    ibepsk, stock = ends(pair)
    send_and_check(ibepsk, stock, 40000)
    update_keys(ibepsk, requested=True)  # sealed by tlslite-ng with the fourth sequence number
    send_and_check(ibepsk, stock, 3000)  # new keys; the stock end answers with its own KeyUpdate
    send_and_check(stock, ibepsk, 3000)  # ibepsk reads that KeyUpdate first
    stock.write(b"before")
    update_keys(stock, requested=True)
    stock.write(b"after")
    assert read_exactly(ibepsk, 11) == b"beforeafter"  # ibepsk answers with a KeyUpdate behind its two records
    send_and_check(ibepsk, stock, 20000)
    send_and_check(stock, ibepsk, 20000)
    assert_fast_path_only(ibepsk, after_key_updates=2)


def test_new_session_ticket_between_records(server_cert: Issued, pairs: list[Pair]) -> None:
    settings = settings_for(tlslite.TLSConnection, cipherNames=["aes128gcm"], ticketKeys=[bytearray(32)])
    pair = handshake(Counting, tlslite.TLSConnection, server=Credentials.of(server_cert), server_settings=settings)
    pairs.append(pair)
    client, server = pair.client, pair.server
    send_and_check(server, client, 20000)  # the handshake's ticket first, then two records
    tickets = len(client.tickets)
    server.write(b"before")
    for _ in server._serverSendTickets(settings):  # tlslite-ng's own NewSessionTicket sender
        pass
    server.write(b"after")
    assert read_exactly(client, 11) == b"beforeafter"
    assert len(client.tickets) == tickets + settings.ticket_count
    send_and_check(client, server, 20000)
    assert_fast_path_only(client)


def test_post_handshake_authentication_mid_stream(ca: Issued, server_cert: Issued, pairs: list[Pair]) -> None:
    client_cert = issue(ca, "device", server=False)
    client_settings = settings_for(Counting, client_auth_signer=KeySigner([client_cert.certificate], client_cert.key))
    server_settings = settings_for(
        Counting, client_auth_anchors=TrustAnchors([ca.certificate]), ticketKeys=[bytearray(32)]
    )
    pair = handshake(
        Counting,
        Counting,
        server=Credentials.of(server_cert),
        client_settings=client_settings,
        server_settings=server_settings,
    )
    pairs.append(pair)
    client, server = pair.client, pair.server
    send_and_check(client, server, 20000)
    send_and_check(server, client, 20000)
    server.write(b"before")
    server.request_client_auth()  # CertificateRequest, sealed by tlslite-ng
    server.write(b"after")
    assert read_exactly(client, 11) == b"beforeafter"  # the client answers as it reads
    client.write(b"answered")
    assert read_exactly(server, 8) == b"answered"  # the server checks the answer, then sends a fresh ticket
    assert server.client_auth is not None and server.client_auth.subject == "CN=device"
    send_and_check(server, client, 20000)  # the client reads the ticket first
    assert client.certificate_requests_answered == 1
    send_and_check(client, server, 20000)
    for conn in (client, server):
        assert_fast_path_only(conn)


@pytest.mark.parametrize("closer", ["ibepsk", "stock"])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_close_notify_after_records(direction: str, closer: str, server_cert: Issued, pairs: list[Pair]) -> None:
    pair = against_stock(direction, server_cert)
    pairs.append(pair)
    ibepsk, stock = ends(pair)
    writer, reader = (ibepsk, stock) if closer == "ibepsk" else (stock, ibepsk)
    data = os.urandom(40000)
    writer.write(data)
    if writer is ibepsk:
        ibepsk.send_close_notify()  # the socket stays open
    else:
        stock.close()
    assert read_exactly(reader, len(data)) == data
    assert reader.read() == b""  # the close_notify decrypted: the end of the data, not bad_record_mac
    assert reader.closed


# --- records that do not authenticate ------------------------------------------------------------


@pytest.mark.parametrize("receiver", ["client", "server"])
def test_tampered_record_gets_bad_record_mac(receiver: str, server_cert: Issued, pairs: list[Pair]) -> None:
    pair = handshake(Counting, Counting, server=Credentials.of(server_cert))
    pairs.append(pair)
    reader, writer = (pair.client, pair.server) if receiver == "client" else (pair.server, pair.client)
    send_and_check(writer, reader, 20000)
    writer.write(b"tampered in flight")
    raw = reader.sock.socket
    record = raw.recv(1024)  # the whole record (one segment on loopback): flip a bit of its ciphertext
    tampered = record[:10] + bytes([record[10] ^ 1]) + record[11:]
    writer.sock.socket.sendall(tampered)
    with pytest.raises(TLSLocalAlert) as sent:
        reader.read()
    assert sent.value.description == AlertDescription.bad_record_mac
    assert reader.closed
    with pytest.raises(TLSRemoteAlert) as received:
        writer.read()
    assert received.value.description == AlertDescription.bad_record_mac


def test_tampered_record_at_a_server_is_one_log_line(
    server_cert: Issued, ca: Issued, caplog: pytest.LogCaptureFixture
) -> None:
    def echo(conn: TLSConnection) -> None:
        while data := conn.read():
            conn.write(data)

    logs = caplog.at_level(logging.INFO, logger="ibepsk.server")
    with logs, running_server(HandshakeSettings(), echo, server_cert) as (server, _):
        config = ClientConfig(HandshakeSettings(), server_name="localhost")
        config.checker = ServerCertificateChecker(TrustAnchors([ca.certificate]), "localhost")
        client = connect(*server.address, config)
        send_and_check(client, client, 20000)  # echoed
        record = records.seal_records(client._recordLayer._writeState, memoryview(b"tampered"), client.recordSize)
        client.sock.socket.sendall(record[:-1] + bytes([record[-1] ^ 1]))  # a genuine record, its tag flipped
        with pytest.raises(TLSRemoteAlert) as received:
            client.read()
        assert received.value.description == AlertDescription.bad_record_mac
        client.sock.socket.close()
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert [r.getMessage().split(" ", 1)[1].rsplit(" ", 1)[0] for r in failures] == [
        "after handshake failed: sent alert bad_record_mac: MAC failure (or padding failure)"
    ]
    assert not any(r.exc_info for r in caplog.records)  # no traceback


# --- OpenSSL on the other end ---------------------------------------------------------------------


def text_lines(count: int) -> list[str]:
    """``count`` distinct 64-byte lines (OpenSSL's s_server and s_client pass text through their stdio)."""
    return [f"{number:08d} " + "abcdefgh" * 6 + "ijklmn" for number in range(count)]


def test_bulk_both_ways_with_openssl_s_server(openssl: str, ca: Issued, files: Path) -> None:
    lines = text_lines(MIB // 64)
    s_server = SServer(openssl, ca, files)
    try:
        conn = connect_to_s_server(s_server, ca, files, answer_limit=1)
        conn.write("".join(line + "\n" for line in lines).encode())  # 64 records in one write
        s_server.wait_for(lines[-1])
        assert [line for line in s_server.output if line[:8].isdigit()] == lines
        back = "".join(line + "\n" for line in lines[: len(lines) // 4])
        assert s_server.process.stdin is not None
        s_server.process.stdin.write(back)
        s_server.process.stdin.flush()
        assert read_exactly(conn, len(back)) == back.encode()
        conn.close()
    finally:
        s_server.stop()


def test_bulk_both_ways_with_openssl_s_client(openssl: str, ca: Issued, server_cert: Issued, files: Path) -> None:
    upload = "".join(line + "\n" for line in text_lines(MIB // 64)).encode()
    download = "".join(line + "\n" for line in reversed(text_lines(MIB // 64))).encode()
    uploads: list[bytes] = []

    def application(conn: TLSConnection) -> None:
        uploads.append(read_exactly(conn, len(upload)))
        conn.write(download)

    (files / "ca.pem").write_bytes(ca.cert_pem())
    with running_server(HandshakeSettings(), application, server_cert) as (server, _):
        host, port = server.address
        command = [openssl, "s_client", "-tls1_3", "-connect", f"{host}:{port}", "-quiet"]
        command += ["-CAfile", str(files / "ca.pem")]
        result = subprocess.run(command, input=upload, capture_output=True, timeout=60)
    assert uploads == [upload]
    assert result.stdout == download, result.stderr


# --- non-blocking sockets: readAsync and writeAsync ----------------------------------------------


def test_a_mebibyte_each_way_on_non_blocking_sockets(server_cert: Issued, pairs: list[Pair]) -> None:
    pair = handshake(Counting, Counting, server=Credentials.of(server_cert))
    pairs.append(pair)
    client, server = pair.client, pair.server
    request, response = os.urandom(MIB + 1), os.urandom(MIB + 1)
    for conn in (client, server):
        conn.sock.socket.setblocking(False)

    def client_steps() -> Iterator[Any]:
        yield from client.writeAsync(request)
        received = yield from reading(client, len(response))
        yield received

    def server_steps() -> Iterator[Any]:
        received = yield from reading(server, len(request))
        yield from server.writeAsync(response)
        yield received

    client_run, server_run = Run(client.sock.socket, client_steps()), Run(server.sock.socket, server_steps())
    drive(client_run, server_run)
    assert (client_run.error, server_run.error) == (None, None)
    assert client_run.values == [response] and server_run.values == [request]
    for conn in (client, server):
        assert_fast_path_only(conn)


def test_a_mebibyte_each_way_through_ibepsk_asyncio(ta: TAMasterKey) -> None:
    request = os.urandom(MIB + 1)

    async def reverse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write((await reader.readexactly(len(request)))[::-1])
        await writer.drain()
        writer.close()

    async def main() -> bytes:
        settings = HandshakeSettings()
        settings.ibe_keyring = IbeKeyring([ta.extract("localhost")])
        server = await ibepsk.asyncio.start_server(reverse, "127.0.0.1", 0, settings=settings)
        async with server:
            client_settings = HandshakeSettings()
            client_settings.ibe_public_params = ta.public
            reader, writer = await ibepsk.asyncio.open_connection(
                "127.0.0.1", server.sockets[0].getsockname()[1], settings=client_settings, server_name="localhost"
            )
            writer.write(request)
            response = await reader.readexactly(len(request))
            writer.close()
            await writer.wait_closed()
        return response

    assert asyncio.run(asyncio.wait_for(main(), 60)) == request[::-1]


def reading(conn: TLSConnection, count: int) -> Iterator[Any]:
    """readAsync until ``count`` bytes came; the generator's value is what they were (no bytes are yielded)."""
    received = bytearray()
    while len(received) < count:
        for step in conn.readAsync(max=count - len(received)):
            if step in (0, 1):
                yield step
            else:
                received += step
    return bytes(received)


def test_the_socket_shows_data_the_fast_path_has_not_read(server_cert: Issued, pairs: list[Pair]) -> None:
    # select() readiness: a read takes what it needs and leaves the rest in the kernel, as tlslite-ng does.
    pair = handshake(Counting, Counting, server=Credentials.of(server_cert))
    pairs.append(pair)
    client, server = pair.client, pair.server
    for _ in range(8):
        client.write(os.urandom(16384))
    assert len(server.read()) == 16384
    assert select.select([server.sock.socket], [], [], 0)[0]
    assert len(server.sock._read_buffer) < 4096
    assert server.sock.socket.recv(1 << 20, socket.MSG_PEEK)


def test_fast_path_decisions(server_cert: Issued, pairs: list[Pair]) -> None:
    pair = handshake(Counting, tlslite.TLSConnection, server=Credentials.of(server_cert))
    pairs.append(pair)
    conn = pair.client
    assert records.sends_fast(conn, b"data") and records.reads_fast(conn)
    assert not records.sends_fast(conn, "text")  # tlslite-ng decides what to do with anything but bytes
    conn._recordLayer.padding_cb = lambda length, content_type, max_padding: 0
    assert not records.sends_fast(conn, b"data")  # tlslite-ng pads, the fast path does not
    conn._recordLayer.padding_cb = None
    conn.sock.buffer_writes = True
    assert not records.sends_fast(conn, b"data")
    conn.sock.buffer_writes = False
    conn.close()
    assert not records.sends_fast(conn, b"data") and not records.reads_fast(conn)
