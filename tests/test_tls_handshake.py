"""IBE-PSK handshakes between ibepsk clients and servers over real sockets."""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import pytest
from tlslite.constants import AlertDescription, CipherSuite, ExtensionType, GroupName
from tlslite.errors import TLSLocalAlert, TLSRemoteAlert

from ibepsk import HandshakeMode, HandshakeSettings, IbeKeyring
from ibepsk.client import ClientConfig, connect
from ibepsk.keys import IdentityKey, TAMasterKey, TAPublicParams
from ibepsk.tls.certs import ServerCertificateChecker, TrustAnchors
from ibepsk.tls.connection import offered_psk_hashes

from pki import issue, make_ca
from tls_support import (
    capture_client_hello,
    exchange,
    ibe_client_config,
    parse_server_hello,
    running_server,
    send_and_read_first_record,
)


def server_settings(*keys: IdentityKey, psk_ke: bool = False, tickets: bool = False) -> HandshakeSettings:
    settings = HandshakeSettings()
    settings.ibe_keyring = IbeKeyring(keys)
    if psk_ke:
        settings.psk_modes = ["psk_dhe_ke", "psk_ke"]
    if tickets:
        settings.ticketKeys = [bytearray(32)]
    return settings


def test_psk_dhe_ke_handshake_with_data_both_ways(ta: TAMasterKey) -> None:
    with running_server(server_settings(ta.extract("localhost"))) as (server, observed):
        conn = exchange(server, ibe_client_config(ta.public), b"hello over IBE-PSK")
    assert (conn.mode, conn.ibe_identity, conn.psk_key_exchange) == ("ibe-psk", "localhost", "psk_dhe_ke")
    assert conn.cipher == "aes128gcm"
    seen = observed.connections[0]
    assert seen["mode"] == HandshakeMode.IBE_PSK and seen["identity"] == "localhost"
    assert seen["data"] == b"hello over IBE-PSK"
    assert server.config.settings.ibe_keyring.decapsulations == 1


def test_psk_ke_only_when_asked(ta: TAMasterKey) -> None:
    with running_server(server_settings(ta.extract("localhost"), psk_ke=True)) as (server, observed):
        conn = exchange(server, ibe_client_config(ta.public, psk_modes=["psk_ke"]))
        default = exchange(server, ibe_client_config(ta.public))
    assert conn.psk_key_exchange == "psk_ke" and observed.connections[0]["kex"] == "psk_ke"
    assert default.psk_key_exchange == "psk_dhe_ke", "psk_dhe_ke stays preferred when the client offers the default"


def test_psk_ke_refused_by_a_server_that_does_not_allow_it(ta: TAMasterKey) -> None:
    with running_server(server_settings(ta.extract("localhost"))) as (server, _):
        with pytest.raises(TLSRemoteAlert) as raised:
            exchange(server, ibe_client_config(ta.public, psk_modes=["psk_ke"]))
    assert raised.value.description == AlertDescription.handshake_failure


def test_after_hello_retry_request(ta: TAMasterKey) -> None:
    settings = server_settings(ta.extract("localhost"))
    settings.eccCurves, settings.keyShares = ["secp256r1"], ["secp256r1"]
    config = ibe_client_config(ta.public, keyShares=["x25519"], eccCurves=["x25519", "secp256r1"])
    with running_server(settings) as (server, _):
        conn = exchange(server, config)
    assert conn.mode == HandshakeMode.IBE_PSK
    assert conn.group == "secp256r1", "the HelloRetryRequest must have moved us to P-256"
    assert settings.ibe_keyring.decapsulations == 1, "the retried ClientHello must not cost a second pairing"


def test_several_identities_chosen_by_sni(ta: TAMasterKey) -> None:
    keys = [ta.extract(name) for name in ("a.example", "b.example", "c.example")]
    with running_server(server_settings(*keys)) as (server, observed):
        for name in ("b.example", "c.example", "a.example"):
            conn = exchange(server, ibe_client_config(ta.public, server_name=name))
            assert conn.ibe_identity == name
    assert [c["identity"] for c in observed.connections] == ["b.example", "c.example", "a.example"]


def test_identity_setting_overrides_sni(ta: TAMasterKey) -> None:
    settings = server_settings(ta.extract("gateway"), ta.extract("other"))
    settings.ibe_keyring.default = "gateway"
    with running_server(settings) as (server, _):
        conn = exchange(server, ibe_client_config(ta.public, server_name="gw.example", ibe_identity="gateway"))
    assert conn.ibe_identity == "gateway"


def test_resumption_from_ticket_spends_no_pairing(ta: TAMasterKey) -> None:
    settings = server_settings(ta.extract("localhost"), tickets=True)
    config = ibe_client_config(ta.public)
    with running_server(settings) as (server, observed):
        first = exchange(server, config)
        assert first.session.tickets, "the server must have issued a ticket"
        second = exchange(server, config, session=first.session)
    assert second.mode == HandshakeMode.RESUMPTION and second.resumed
    assert observed.connections[1]["mode"] == HandshakeMode.RESUMPTION
    assert settings.ibe_keyring.decapsulations == 1


def test_client_without_fallback_refuses_a_certificate_only_server(ta: TAMasterKey) -> None:
    ca = make_ca()
    settings = HandshakeSettings()
    with running_server(settings, cert=issue(ca, "localhost")) as (server, _):
        with pytest.raises(TLSLocalAlert, match="did not accept the IBE-PSK for 'localhost'") as raised:
            # A lean ClientHello has no signature_algorithms: the server refuses it first (test_conformance_server).
            exchange(server, ibe_client_config(ta.public, ibe_lean_client_hello=False))
    assert raised.value.description == AlertDescription.handshake_failure


