"""The handshake's CPU savings change no byte and no decision: the key schedule on one-shot HMACs gives
tlslite-ng's results, tlslite-ng's Python HMAC chain is no longer run, a ticket is opened once per handshake,
hook arguments are bound as Python binds them, the extension fix keeps every byte, and a resumption brings one
new ticket."""

from __future__ import annotations

import inspect
import os
import random
import socket
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from tlslite import HandshakeSettings as StockSettings
from tlslite import TLSConnection as StockConnection
from tlslite.extensions import CustomNameExtension
from tlslite.handshakehashes import HandshakeHashes
from tlslite.handshakehelpers import HandshakeHelpers
from tlslite.messages import ClientHello, NewSessionTicket
from tlslite.utils import cryptomath
from tlslite.utils.codec import Parser

from ibepsk import HandshakeMode, HandshakeSettings, IbeKeyring, TLSConnection
from ibepsk.bench_tls import run_pair
from ibepsk.keys import TAMasterKey
from ibepsk.pki import Issued
from ibepsk.tls import seam
from ibepsk.tls._crypto.kdf import secure_hmac, tlslite_derive_secret, tlslite_hkdf_expand_label
from ibepsk.tls.accel import KeyScheduleHandshakeHelpers, tlslite_as_shipped

from patch_support import run_python
from tls_support import capture_client_hello, exchange, ibe_client_config, running_server

ALGORITHMS = ["sha256", "sha384"]


def _random_bytes(rng: random.Random, size: int) -> bytearray:
    return bytearray(rng.getrandbits(8) for _ in range(size))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_key_schedule_functions_give_tlslite_results(algorithm: str) -> None:
    rng = random.Random(algorithm)
    for _ in range(50):
        secret, data = _random_bytes(rng, rng.choice([0, 32, 48, 64, 200])), _random_bytes(rng, rng.randrange(200))
        label, length = bytes(_random_bytes(rng, rng.randrange(1, 40))), rng.choice([0, 12, 16, 32, 48, 100])
        assert secure_hmac(secret, data, algorithm) == cryptomath.secureHMAC(secret, data, algorithm)
        ours = tlslite_hkdf_expand_label(secret, label, data[:255], length, algorithm)
        assert ours == cryptomath.HKDF_expand_label(secret, label, data[:255], length, algorithm)
        assert isinstance(ours, bytearray)
        assert tlslite_derive_secret(secret, label, None, algorithm) == cryptomath.derive_secret(
            secret, label, None, algorithm
        )
        transcript = HandshakeHashes()
        transcript.update(data)
        ours = tlslite_derive_secret(secret, label, transcript, algorithm)
        assert ours == cryptomath.derive_secret(secret, label, transcript, algorithm)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("external", [True, False])
def test_binders_and_resumption_psks_are_tlslite_ones(algorithm: str, external: bool) -> None:
    psk, transcript = bytearray(os.urandom(48)), HandshakeHashes()
    transcript.update(os.urandom(300))
    ours = KeyScheduleHandshakeHelpers._calc_binder(algorithm, psk, transcript, external)
    assert ours == HandshakeHelpers._calc_binder(algorithm, psk, transcript, external)
    ticket = NewSessionTicket()
    ticket.ticket, ticket.ticket_nonce = bytearray(os.urandom(64)), bytearray(os.urandom(8))
    identity = SimpleNamespace(identity=ticket.ticket)
    assert KeyScheduleHandshakeHelpers.calc_res_binder_psk(identity, psk, [ticket]) == (
        HandshakeHelpers.calc_res_binder_psk(identity, psk, [ticket])
    )


