"""``ibepsk.asyncio``: real TLS handshakes over loopback, both ends driven by an event loop (no threads)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from tlslite.constants import AlertDescription
from tlslite.errors import TLSLocalAlert, TLSRemoteAlert

import ibepsk.asyncio
from ibepsk import HandshakeMode, HandshakeSettings, KeySigner, TrustAnchors
from ibepsk.client import ClientConfig, connect
from ibepsk.endpoints import server_settings
from ibepsk.keys import IdentityKey, TAMasterKey
from ibepsk.tls import ClientAuthMethod
from ibepsk.tls.early_data import EarlyDataStatus

from pki import Issued, issue, make_ca
from tls_support import TIMEOUT, read_record

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture(scope="module")
def identity_key(ta: TAMasterKey) -> IdentityKey:
    return ta.extract("localhost")


@pytest.fixture(scope="module")
def device_ca() -> Issued:
    return make_ca()


def client_settings(ta: TAMasterKey, signer: KeySigner | None = None) -> HandshakeSettings:
    settings = HandshakeSettings()
    settings.ibe_public_params = ta.public
    settings.ibe_identity = "localhost"
    settings.client_auth_signer = signer
    return settings


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(4096):
        writer.write(b"echo:" + data)
        await writer.drain()
    writer.close()


#: The event loop :func:`run` runs on, set per test by ``event_loop_kind``.
_loop_factory: list[Callable[[], asyncio.AbstractEventLoop]] = [asyncio.new_event_loop]


@pytest.fixture(autouse=True, params=["asyncio", "uvloop"])
def event_loop_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test on asyncio's own event loop and on uvloop (which ``ibepsk serve`` uses when installed)."""
    if request.param == "uvloop":
        _loop_factory[0] = pytest.importorskip("uvloop").new_event_loop
    yield request.param
    _loop_factory[0] = asyncio.new_event_loop