def test_client_falls_back_to_a_validated_certificate(ta: TAMasterKey) -> None:
    ca = make_ca()
    config = ibe_client_config(ta.public)
    config.checker = ServerCertificateChecker(TrustAnchors([ca.certificate]), "localhost")
    with running_server(HandshakeSettings(), cert=issue(ca, "localhost")) as (server, _):
        conn = exchange(server, config)
    assert conn.mode == HandshakeMode.CERTIFICATE


def test_fallback_certificate_from_another_ca_is_refused(ta: TAMasterKey) -> None:
    config = ibe_client_config(ta.public)
    config.checker = ServerCertificateChecker(TrustAnchors([make_ca().certificate]), "localhost")
    with running_server(HandshakeSettings(), cert=issue(make_ca("rogue CA"), "localhost")) as (server, _):
        with pytest.raises(Exception, match="does not validate"):
            connect(*server.address, config)


def test_server_with_certificate_and_ibe_serves_both(ta: TAMasterKey) -> None:
    ca = make_ca()
    plain = ClientConfig(HandshakeSettings(), server_name="localhost")
    plain.checker = ServerCertificateChecker(TrustAnchors([ca.certificate]), "localhost")
    with running_server(server_settings(ta.extract("localhost")), cert=issue(ca, "localhost")) as (server, _):
        assert exchange(server, ibe_client_config(ta.public)).mode == HandshakeMode.IBE_PSK
        assert exchange(server, plain).mode == HandshakeMode.CERTIFICATE


def test_key_from_another_ta_falls_back_to_certificate(ta: TAMasterKey) -> None:
    ca = make_ca()
    other_ta = TAMasterKey.generate()
    config = ibe_client_config(other_ta.public)
    config.checker = ServerCertificateChecker(TrustAnchors([ca.certificate]), "localhost")
    with running_server(server_settings(ta.extract("localhost")), cert=issue(ca, "localhost")) as (server, _):
        assert exchange(server, config).mode == HandshakeMode.CERTIFICATE


def test_client_needs_an_identity(ta: TAMasterKey) -> None:
    with running_server(server_settings(ta.extract("localhost"))) as (server, _):
        with pytest.raises(ValueError, match=r"needs settings\.ibe_identity or serverName"):
            connect(*server.address, ibe_client_config(ta.public, server_name=None))  # type: ignore[arg-type]


def test_captured_tiiger_first_flight(vectors: dict[str, Any]) -> None:
    public = TAPublicParams.from_bytes(bytes.fromhex(vectors["ta_public_key_g1"]))
    key = IdentityKey.from_bytes("localhost", bytes.fromhex(vectors["identity_key_g2"]), public)
    settings = server_settings(key)
    with running_server(settings) as (server, _):
        flight = bytes.fromhex(vectors["captured_first_flight"]["records_hex"])
        server_hello = parse_server_hello(send_and_read_first_record(server.address, flight))
    assert server_hello.getExtension(41).selected == 0, "pre_shared_key must select identity 0"
    assert GroupName.toRepr(server_hello.getExtension(51).server_share.group) == "x25519"
    assert settings.ibe_keyring.decapsulations == 1


def test_sha384_external_psk_and_ticket_next_to_an_ibe_psk(ta: TAMasterKey) -> None:
    external = (bytearray(b"sensor-9"), bytearray(os.urandom(48)), "sha384")
    settings = server_settings(ta.extract("localhost"), tickets=True)
    settings.pskConfigs = [external]
    with running_server(settings) as (server, _):
        # The lean ClientHello keeps the SHA-384 suites the external PSK needs; the server takes that PSK.
        first = exchange(server, ibe_client_config(ta.public, pskConfigs=[external]))
        # Its SHA-384 ticket, offered before an IBE-PSK: the server prefers a SHA-256 suite for the IBE-PSK,
        # where the ticket cannot be used, and must not let the ticket block the IBE-PSK.
        second = exchange(server, ibe_client_config(ta.public), session=first.session)
    assert (first.mode, first.cipher) == ("external-psk", "aes256gcm")
    assert second.mode == "ibe-psk"


def testoffered_psk_hashes_include_the_tickets() -> None:
    settings = HandshakeSettings()
    settings.pskConfigs = [(bytearray(b"a"), bytearray(32)), (bytearray(b"b"), bytearray(48), "sha384")]
    assert offered_psk_hashes(settings, None) == {"sha256", "sha384"}
    settings.pskConfigs = []
    session = SimpleNamespace(tickets=[object()], cipherSuite=CipherSuite.TLS_AES_256_GCM_SHA384)
    assert offered_psk_hashes(settings, session) == {"sha384"}
    assert offered_psk_hashes(settings, SimpleNamespace(tickets=[], cipherSuite=0)) == set()


def test_ibe_only_client_hello_is_lean(ta: TAMasterKey) -> None:
    settings = ibe_client_config(ta.public).settings
    hello = capture_client_hello(settings, "localhost").hello
    types = {e.extType for e in hello.extensions}
    assert ExtensionType.signature_algorithms not in types and ExtensionType.session_ticket not in types
    assert hello.cipher_suites and set(hello.cipher_suites) <= set(CipherSuite.tls13Suites)
    assert set(hello.cipher_suites) <= set(CipherSuite.sha256PrfSuites), "only suites an IBE-PSK can use"
    assert hello.getExtension(ExtensionType.supported_versions).versions == [(3, 4)]
    assert len(hello.getExtension(ExtensionType.key_share).client_shares) == 1
    assert hello.extensions[-1].extType == ExtensionType.pre_shared_key
    settings.ibe_lean_client_hello = False
    full = capture_client_hello(settings, "localhost").hello
    assert ExtensionType.signature_algorithms in {e.extType for e in full.extensions}
    assert len(hello.write()) < len(full.write()) - 100
