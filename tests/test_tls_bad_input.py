"""Hostile ClientHellos against a running IBE-PSK server: the RFC's alert, then business as usual."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator

import pytest
from tlslite.constants import AlertDescription
from tlslite.extensions import PreSharedKeyExtension
from tlslite.messages import PskIdentity

from ibepsk import HandshakeSettings, IbeKeyring
from ibepsk.client import ClientConfig
from ibepsk.keys import TAMasterKey
from ibepsk.server import TLSServer

from tls_support import (
    CapturedHello,
    alert_description,
    capture_client_hello,
    exchange,
    parse_server_hello,
    psk_extension,
    running_server,
    send_and_read_first_record,
)


@pytest.fixture(scope="module")
def server(ta: TAMasterKey) -> Iterator[TLSServer]:
    settings = HandshakeSettings()
    settings.ibe_keyring = IbeKeyring([ta.extract("localhost")])
    with running_server(settings) as (running, _):
        yield running


def client_settings(ta: TAMasterKey) -> HandshakeSettings:
    settings = HandshakeSettings()
    settings.ibe_public_params = ta.public
    return settings


@pytest.fixture()
def hello(ta: TAMasterKey) -> CapturedHello:
    return capture_client_hello(client_settings(ta), "localhost")


def decapsulations(server: TLSServer) -> int:
    keyring = server.config.settings.ibe_keyring
    assert keyring is not None
    return keyring.decapsulations


def assert_good_client_still_served(server: TLSServer, ta: TAMasterKey) -> None:
    result = exchange(server, ClientConfig(client_settings(ta), server_name="localhost"))
    assert result.mode == "ibe-psk"


def flip_identity_byte(index: int) -> Callable[[CapturedHello], bytes]:
    def mutate(captured: CapturedHello) -> bytes:
        identity = psk_extension(captured.hello).identities[0]
        identity.identity[index] ^= 0x01
        captured.psk_configs[0] = (identity.identity, *captured.psk_configs[0][1:])
        return captured.resign()

    return mutate


def set_marker(age: int) -> Callable[[CapturedHello], bytes]:
    def mutate(captured: CapturedHello) -> bytes:
        psk_extension(captured.hello).identities[0].obfuscated_ticket_age = age
        return captured.resign()

    return mutate


def truncate_identity(captured: CapturedHello) -> bytes:
    identity = psk_extension(captured.hello).identities[0]
    identity.identity = identity.identity[:-1]
    captured.psk_configs[0] = (identity.identity, *captured.psk_configs[0][1:])
    return captured.resign()


def wrong_binder(captured: CapturedHello) -> bytes:
    captured.resign()
    psk_extension(captured.hello).binders[0][0] ^= 0x80
    return captured.unsigned()


def wrong_psk_in_binder(captured: CapturedHello) -> bytes:
    captured.psk_configs[0] = (captured.psk_configs[0][0], bytearray(os.urandom(32)), "sha256")
    return captured.resign()


@pytest.mark.parametrize(
    ("mutate", "expected_alert", "pairings"),
    [
        pytest.param(flip_identity_byte(10), AlertDescription.decrypt_error, 1, id="garbled-U"),
        pytest.param(flip_identity_byte(120), AlertDescription.decrypt_error, 1, id="garbled-V"),
        pytest.param(flip_identity_byte(160), AlertDescription.decrypt_error, 1, id="garbled-W"),
        pytest.param(truncate_identity, AlertDescription.unknown_psk_identity, 0, id="truncated-identity"),
        pytest.param(set_marker(0), AlertDescription.unknown_psk_identity, 0, id="marker-0"),
        pytest.param(set_marker(2), AlertDescription.unknown_psk_identity, 0, id="lattice-marker"),
        pytest.param(wrong_binder, AlertDescription.decrypt_error, 1, id="flipped-binder"),
        pytest.param(wrong_psk_in_binder, AlertDescription.decrypt_error, 1, id="binder-over-other-psk"),
    ],
)
def test_bad_identity_or_binder(
    server: TLSServer,
    ta: TAMasterKey,
    hello: CapturedHello,
    mutate: Callable[[CapturedHello], bytes],
    expected_alert: int,
    pairings: int,
) -> None:
    before = decapsulations(server)
    record = send_and_read_first_record(server.address, mutate(hello))
    assert alert_description(record) == expected_alert
    assert decapsulations(server) - before == pairings
    assert_good_client_still_served(server, ta)


def test_ciphertext_for_another_ta(server: TLSServer, ta: TAMasterKey) -> None:
    stranger = capture_client_hello(client_settings(TAMasterKey.generate()), "localhost")
    assert alert_description(send_and_read_first_record(server.address, stranger.resign())) == (
        AlertDescription.decrypt_error
    )
    assert_good_client_still_served(server, ta)


def test_ciphertext_for_another_identity(server: TLSServer, ta: TAMasterKey) -> None:
    settings = client_settings(ta)
    settings.ibe_identity = "not-localhost"
    wrong = capture_client_hello(settings, "localhost")
    assert alert_description(send_and_read_first_record(server.address, wrong.resign())) == (
        AlertDescription.decrypt_error
    )


def _flood(captured: CapturedHello, count: int, *, valid_last: bool) -> None:
    """Put ``count`` identities in the ClientHello: junk (with or without the marker), then maybe the real one."""
    extension = psk_extension(captured.hello)
    real_identity, real_binder = extension.identities[0], extension.binders[0]
    junk_age = 0 if valid_last else 1
    junk = [PskIdentity().create(bytearray(os.urandom(161)), junk_age) for _ in range(count - 1)]
    extension.identities = [*junk, real_identity] if valid_last else [real_identity, *junk]
    extension.binders = [bytearray(32) for _ in junk] + [real_binder]
    configs = [(j.identity, bytearray(32), "sha256") for j in junk]
    captured.psk_configs = [*configs, *captured.psk_configs] if valid_last else [*captured.psk_configs, *configs]


def test_flood_of_marked_identities_costs_one_pairing(server: TLSServer, ta: TAMasterKey, hello: CapturedHello) -> None:
    psk_extension(hello.hello).identities[0].identity[5] ^= 0xFF  # the first marked identity is junk too
    hello.psk_configs[0] = (psk_extension(hello.hello).identities[0].identity, *hello.psk_configs[0][1:])
    _flood(hello, 100, valid_last=False)
    before = decapsulations(server)
    assert alert_description(send_and_read_first_record(server.address, hello.resign())) == (
        AlertDescription.decrypt_error
    )
    assert decapsulations(server) - before == 1
    assert_good_client_still_served(server, ta)


def test_real_identity_behind_99_unmarked_ones_is_selected(server: TLSServer, hello: CapturedHello) -> None:
    _flood(hello, 100, valid_last=True)
    before = decapsulations(server)
    server_hello = parse_server_hello(send_and_read_first_record(server.address, hello.resign()))
    assert server_hello.getExtension(41).selected == 99
    assert decapsulations(server) - before == 1


def _psk_extension_length_offset(captured: CapturedHello, record: bytes) -> int:
    """Offset of the pre_shared_key extension's 2-byte length field inside a ClientHello record.

    The extension is the last one (RFC 8446 §4.2.11), so it is found from the end by its encoded
    size; searching for its type bytes could match random bytes of the ciphertext or binder.
    """
    encoded = bytes(psk_extension(captured.hello).write())
    offset = len(record) - len(encoded)
    assert record[offset:] == encoded and encoded[:2] == struct.pack(">H", 41)
    return offset + 2


@pytest.mark.parametrize("delta", [-1, 1, 200])
def test_malformed_extension_length(server: TLSServer, ta: TAMasterKey, hello: CapturedHello, delta: int) -> None:
    record = bytearray(hello.resign())
    at = _psk_extension_length_offset(hello, bytes(record))
    (length,) = struct.unpack(">H", record[at : at + 2])
    record[at : at + 2] = struct.pack(">H", length + delta)
    assert alert_description(send_and_read_first_record(server.address, bytes(record))) == (
        AlertDescription.decode_error
    )
    assert_good_client_still_served(server, ta)


def test_empty_identity_list(server: TLSServer, ta: TAMasterKey, hello: CapturedHello) -> None:
    extension = psk_extension(hello.hello)
    extension.identities, extension.binders = [], []
    description = alert_description(send_and_read_first_record(server.address, hello.unsigned()))
    assert description in (AlertDescription.decode_error, AlertDescription.illegal_parameter)
    assert_good_client_still_served(server, ta)


def _empty_identity(extension: PreSharedKeyExtension) -> None:
    extension.identities[0].identity = bytearray()


def _empty_binder(extension: PreSharedKeyExtension) -> None:
    extension.binders[0] = bytearray()


@pytest.mark.parametrize("empty", [_empty_identity, _empty_binder])
def test_empty_identity_or_binder_is_a_decode_error(
    server: TLSServer, ta: TAMasterKey, hello: CapturedHello, empty: Callable[[PreSharedKeyExtension], None]
) -> None:
    # RFC 8446 §4.2.11: identity<1..2^16-1>, PskBinderEntry<32..255>; stock tlslite-ng dies here (patches/0010).
    empty(psk_extension(hello.hello))
    description = alert_description(send_and_read_first_record(server.address, hello.unsigned()))
    assert description == AlertDescription.decode_error
    assert_good_client_still_served(server, ta)


def test_external_psk_binder_that_does_not_verify_is_a_decrypt_error(ta: TAMasterKey) -> None:
    # RFC 8446 §6.2; tlslite-ng itself says illegal_parameter (patches/0012).
    psk_config = (bytearray(b"sensor-7"), bytearray(os.urandom(32)), "sha256")
    settings = HandshakeSettings()
    settings.ibe_keyring = IbeKeyring([ta.extract("localhost")])
    settings.pskConfigs = [psk_config]
    client = HandshakeSettings()
    client.pskConfigs = [psk_config]
    captured = capture_client_hello(client, "localhost")
    psk_extension(captured.hello).binders[0][0] ^= 1
    with running_server(settings) as (running, _):
        description = alert_description(send_and_read_first_record(running.address, captured.unsigned()))
        assert description == AlertDescription.decrypt_error
        assert exchange(running, ClientConfig(client, server_name="localhost")).mode == "external-psk"


def test_garbage_instead_of_hello(server: TLSServer, ta: TAMasterKey) -> None:
    # A complete handshake record holding a 5-byte "ClientHello" that says "hello".
    record = send_and_read_first_record(server.address, b"\x16\x03\x01\x00\x09\x01\x00\x00\x05hello")
    assert alert_description(record) == AlertDescription.decode_error
    assert_good_client_still_served(server, ta)
