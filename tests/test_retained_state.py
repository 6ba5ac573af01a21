"""What a connection keeps once its handshake is done (issue 11: 10,000 held connections in 300 MiB).

Not a timing or RSS test: each test walks the objects reachable from a real connection after a real
handshake and names what must be gone — tlslite-ng's handshake transcripts (six OpenSSL hash states and
every byte of the handshake), its per-handshake settings copy, the IBE-PSK — and checks that the
connection still does what needs them later (data, KeyUpdate, post-handshake authentication).
"""

from __future__ import annotations

import asyncio
import gc
import os
import select
import socket
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from tlslite.constants import KeyUpdateMessageType
from tlslite.errors import TLSAbruptCloseError
from tlslite.handshakehashes import HandshakeHashes
from tlslite.handshakesettings import HandshakeSettings as TlsliteSettings

import ibepsk.asyncio
from ibepsk import HandshakeSettings, KeySigner, TLSConnection, TrustAnchors
from ibepsk.endpoints import server_settings
from ibepsk.keys import IdentityKey, TAMasterKey
from ibepsk.tls import IbeKeyring
from ibepsk.tls.early_data import EarlyDataStatus
from ibepsk.tls.loopback import run_both, tcp_pair
from ibepsk.tls.psk import IbeScheme

from pki import issue, make_ca

_NOT_STATE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.CodeType)


def reachable(root: object, shared: tuple[object, ...] = ()) -> list[object]:
    """The objects ``root`` holds, directly or not: its state, without classes, functions, modules (and their
    globals) or the ``shared`` objects (the caller's settings, the event loop)."""
    stop = {id(obj) for obj in shared} | {id(vars(module)) for module in list(sys.modules.values())}
    seen: dict[int, object] = {}
    pending = [root]
    while pending:
        obj = pending.pop()
        if id(obj) in seen or id(obj) in stop or isinstance(obj, _NOT_STATE):
            continue
        seen[id(obj)] = obj
        pending.extend(gc.get_referents(obj))
    return list(seen.values())


class RecordingKeyring(IbeKeyring):
    """An IbeKeyring that remembers each PSK it opens: its value, and the bytearray it hands to the handshake."""

    def __init__(self, keys: list[IdentityKey]) -> None:
        super().__init__(keys)
        self.opened: list[tuple[bytes, bytearray]] = []

    def open(
        self, server_name: str | None, ciphertext: bytes, scheme: IbeScheme = IbeScheme.BONEH_FRANKLIN
    ) -> tuple[str, bytearray]:
        identity, psk = super().open(server_name, ciphertext, scheme)
        self.opened.append((bytes(psk), psk))
        return identity, psk


@pytest.fixture(scope="module")
def identity_key(ta: TAMasterKey) -> IdentityKey:
    return ta.extract("localhost")


def client_settings(ta: TAMasterKey, signer: KeySigner | None = None) -> HandshakeSettings:
    settings = HandshakeSettings()
    settings.ibe_public_params = ta.public
    settings.client_auth_signer = signer
    return settings


class Pair:
    """A client and a server TLSConnection over a real TCP pair, both driven in this thread."""

    def __init__(self) -> None:
        self.sockets = tcp_pair()
        self.client, self.server = TLSConnection(self.sockets[0]), TLSConnection(self.sockets[1])

    def handshake(self, client: HandshakeSettings, server: HandshakeSettings, early_data: bytes | None = None) -> None:
        client_steps = self.client.handshakeClientCert(
            settings=client, serverName="localhost", async_=True, early_data=early_data
        )
        run_both(client_steps, self.server.handshakeServerAsync(settings=server), self.sockets)

    def run(self, client_steps: Iterator[Any], server_steps: Iterator[Any]) -> tuple[Any, Any]:
        results = run_both(client_steps, server_steps, self.sockets)
        return results.client.value, results.server.value

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def pair() -> Iterator[Pair]:
    made = Pair()
    yield made
    made.close()


def assert_let_go(held: list[object], psks: list[tuple[bytes, bytearray]]) -> None:
    """Neither tlslite's handshake transcripts nor the IBE-PSK (which is zeroed) are among ``held``."""
    assert not [obj for obj in held if isinstance(obj, HandshakeHashes)], "tlslite's handshake transcripts"
    for value, handed_over in psks:
        assert handed_over == bytes(len(value)), "the IBE-PSK is zeroed"
        assert not [obj for obj in held if isinstance(obj, bytes | bytearray) and obj == value], "the IBE-PSK"