@pytest.fixture()
def no_tlslite_hmac(monkeypatch: pytest.MonkeyPatch) -> None:
    """tlslite-ng's own HMAC (under secureHMAC, HKDF_expand_label and derive_secret) refuses to run."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("tlslite-ng's Python HMAC chain was used")

    monkeypatch.setattr(cryptomath, "hmac", SimpleNamespace(new=refuse))


def _certificate_then_resumption(kind: type[Any], issued: Issued, settings: Any = None) -> list[tuple[bool, int]]:
    """A certificate handshake, then a resumption with its ticket (both sides ``kind``; the server with
    ``settings``, by default its library's with a ticket key): whether each resumed, and the new tickets it brought."""
    if settings is None:
        settings = StockSettings() if kind is StockConnection else HandshakeSettings()
        settings.ticketKeys = [bytearray(32)]
    chain, key = issued.tlslite_chain(), issued.tlslite_key()
    sessions: list[Any] = []
    outcomes: list[tuple[bool, int]] = []

    def client(sock: socket.socket) -> None:
        conn = kind(sock)
        conn.handshakeClientCert(serverName="localhost", session=sessions[0] if sessions else None)
        conn.write(b"x")
        conn.read()  # the tickets arrive before the echo
        sessions[:] = [conn.session]
        outcomes.append((bool(conn.resumed), len(conn.tickets)))

    def server(sock: socket.socket) -> None:
        conn = kind(sock)
        conn.handshakeServer(settings=settings, certChain=chain, privateKey=key)
        conn.write(conn.read())

    run_pair(client, server)
    run_pair(client, server)
    return outcomes


def _resumes(kind: type[Any], issued: Issued) -> bool:
    return [resumed for resumed, _tickets in _certificate_then_resumption(kind, issued)] == [False, True]


@pytest.mark.usefixtures("no_tlslite_hmac")
def test_handshakes_and_tickets_skip_tlslite_hmac_chain(server_cert: Issued, ta: TAMasterKey) -> None:
    assert _resumes(TLSConnection, server_cert)
    settings = HandshakeSettings()
    settings.ibe_keyring, settings.ticketKeys = IbeKeyring([ta.extract("localhost")]), [bytearray(32)]
    with running_server(settings) as (server, _observed):
        first = exchange(server, ibe_client_config(ta.public))
        second = exchange(server, ibe_client_config(ta.public), session=first.session)
    assert (first.mode, second.mode) == (HandshakeMode.IBE_PSK, HandshakeMode.RESUMPTION)
    with pytest.raises(AssertionError, match="HMAC chain"):  # what the fixture stops: stock tlslite-ng's schedule
        _resumes(StockConnection, server_cert)


def test_a_ticket_is_opened_once_per_server_handshake(ta: TAMasterKey, monkeypatch: pytest.MonkeyPatch) -> None:
    """An IBE-PSK server looks the ticket up before tlslite-ng does (to know whether it spares a pairing)."""
    openings: list[bytes] = []
    stock_open = seam._ON_CRYPTOGRAPHY["_tryDecrypt"]

    def counting_open(conn: Any, settings: Any, identity: Any = None, ticket: Any = None) -> Any:
        openings.append(bytes(identity.identity))
        return stock_open(conn, settings, identity, ticket)

    monkeypatch.setitem(seam._ON_CRYPTOGRAPHY, "_tryDecrypt", counting_open)
    settings = HandshakeSettings()
    settings.ibe_keyring, settings.ticketKeys = IbeKeyring([ta.extract("localhost")]), [bytearray(32)]
    with running_server(settings) as (server, _observed):
        first = exchange(server, ibe_client_config(ta.public))
        assert openings == []
        second = exchange(server, ibe_client_config(ta.public), session=first.session)
        third = exchange(server, ibe_client_config(ta.public), session=first.session)
    assert second.mode == third.mode == HandshakeMode.RESUMPTION
    newest = max(first.session.tickets, key=lambda ticket: ticket.time).ticket
    assert openings == [bytes(newest)] * 2  # one per resumption: the cache lives for one handshake


def _signature_binder(function: Callable[..., Any]) -> Callable[..., dict[str, Any]]:
    signature = inspect.signature(function)

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = signature.bind(None, *args, **kwargs)
        bound.apply_defaults()
        return dict(list(bound.arguments.items())[1:])

    return bind


@pytest.mark.parametrize("method", ["_serverTLS13Handshake", "_create_cert_msg", "handshakeServerAsync"])
def test_hook_arguments_bind_as_python_binds_them(method: str) -> None:
    parameters = seam.Parameters(inspect.signature(getattr(StockConnection, method)))
    reference = _signature_binder(getattr(StockConnection, method))
    names, required = parameters.names, [name for name in parameters.names if name not in parameters.defaults]
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        (tuple(range(len(required))), {}),
        ((), {name: name for name in required}),
        (tuple(range(len(names))), {}),
        ((0,), {name: name for name in names[1:]}),
    ]
    for args, kwargs in calls:
        assert parameters.bind(args, kwargs) == reference(args, kwargs)
        assert list(parameters.bind(args, kwargs)) == list(names)
    wrong: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        (tuple(range(len(names) + 1)), {}),
        ((0,), {names[0]: 0}),
        ((), {"no_such_argument": 1}),
    ]
    if required:
        wrong.append(((), {}))
    for args, kwargs in wrong:
        with pytest.raises(TypeError):
            reference(args, kwargs)
        with pytest.raises(TypeError):
            parameters.bind(args, kwargs)


