"""RFC 8446 §5.4 record padding (``settings.padding_cb``) on ibepsk connections, seen on the wire.

Stock tlslite-ng hands the callback to its BufferedSocket, not to the record layer that pads, so it never pads
(patches/0019); ibepsk's seam gives it to the record layer, and the application data fast path leaves padded
writes to tlslite-ng. :class:`RecordTap`, a TCP proxy between the two ends, notes the length of each record
either end sends; the peers (ibepsk, stock tlslite-ng, ``openssl s_server``) read the padded records.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import test_pha_openssl
import tlslite
from test_accel import Credentials, read_exactly, settings_for
from test_early_data import REQUEST, EarlySeen, echo_rest, server_settings
from test_pha_openssl import SServer
from test_records import Counting, fast_stock_ciphers, text_lines  # noqa: F401 - the fixture
from tlslite.constants import ContentType

from ibepsk import HandshakeSettings, TLSConnection
from ibepsk.client import ClientConfig, connect
from ibepsk.keys import TAMasterKey
from ibepsk.tls import TrustAnchors
from ibepsk.tls.certs import ServerCertificateChecker
from ibepsk.tls.early_data import EarlyDataStatus

from pki import Issued
from tls_support import TIMEOUT, ibe_client_config, running_server

#: test_pha_openssl's fixtures: where openssl is, a directory for its files.
openssl, files = test_pha_openssl.openssl, test_pha_openssl.files

HEADER = 5
#: AES-GCM's and ChaCha20-Poly1305's, behind the inner plaintext (data, content type, zeros).
TAG = 16
#: The longest inner plaintext (RFC 8446 §5.4); tlslite-ng's max_padding keeps two bytes below it.
MAX_INNER = 2**14 + 1
MIB = 1 << 20


@dataclass(frozen=True)
class PadTo:
    """A ``padding_cb``: each record's inner plaintext up to a multiple of ``block`` bytes, where it fits."""

    block: int

    def __call__(self, length: int, content_type: int, max_padding: int) -> int:
        # length counts the data and the content type; max_padding keeps the record within the peer's limit
        return min(-length % self.block, max(max_padding, 0))

    def shows_in(self, record_length: int) -> bool:
        """Whether a record of this length on the wire was padded by us (or had no room for padding)."""
        inner = record_length - TAG
        return inner % self.block == 0 or inner >= MAX_INNER - 2


PAD = PadTo(256)


def _read_record(sock: socket.socket) -> bytes:
    """One whole TLS record, header and all; b"" at the end of the stream."""
    record = bytearray()
    needed = HEADER
    while len(record) < needed:
        chunk = sock.recv(needed - len(record))
        if not chunk:
            return b""
        record += chunk
        if needed == HEADER and len(record) == HEADER:
            needed += int.from_bytes(record[3:5], "big")
    return bytes(record)