@pytest.mark.parametrize("early_data", [None, b"early"], ids=["1-rtt", "0-rtt"])
def test_without_post_handshake_auth_no_transcript_settings_or_psk_stays(
    ta: TAMasterKey, identity_key: IdentityKey, pair: Pair, early_data: bytes | None
) -> None:
    server = server_settings([identity_key], accept_early_data=1024)
    server.ibe_keyring = keyring = RecordingKeyring([identity_key])
    client = client_settings(ta)
    pair.handshake(client, server, early_data)
    expected = EarlyDataStatus.ACCEPTED if early_data else EarlyDataStatus.NOT_OFFERED
    assert pair.client.early_data_status == pair.server.early_data_status == expected
    assert pair.server.early_data == (early_data or b"")
    assert len(keyring.opened) == 1

    for conn in (pair.client, pair.server):
        held = reachable(conn, (server, client, keyring, ta.public))
        assert_let_go(held, keyring.opened)
        assert not [obj for obj in held if isinstance(obj, TlsliteSettings)], "a per-handshake copy of the settings"

    # What comes after the handshake still works: data both ways, a KeyUpdate both ways, data again.
    assert pair.run(pair.client.readAsync(), pair.server.writeAsync(b"to the client"))[0] == b"to the client"
    key_update = pair.server.send_keyupdate_request(KeyUpdateMessageType.update_requested)
    assert pair.run(pair.client.readAsync(), _then_write(key_update, pair.server, b"after"))[0] == b"after"
    assert pair.run(pair.client.writeAsync(b"to the server"), pair.server.readAsync())[1] == b"to the server"


def _then_write(steps: Iterator[Any], conn: TLSConnection, data: bytes) -> Iterator[Any]:
    yield from steps
    yield from conn.writeAsync(data)


def test_with_post_handshake_auth_possible_one_transcript_hash_stays_and_serves_it(
    ta: TAMasterKey, identity_key: IdentityKey, pair: Pair
) -> None:
    device_ca = make_ca()
    device = issue(device_ca, "device-9", server=False)
    server = server_settings([identity_key])
    server.ibe_keyring = keyring = RecordingKeyring([identity_key])
    server.client_auth_anchors = TrustAnchors([device_ca.certificate])
    client = client_settings(ta, KeySigner([device.certificate], device.key))
    pair.handshake(client, server)
    assert pair.server.post_handshake_auth_offered

    for conn in (pair.client, pair.server):  # their settings stay: post-handshake authentication reads them
        assert_let_go(reachable(conn, (server, client, keyring, ta.public)), keyring.opened)

    def authenticate() -> Iterator[Any]:
        yield from pair.server.request_client_auth_async(required=True)
        yield from pair.server.wait_for_client_auth_async()
        yield from pair.server.writeAsync(b"known")

    assert pair.run(pair.client.readAsync(), authenticate())[0] == b"known"
    assert pair.server.client_auth is not None and pair.server.client_auth.subject == "CN=device-9"


# --- ibepsk.asyncio: what an idle connection holds ------------------------------------------------