def test_ibepsk_connections_set_extension_fields_without_failed_lookups(
    server_cert: Issued, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once an ibepsk connection exists, tlslite-ng's CustomNameExtension no longer raises an AttributeError inside
    hasattr() for each field it sets (patches/0018); the same ClientHello comes out, handshakes of ibepsk and of
    stock tlslite-ng still work, and tlslite_as_shipped() gives a baseline stock tlslite-ng back."""
    raw = capture_client_hello(HandshakeSettings(), "localhost").hello.write()  # an ibepsk connection made it
    failed_lookups: list[str] = []
    stock_getattr = CustomNameExtension.__getattr__

    def counting_getattr(extension: Any, name: str) -> Any:
        try:
            return stock_getattr(extension, name)
        except AttributeError:
            failed_lookups.append(name)
            raise

    monkeypatch.setattr(CustomNameExtension, "__getattr__", counting_getattr)
    assert ClientHello().parse(Parser(raw[1:])).write() == raw
    assert failed_lookups == []
    with tlslite_as_shipped(), socket.socket() as unused:
        TLSConnection(unused)  # a connection made meanwhile leaves tlslite-ng as shipped
        assert ClientHello().parse(Parser(raw[1:])).write() == raw
        assert failed_lookups, "stock tlslite-ng looks _field_name up through __getattr__"
    failed_lookups.clear()
    ClientHello().parse(Parser(raw[1:]))
    assert failed_lookups == []
    assert _resumes(TLSConnection, server_cert)
    assert _resumes(StockConnection, server_cert)


def test_opting_in_and_out_keeps_the_extension_fix_of_ibepsk_connections() -> None:
    """In a fresh process: the opt-in sets extension fields fast and restore_tlslite() undoes that, until the
    process has an ibepsk connection; from then on they stay fast, in whichever order the calls come."""
    result = run_python(
        """
        import socket
        from tlslite.extensions import CustomNameExtension
        import ibepsk

        stock = CustomNameExtension.__setattr__
        fast = []
        ibepsk.accelerate_tlslite()
        fast.append(CustomNameExtension.__setattr__ is not stock)
        ibepsk.restore_tlslite()
        fast.append(CustomNameExtension.__setattr__ is not stock)
        ibepsk.accelerate_tlslite()
        with socket.socket() as unused:
            ibepsk.TLSConnection(unused)
        ibepsk.restore_tlslite()
        fast.append(CustomNameExtension.__setattr__ is not stock)
        ibepsk.accelerate_tlslite()
        ibepsk.restore_tlslite()
        fast.append(CustomNameExtension.__setattr__ is not stock)
        print(fast)
        """
    )
    assert result.stdout.split("\n")[0] == "[True, False, True, True]", result.stderr


@pytest.mark.parametrize(("setting", "after_resumption"), [(None, 1), (0, 0), (2, 2), (5, 2)])
def test_a_resumption_brings_resumption_ticket_count_new_tickets(
    server_cert: Issued, setting: int | None, after_resumption: int
) -> None:
    """OpenSSL's default, one ticket after a resumption (the client already had one), saves the server a ticket's
    derivation and sealing; tlslite-ng's ticket_count (2) still applies after full handshakes and caps the count."""
    settings = HandshakeSettings()
    settings.ticketKeys = [bytearray(32)]
    if setting is not None:
        settings.resumption_ticket_count = setting
    assert _certificate_then_resumption(TLSConnection, server_cert, settings) == [(False, 2), (True, after_resumption)]


@pytest.mark.parametrize("value", [-1, 1.5, "1"])
def test_resumption_ticket_count_must_be_a_count(value: Any) -> None:
    settings = HandshakeSettings()
    settings.resumption_ticket_count = value
    with pytest.raises(ValueError, match="resumption_ticket_count"):
        settings.validate()