def run(main: Awaitable[Any]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(main, 60)

    with asyncio.Runner(loop_factory=_loop_factory[0]) as runner:
        return runner.run(bounded())


async def serving(settings: HandshakeSettings, handler: Handler = echo, **options: Any) -> tuple[asyncio.Server, int]:
    server = await ibepsk.asyncio.start_server(handler, "127.0.0.1", 0, settings=settings, **options)
    return server, server.sockets[0].getsockname()[1]


async def ask(port: int, settings: HandshakeSettings, message: bytes = b"ping", **options: Any) -> Any:
    """Connect, send ``message``, check the echo, close cleanly; the client's TLS connection."""
    reader, writer = await ibepsk.asyncio.open_connection(
        "127.0.0.1", port, settings=settings, server_name="localhost", **options
    )
    writer.write(message)
    assert await reader.readexactly(len(message) + 5) == b"echo:" + message
    conn = writer.get_extra_info("tls")
    writer.close()
    await writer.wait_closed()
    return conn


def test_ibe_psk_handshake_and_echo(ta: TAMasterKey, identity_key: IdentityKey) -> None:
    async def main() -> None:
        server, port = await serving(server_settings([identity_key]))
        async with server:
            conn = await ask(port, client_settings(ta))
        assert conn.handshake_mode == HandshakeMode.IBE_PSK
        assert conn.ibe_identity == "localhost"

    run(main())


def test_resumption_with_the_session_of_a_first_connection(ta: TAMasterKey, identity_key: IdentityKey) -> None:
    async def main() -> None:
        server, port = await serving(server_settings([identity_key]))
        async with server:
            first = await ask(port, client_settings(ta))
            second = await ask(port, client_settings(ta), session=first.session)
        assert first.handshake_mode == HandshakeMode.IBE_PSK
        assert second.handshake_mode == HandshakeMode.RESUMPTION

    run(main())


def test_early_data_is_accepted_and_answered(ta: TAMasterKey, identity_key: IdentityKey) -> None:
    settings = server_settings([identity_key], accept_early_data=1024)
    settings.early_data_handler = lambda conn, data: b"0.5rtt:" + data

    async def main() -> None:
        server, port = await serving(settings)
        async with server:
            reader, writer = await ibepsk.asyncio.open_connection(
                "127.0.0.1", port, settings=client_settings(ta), server_name="localhost", early_data=b"hello"
            )
            assert await reader.readexactly(12) == b"0.5rtt:hello"
            assert writer.get_extra_info("tls").early_data_status == EarlyDataStatus.ACCEPTED
            writer.close()
            await writer.wait_closed()

    run(main())


def test_post_handshake_auth(ta: TAMasterKey, identity_key: IdentityKey, device_ca: Issued) -> None:
    device = issue(device_ca, "device-7", server=False)
    settings = server_settings([identity_key])
    settings.client_auth_anchors = TrustAnchors([device_ca.certificate])
    answers: list[Any] = []

    async def authenticate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answers.append(await ibepsk.asyncio.request_client_auth(writer))
        await echo(reader, writer)

    async def main() -> None:
        server, port = await serving(settings, authenticate)
        async with server:
            await ask(port, client_settings(ta, KeySigner([device.certificate], device.key)))

    run(main())
    assert answers[0].subject == "CN=device-7"
    assert answers[0].method == ClientAuthMethod.POST_HANDSHAKE


def test_a_client_certificate_from_another_ca_is_refused_with_an_alert(
    ta: TAMasterKey, identity_key: IdentityKey, device_ca: Issued
) -> None:
    stranger = issue(make_ca(), "stranger", server=False)
    settings = server_settings([identity_key])
    settings.client_auth_anchors = TrustAnchors([device_ca.certificate])
    refused: list[BaseException] = []

    async def authenticate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await ibepsk.asyncio.request_client_auth(writer)
        except TLSLocalAlert as exc:
            refused.append(exc)

    async def main() -> int:
        server, port = await serving(settings, authenticate)
        async with server:
            signer = KeySigner([stranger.certificate], stranger.key)
            reader, _ = await ibepsk.asyncio.open_connection(
                "127.0.0.1", port, settings=client_settings(ta, signer), server_name="localhost"
            )
            with pytest.raises(TLSRemoteAlert) as alert:
                await reader.read()
            return alert.value.description

    assert run(main()) == refused[0].description == AlertDescription.unknown_ca


def test_many_concurrent_connections(ta: TAMasterKey, identity_key: IdentityKey) -> None:
    async def main() -> list[Any]:
        server, port = await serving(server_settings([identity_key]))
        async with server:
            first = await ask(port, client_settings(ta))
            return await asyncio.gather(
                *(ask(port, client_settings(ta), f"n{i}".encode(), session=first.session) for i in range(100))
            )

    threads_before = threading.active_count()
    connections = run(main())
    assert {conn.handshake_mode for conn in connections} == {HandshakeMode.RESUMPTION}
    assert threading.active_count() == threads_before  # the event loop served them all itself


def test_a_silent_client_is_cut_off_and_the_server_keeps_serving(ta: TAMasterKey, identity_key: IdentityKey) -> None:
    async def main() -> None:
        server, port = await serving(server_settings([identity_key]), handshake_timeout=0.5)
        async with server:
            silent_reader, silent_writer = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(silent_reader.read(), TIMEOUT) == b""  # closed by the server
            silent_writer.close()
            await ask(port, client_settings(ta))

    run(main())


def test_bad_input_gets_an_alert_and_the_server_keeps_serving(ta: TAMasterKey, identity_key: IdentityKey) -> None:
    async def main() -> None:
        server, port = await serving(server_settings([identity_key]))
        async with server:
            record = await asyncio.to_thread(_send_garbage, port)
            assert record[0] == 21  # an alert record
            await ask(port, client_settings(ta))

    run(main())


def _send_garbage(port: int) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"\x16\x03\x01\x00\x04\x01\x00\x00\x00")  # an empty ClientHello
        return read_record(sock)


def test_a_blocking_client_talks_to_the_asyncio_server(ta: TAMasterKey, identity_key: IdentityKey) -> None:
    async def main() -> None:
        server, port = await serving(server_settings([identity_key]))
        async with server:
            reply = await asyncio.to_thread(_blocking_exchange, ta, port)
        assert reply == b"echo:blocking"

    run(main())


def _blocking_exchange(ta: TAMasterKey, port: int) -> bytes:
    conn = connect("127.0.0.1", port, ClientConfig(client_settings(ta), server_name="localhost"))
    try:
        conn.write(b"blocking")
        return bytes(conn.read())
    finally:
        conn.close()