@pytest.fixture(params=["asyncio", "uvloop"])
def runner(request: pytest.FixtureRequest) -> Iterator[asyncio.Runner]:
    """A runner on asyncio's own event loop, then on uvloop's."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    if request.param == "uvloop":
        loop_factory = pytest.importorskip("uvloop").new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as made:
        yield made


def test_an_idle_asyncio_connection_holds_no_read_in_progress_and_no_keyed_cipher(
    ta: TAMasterKey, identity_key: IdentityKey, runner: asyncio.Runner
) -> None:
    held: list[TLSConnection] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer.get_extra_info("tls"))
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def main() -> None:
        server = await ibepsk.asyncio.start_server(echo, "127.0.0.1", 0, settings=server_settings([identity_key]))
        async with server:
            port = server.sockets[0].getsockname()[1]
            settings = client_settings(ta)
            reader, writer = await ibepsk.asyncio.open_connection(
                "127.0.0.1", port, settings=settings, server_name="localhost"
            )
            for message in (b"first", b"second"):  # the second after both ends were idle
                writer.write(message)
                assert await reader.readexactly(len(message)) == message
                for conn in (writer.get_extra_info("tls"), held[0]):
                    assert_idle(conn, settings)
            writer.close()
            await writer.wait_closed()

    runner.run(asyncio.wait_for(main(), 60))


def assert_idle(conn: TLSConnection, settings: HandshakeSettings) -> None:
    reads = [obj for obj in gc.get_referrers(conn) if isinstance(obj, types.GeneratorType)]
    assert not reads, "a tlslite read generator waiting for the next record"
    held = reachable(conn, (settings, conn.sock.socket))  # not beyond the socket tlslite sees: the event loop's
    assert not [obj for obj in held if isinstance(obj, AESGCM)], "keyed record ciphers"


def _steps_until_waiting(steps: Iterator[Any], sock: Any) -> None:
    """Run tlslite steps, waiting on ``sock`` while they want to read, until they end or raise."""
    for step in steps:
        if step in (0, 1):
            select.select([sock], [sock] if step == 1 else [], [], 5)


def test_a_handshake_that_fails_zeroes_the_ibe_psk_on_both_ends(
    ta: TAMasterKey, identity_key: IdentityKey, pair: Pair
) -> None:
    server = server_settings([identity_key])
    server.ibe_keyring = keyring = RecordingKeyring([identity_key])
    client_steps = pair.client.handshakeClientCert(settings=client_settings(ta), serverName="localhost", async_=True)
    assert next(step for step in client_steps if step == 0) == 0  # the ClientHello is out; now it waits to read
    offered = pair.client._ibe_offer.psk
    assert offered != bytes(len(offered))
    client_steps.close()  # the client gives up mid-handshake (a timeout, a close())
    assert offered == bytes(len(offered)), "the client's IBE-PSK is zeroed"
    pair.sockets[0].close()

    # The server reads the ClientHello, opens the PSK, then finds the peer gone.
    with pytest.raises((TLSAbruptCloseError, OSError)):
        _steps_until_waiting(pair.server.handshakeServerAsync(settings=server), pair.sockets[1])
    assert len(keyring.opened) == 1
    assert keyring.opened[0][1] == bytes(32), "the server's IBE-PSK is zeroed"
    assert pair.server._ibe_opened is None


# --- ibepsk.asyncio: a bulk transfer keys the ciphers again a few times, not once per piece -----------------------

MIB = 1 << 20
CHUNK = 1 << 14
#: Receive buffers this small (the kernel lets them grow to megabytes) make records arrive in pieces: reads wait for
#: the rest of a record again and again.
SMALL_RECEIVE_BUFFER = 65536
#: How often a mebibyte each way may key a connection's ciphers again: each burst of writes and each time the
#: reader catches up at a record boundary may (without the rule, once per piece received and per write: ~100).
FEW_KEYINGS = 8


class CipherKeyings:
    """How often a connection's current record ciphers key their OpenSSL state again after
    ``release_idle_ciphers`` (about 2 µs each: worth it for an idle connection, waste mid-transfer)."""

    def __init__(self, conn: TLSConnection) -> None:
        self.count = 0
        layer = conn._recordLayer
        for cipher in (layer._readState.encContext, layer._writeState.encContext):
            cipher._keyed = self._counting(cipher._keyed)

    def _counting(self, keyed: Callable[[bytes], object]) -> Callable[[bytes], object]:
        def counted(key: bytes) -> object:
            self.count += 1
            return keyed(key)

        return counted


def test_a_mebibyte_each_way_over_asyncio_keys_the_ciphers_a_few_times_then_idles_without_them(
    ta: TAMasterKey, identity_key: IdentityKey, runner: asyncio.Runner
) -> None:
    request = os.urandom(MIB)
    served: list[tuple[TLSConnection, CipherKeyings]] = []

    async def reverse_in_chunks(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = writer.get_extra_info("tls")
        served.append((conn, CipherKeyings(conn)))
        response = (await reader.readexactly(MIB))[::-1]
        for start in range(0, MIB, CHUNK):  # streamed out to a client that is silent meanwhile
            writer.write(response[start : start + CHUNK])
            await writer.drain()
        await reader.read()
        writer.close()

    async def main() -> None:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RECEIVE_BUFFER)  # accepted sockets inherit it
        settings = client_settings(ta)
        async with await ibepsk.asyncio.start_server(
            reverse_in_chunks, sock=listener, settings=server_settings([identity_key])
        ):
            reader, writer = await ibepsk.asyncio.open_connection(
                "127.0.0.1", listener.getsockname()[1], settings=settings, server_name="localhost"
            )
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RECEIVE_BUFFER)
            client = writer.get_extra_info("tls")
            client_keyings = CipherKeyings(client)
            for start in range(0, MIB, CHUNK):
                writer.write(request[start : start + CHUNK])
                await writer.drain()
            assert await reader.readexactly(MIB) == request[::-1]

            ((server, server_keyings),) = served
            keyings = {"client": client_keyings.count, "server": server_keyings.count}
            assert max(keyings.values()) <= FEW_KEYINGS, keyings
            for conn in (client, server):  # and now both wait: without keyed ciphers
                assert_idle(conn, settings)
            writer.close()
            await writer.wait_closed()

    runner.run(asyncio.wait_for(main(), 60))
