"""Server conformance found by a TLS test suite (issue 10, server items 4-6), over real sockets.

4. A ClientHello with early_data that negotiates TLS 1.2, or settings that exclude the 0-RTT suite.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from patch_harness import client_mutating_hello
from test_pha_openssl import SServer, openssl  # noqa: F401 - openssl: the fixture (its path, or a skip)
from tlslite import HandshakeSettings as StockSettings
from tlslite.constants import AlertDescription, CipherSuite, ExtensionType
from tlslite.errors import TLSRemoteAlert
from tlslite.extensions import TLSExtension
from tlslite.messages import ClientHello

from ibepsk import HandshakeMode, HandshakeSettings, IbeKeyring
from ibepsk.client import ClientConfig, connect
from ibepsk.keys import TAMasterKey
from ibepsk.tls.certs import ServerCertificateChecker, TrustAnchors
from ibepsk.tls.early_data import EarlyDataStatus
from ibepsk.tls.replay import MemoryReplayStore

from pki import Issued, issue, make_ca
from tls_support import (
    TIMEOUT,
    exchange,
    running_server,
)

EXTERNAL_PSK = (bytearray(b"device-7"), bytearray(range(32)), "sha256")
UNKNOWN_PSK = (bytearray(b"unknown"), bytearray(32), "sha256")


@pytest.fixture(scope="module")
def ca() -> Issued:
    return make_ca()


@pytest.fixture(scope="module")
def server_cert(ca: Issued) -> Issued:
    return issue(ca, "localhost")


def checked_config(ca: Issued, **fields: Any) -> ClientConfig:
    """An ibepsk client that can authenticate the server by certificate, with ``fields`` set on its settings."""
    settings = HandshakeSettings()
    for name, value in fields.items():
        setattr(settings, name, value)
    config = ClientConfig(settings, server_name="localhost")
    config.checker = ServerCertificateChecker(TrustAnchors([ca.certificate]), "localhost")
    return config


def ibe_config(ta: TAMasterKey, **fields: Any) -> ClientConfig:
    settings = HandshakeSettings()
    settings.ibe_public_params = ta.public
    for name, value in fields.items():
        setattr(settings, name, value)
    return ClientConfig(settings, server_name="localhost")


def early_data_server_settings(ta: TAMasterKey) -> HandshakeSettings:
    settings = HandshakeSettings()
    settings.ibe_keyring = IbeKeyring([ta.extract("localhost")])
    settings.accept_early_data = 1024
    settings.replay_store = MemoryReplayStore(window_seconds=3600)
    return settings


def stock_handshake(address: tuple[str, int], settings: StockSettings, mutate: Callable[[ClientHello], None]) -> Any:
    """A stock tlslite-ng client whose ClientHello ``mutate`` changes on the way out; the caller closes."""
    conn = client_mutating_hello(mutate)(socket.create_connection(address, timeout=TIMEOUT))
    try:
        conn.handshakeClientCert(settings=settings)
    except Exception:
        conn.sock.close()
        raise
    return conn


def without_extensions(*names: str) -> Callable[[ClientHello], None]:
    def mutate(hello: ClientHello) -> None:
        dropped = {getattr(ExtensionType, name) for name in names}
        hello.extensions = [ext for ext in hello.extensions if ext.extType not in dropped]

    return mutate


# --- 4. early data and the suite choice ----------------------------------------------------------


def tls12_hello_with_early_data(hello: ClientHello) -> None:
    """What a TLS 1.3-aware client's hello looks like to a TLS 1.2-only negotiation: 1.3 suites, early_data."""
    hello.cipher_suites.insert(0, CipherSuite.TLS_AES_128_GCM_SHA256)
    hello.extensions.append(TLSExtension(extType=ExtensionType.early_data).create(bytearray()))


def tls12_client_settings() -> StockSettings:
    settings = StockSettings()
    settings.maxVersion = (3, 3)
    return settings


def test_tls12_hello_with_early_data_gets_a_tls12_handshake(ta: TAMasterKey, server_cert: Issued) -> None:
    with running_server(early_data_server_settings(ta), cert=server_cert) as (server, observed):
        conn = stock_handshake(server.address, tls12_client_settings(), tls12_hello_with_early_data)
        try:
            conn.write(b"over TLS 1.2")
            assert conn.read() == b"echo:over TLS 1.2"
            assert conn.version == (3, 3)
            assert conn.session.cipherSuite not in CipherSuite.tls13Suites
        finally:
            conn.close()
    assert observed.connections[0]["mode"] == HandshakeMode.CERTIFICATE


def test_tls12_hello_with_early_data_to_a_psk_only_server_gets_an_alert(ta: TAMasterKey) -> None:
    with running_server(early_data_server_settings(ta)) as (server, _):
        with pytest.raises(TLSRemoteAlert) as raised:
            stock_handshake(server.address, tls12_client_settings(), tls12_hello_with_early_data)
        # No TLS 1.2 suite without a certificate; the client lists FFDHE groups, so RFC 7919's alert.
        assert raised.value.description == AlertDescription.insufficient_security
        assert exchange(server, ibe_config(ta)).mode == HandshakeMode.IBE_PSK


def test_early_data_never_selects_a_suite_the_settings_exclude(ta: TAMasterKey) -> None:
    settings = early_data_server_settings(ta)
    settings.cipherNames = ["chacha20-poly1305", "aes256gcm"]  # no aes128gcm, the 0-RTT suite
    with running_server(settings) as (server, observed):
        conn = connect(*server.address, ibe_config(ta), early_data=b"early")
        try:
            assert conn.read() == b"echo:early"  # rejected early data, sent again after the handshake
            assert conn.getCipherName() == "chacha20-poly1305"
            assert conn.early_data_status == EarlyDataStatus.REJECTED
        finally:
            conn.close()
    assert observed.connections[0]["mode"] == HandshakeMode.IBE_PSK
    assert observed.connections[0]["cipher"] == "chacha20-poly1305"


def test_early_data_still_prefers_its_suite(ta: TAMasterKey) -> None:
    settings = early_data_server_settings(ta)
    settings.cipherNames = ["chacha20-poly1305", "aes128gcm"]  # the server's own preference comes second
    with running_server(settings) as (server, _):
        conn = connect(*server.address, ibe_config(ta), early_data=b"early")
        outcome = conn.getCipherName(), conn.early_data_status
        conn.close()
    assert outcome == ("aes128gcm", EarlyDataStatus.ACCEPTED)
