"""Server conformance found by a TLS test suite (issue 10, server items 4-6), over real sockets.

4. A ClientHello with early_data that negotiates TLS 1.2, or settings that exclude the 0-RTT suite.
5. A ticket or external PSK offered in a key exchange mode the server does not allow (RFC 8446 §4.2.9).
6. No usable PSK, a server certificate, and a ClientHello without what a certificate handshake needs.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from pathlib import Path
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

from pki import Issued
from tls_support import (
    TIMEOUT,
    alert_description,
    capture_client_hello,
    exchange,
    ibe_client_config,
    running_server,
    send_and_read_first_record,
    settings_with,
)

EXTERNAL_PSK = (bytearray(b"device-7"), bytearray(range(32)), "sha256")
UNKNOWN_PSK = (bytearray(b"unknown"), bytearray(32), "sha256")


def checked_config(ca: Issued, **fields: Any) -> ClientConfig:
    """An ibepsk client that can authenticate the server by certificate, with ``fields`` set on its settings."""
    config = ClientConfig(settings_with(**fields), server_name="localhost")
    config.checker = ServerCertificateChecker(TrustAnchors([ca.certificate]), "localhost")
    return config


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
        assert exchange(server, ibe_client_config(ta.public)).mode == HandshakeMode.IBE_PSK


def test_early_data_never_selects_a_suite_the_settings_exclude(ta: TAMasterKey) -> None:
    settings = early_data_server_settings(ta)
    settings.cipherNames = ["chacha20-poly1305", "aes256gcm"]  # no aes128gcm, the 0-RTT suite
    with running_server(settings) as (server, observed):
        conn = connect(*server.address, ibe_client_config(ta.public), early_data=b"early")
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
        conn = connect(*server.address, ibe_client_config(ta.public), early_data=b"early")
        outcome = conn.getCipherName(), conn.early_data_status
        conn.close()
    assert outcome == ("aes128gcm", EarlyDataStatus.ACCEPTED)


# --- 5. a PSK offered in a mode the server does not allow -----------------------------------------


def certificate_and_ticket_server() -> HandshakeSettings:
    settings = HandshakeSettings()  # psk_modes: ["psk_dhe_ke"]
    settings.ticketKeys = [bytearray(32)]
    return settings


def test_ticket_offered_for_psk_ke_only_gets_a_certificate_handshake(ca: Issued, server_cert: Issued) -> None:
    with running_server(certificate_and_ticket_server(), cert=server_cert) as (server, observed):
        first = exchange(server, checked_config(ca))
        assert first.session.tickets, "the server must have issued a ticket"
        second = exchange(server, checked_config(ca, psk_modes=["psk_ke"]), session=first.session)
    assert (second.mode, second.resumed) == (HandshakeMode.CERTIFICATE, False)
    assert observed.connections[1]["mode"] == HandshakeMode.CERTIFICATE


def test_external_psk_offered_for_psk_ke_only_gets_a_certificate_handshake(ca: Issued, server_cert: Issued) -> None:
    settings = HandshakeSettings()
    settings.pskConfigs = [EXTERNAL_PSK]
    with running_server(settings, cert=server_cert) as (server, observed):
        refused = exchange(server, checked_config(ca, pskConfigs=[EXTERNAL_PSK], psk_modes=["psk_ke"]))
        allowed = exchange(server, checked_config(ca, pskConfigs=[EXTERNAL_PSK]))
    assert refused.mode == HandshakeMode.CERTIFICATE
    assert observed.connections[0]["mode"] == HandshakeMode.CERTIFICATE
    assert allowed.mode == HandshakeMode.EXTERNAL_PSK, "the same PSK in an allowed mode is used"


def test_ibe_psk_offered_for_psk_ke_only_gets_a_certificate_handshake(
    ta: TAMasterKey, ca: Issued, server_cert: Issued
) -> None:
    settings = HandshakeSettings()
    settings.ibe_keyring = IbeKeyring([ta.extract("localhost")])
    config = ibe_client_config(ta.public, psk_modes=["psk_ke"])
    config.checker = ServerCertificateChecker(TrustAnchors([ca.certificate]), "localhost")
    with running_server(settings, cert=server_cert) as (server, _):
        assert exchange(server, config).mode == HandshakeMode.CERTIFICATE
    assert settings.ibe_keyring is not None and settings.ibe_keyring.decapsulations == 0


def test_psk_ke_only_to_a_server_without_certificate_gets_handshake_failure(ca: Issued) -> None:
    settings = HandshakeSettings()
    settings.pskConfigs = [EXTERNAL_PSK]
    with running_server(settings) as (server, _):
        with pytest.raises(TLSRemoteAlert) as raised:
            exchange(server, checked_config(ca, pskConfigs=[EXTERNAL_PSK], psk_modes=["psk_ke"]))
    assert raised.value.description == AlertDescription.handshake_failure


# --- 6. no usable PSK, and a ClientHello a certificate handshake cannot answer --------------------


def test_unopened_ibe_psk_without_signature_algorithms_gets_missing_extension(
    ta: TAMasterKey, server_cert: Issued, caplog: pytest.LogCaptureFixture
) -> None:
    settings = HandshakeSettings()
    settings.ibe_keyring = IbeKeyring([ta.extract("localhost")])
    # Encapsulated to another TA's "localhost": it does not open. Lean, like TiigerTLS's: no signature_algorithms.
    stranger = capture_client_hello(ibe_client_config(TAMasterKey.generate().public).settings, "localhost")
    assert stranger.hello.getExtension(ExtensionType.signature_algorithms) is None
    with (
        caplog.at_level(logging.INFO, logger="ibepsk.server"),
        running_server(settings, cert=server_cert) as (server, _),
    ):
        record = send_and_read_first_record(server.address, stranger.resign())
        assert alert_description(record) == AlertDescription.missing_extension
        assert exchange(server, ibe_client_config(ta.public)).mode == HandshakeMode.IBE_PSK
    failures = [r for r in caplog.records if "handshake failed" in r.getMessage()]
    assert len(failures) == 1 and not failures[0].exc_info
    assert "missing_extension" in failures[0].getMessage() and "signature_algorithms" in failures[0].getMessage()


def test_lean_ibe_hello_to_a_certificate_only_server_gets_what_openssl_sends(
    openssl: str,  # noqa: F811 - the fixture imported above
    ta: TAMasterKey,
    ca: Issued,
    server_cert: Issued,
    tmp_path: Path,
) -> None:
    lean = capture_client_hello(ibe_client_config(ta.public).settings, "localhost").resign()
    s_server = SServer(openssl, ca, tmp_path)
    try:
        theirs = send_and_read_first_record(("127.0.0.1", s_server.port), lean)
    finally:
        s_server.stop()
    with running_server(HandshakeSettings(), cert=server_cert) as (server, _):
        ours = send_and_read_first_record(server.address, lean)
    assert alert_description(ours) == alert_description(theirs) == AlertDescription.missing_extension


@pytest.mark.parametrize(
    ("modes", "psk", "dropped"),
    [
        pytest.param(
            ["psk_dhe_ke", "psk_ke"],
            UNKNOWN_PSK,
            ("signature_algorithms", "signature_algorithms_cert"),
            id="unknown-psk",
        ),
        # a known PSK, but for psk_ke only, which the server does not allow: no key share for a certificate handshake
        pytest.param(["psk_ke"], EXTERNAL_PSK, ("key_share",), id="psk-ke-without-key-share"),
    ],
)
def test_no_usable_psk_and_no_certificate_handshake_gets_missing_extension(
    server_cert: Issued, modes: list[str], psk: tuple[bytearray, bytearray, str], dropped: tuple[str, ...]
) -> None:
    settings = HandshakeSettings()
    settings.pskConfigs = [EXTERNAL_PSK]
    client = StockSettings()
    client.pskConfigs, client.psk_modes = [psk], modes
    with running_server(settings, cert=server_cert) as (server, _):
        with pytest.raises(TLSRemoteAlert) as raised:
            stock_handshake(server.address, client, without_extensions(*dropped))
    assert raised.value.description == AlertDescription.missing_extension