class RecordTap:
    """A TCP proxy in front of ``target`` for one connection: passes each TLS record on whole, and notes its outer
    content type and length by the end that sent it."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(TIMEOUT)
        self.address: tuple[str, int] = self._listener.getsockname()
        self.sent: dict[str, list[tuple[int, int]]] = {"client": [], "server": []}
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve_one, daemon=True)
        self._thread.start()

    def __enter__(self) -> RecordTap:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._thread.join(TIMEOUT)  # both ends closed: every record has passed
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def encrypted(self, end: str) -> list[int]:
        """The lengths of the records ``end`` sent under traffic keys (outer type application_data)."""
        return [length for kind, length in self.sent[end] if kind == ContentType.application_data]

    def _serve_one(self) -> None:
        with contextlib.suppress(OSError):
            client, _ = self._listener.accept()
            upstream = socket.create_connection(self._target, timeout=TIMEOUT)
            self._sockets += [client, upstream]
            back = threading.Thread(target=self._pass, args=(upstream, client, self.sent["server"]), daemon=True)
            back.start()
            self._pass(client, upstream, self.sent["client"])
            back.join(TIMEOUT)

    @staticmethod
    def _pass(source: socket.socket, sink: socket.socket, noted: list[tuple[int, int]]) -> None:
        with contextlib.suppress(OSError):
            while record := _read_record(source):
                noted.append((record[0], len(record) - HEADER))
                sink.sendall(record)
            sink.shutdown(socket.SHUT_WR)


def assert_padded(lengths: list[int]) -> None:
    assert lengths and all(PAD.shows_in(length) for length in lengths), lengths


@contextlib.contextmanager
def one_connection_server(
    server_cls: type[Any], cert: Issued, application: Callable[[Any], None], padding_cb: PadTo | None
) -> Iterator[tuple[str, int]]:
    """A ``server_cls`` (ibepsk or stock tlslite-ng) server for one connection."""
    credentials = Credentials.of(cert)
    settings = settings_for(server_cls, padding_cb=padding_cb)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)

    def serve() -> None:
        sock, _ = listener.accept()
        sock.settimeout(TIMEOUT)
        with sock:
            conn = server_cls(sock)
            conn.handshakeServer(settings=settings, certChain=credentials.chain, privateKey=credentials.key)
            application(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()
    finally:
        thread.join(TIMEOUT)
        listener.close()


def padding_for(cls: type[Any]) -> PadTo | None:
    """Only ibepsk ends pad: stock tlslite-ng drops the callback."""
    return PAD if issubclass(cls, TLSConnection) else None


def reverse(size: int) -> Callable[[Any], None]:
    """Server application: read ``size`` bytes, write them back reversed."""

    def application(conn: Any) -> None:
        conn.write(read_exactly(conn, size)[::-1])

    return application


PEERS = {
    "ibepsk-ibepsk": (TLSConnection, TLSConnection),
    "ibepsk-client-stock-server": (TLSConnection, tlslite.TLSConnection),
    "stock-client-ibepsk-server": (tlslite.TLSConnection, TLSConnection),
}


@pytest.mark.usefixtures("fast_stock_ciphers")
@pytest.mark.parametrize("size", [5, MIB + 1], ids=["5-bytes", "1-MiB"])
@pytest.mark.parametrize("peers", list(PEERS))
def test_ibepsk_ends_pad_every_record(peers: str, size: int, server_cert: Issued) -> None:
    client_cls, server_cls = PEERS[peers]
    request = os.urandom(size)
    with (
        one_connection_server(server_cls, server_cert, reverse(size), padding_for(server_cls)) as address,
        RecordTap(address) as tap,
    ):
        client = client_cls(socket.create_connection(tap.address, timeout=TIMEOUT))
        settings = settings_for(client_cls, padding_cb=padding_for(client_cls))
        client.handshakeClientCert(settings=settings, serverName="localhost")
        client.write(request)
        assert read_exactly(client, size) == request[::-1]
        client.close()
    for end, cls in (("client", client_cls), ("server", server_cls)):
        if padding_for(cls):  # every encrypted record: the handshake's, the data's (the short last one too), alerts
            assert_padded(tap.encrypted(end))
    assert len(tap.encrypted("client")) >= size // 2**14 + 2


def test_without_padding_cb_records_keep_their_length(server_cert: Issued) -> None:
    request = os.urandom(5)
    with one_connection_server(Counting, server_cert, reverse(5), None) as address, RecordTap(address) as tap:
        client = Counting(socket.create_connection(tap.address, timeout=TIMEOUT))
        client.handshakeClientCert(settings=HandshakeSettings(), serverName="localhost")
        client.write(request)
        assert read_exactly(client, 5) == request[::-1]
        client.close()
    assert client.sent_by_tlslite == 0  # the fast path's records
    for end in ("client", "server"):
        lengths = tap.encrypted(end)
        assert len(request) + 1 + TAG in lengths  # the data, its content type, the tag: nothing more
        assert not any(PAD.shows_in(length) for length in lengths), lengths


def test_early_data_records_are_padded(ta: TAMasterKey) -> None:
    seen = EarlySeen()
    settings = server_settings(ta.extract("localhost"), seen=seen)
    settings.padding_cb = PAD
    with running_server(settings, echo_rest) as (server, _), RecordTap(server.address) as tap:
        conn = connect(*tap.address, ibe_client_config(ta.public, padding_cb=PAD), early_data=REQUEST)
        assert conn.early_data_status == EarlyDataStatus.ACCEPTED
        assert conn.read() == b"0.5-rtt:" + REQUEST
        conn.write(b"after the handshake")
        assert conn.read() == b"echo:after the handshake"
        conn.close()
    assert seen.chunks == [REQUEST]
    assert_padded(tap.encrypted("client"))  # the first is the 0-RTT record
    assert_padded(tap.encrypted("server"))  # the 0.5-RTT answer among them


def test_openssl_s_server_reads_padded_records(openssl: str, ca: Issued, files: Path) -> None:
    lines = text_lines(MIB // 64 + 1)  # a MiB and a short last record
    upload = "".join(line + "\n" for line in lines)
    s_server = SServer(openssl, ca, files)
    try:
        with RecordTap(("127.0.0.1", s_server.port)) as tap:
            settings = HandshakeSettings()
            settings.padding_cb = PAD
            checker = ServerCertificateChecker(TrustAnchors([ca.certificate]), "localhost")
            # s_server asks for a certificate in the handshake: the client's (empty) answer is padded too
            conn = connect(*tap.address, ClientConfig(settings, server_name="localhost", checker=checker))
            conn.write(upload.encode())
            s_server.wait_for(lines[-1])
            assert [line for line in s_server.output if line[:8].isdigit()] == lines
            s_server.type("back")
            assert read_exactly(conn, len("back\n")) == b"back\n"
            conn.close()
    finally:
        s_server.stop()
    assert_padded(tap.encrypted("client"))
    assert len(tap.encrypted("client")) >= MIB // 2**14 + 2
