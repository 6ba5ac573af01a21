"""Accelerated ibepsk connections against stock tlslite-ng peers, over TCP on 127.0.0.1.

Every handshake runs both ends in one thread (``ibepsk.tls.loopback``). A
stock ``tlslite.TLSConnection`` on the other end proves the bytes on the wire
are what tlslite-ng itself sends and expects.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from typing import Any

import pytest
import tlslite
from cryptography.hazmat.primitives import serialization
from tlslite.constants import AlertDescription, ContentType, ExtensionType, GroupName, SignatureScheme
from tlslite.errors import TLSLocalAlert, TLSRemoteAlert
from tlslite.utils.keyfactory import parsePEMKey
from tlslite.x509 import X509

from ibepsk import HandshakeMode, HandshakeSettings, IbeKeyring, TLSConnection, accelerate_tlslite, restore_tlslite
from ibepsk.keys import TAMasterKey
from ibepsk.tls._crypto.ecdh import NistCurveKeyExchange, XdhKeyExchange
from ibepsk.tls._crypto.keys import CryptographyECDSAKey
from ibepsk.tls.accel import accelerate_key, tlslite_accelerated
from ibepsk.tls.loopback import run_both, tcp_pair

from pki import Issued, issue
from tls_support import (
    TIMEOUT,
    Pair,
    alert_description,
    capture_client_hello,
    close,
    running_server,
    send_and_read_first_record,
    tlslite_chain,
    tlslite_key,
)

SUITES = ["aes128gcm", "aes256gcm", "chacha20-poly1305", "aes128ccm", "aes128ccm_8"]
GROUPS = ["x25519", "x448", "secp256r1", "secp384r1", "secp521r1"]
#: Which end runs ibepsk (accelerated); the other is stock tlslite-ng.
DIRECTIONS = ["ibepsk-client", "ibepsk-server"]


@dataclass
class Credentials:
    chain: Any
    key: Any

    @classmethod
    def of(cls, issued: Issued) -> Credentials:
        return cls(tlslite_chain(issued), tlslite_key(issued))


def classes(direction: str) -> tuple[type[Any], type[Any]]:
    if direction == "ibepsk-client":
        return TLSConnection, tlslite.TLSConnection
    return tlslite.TLSConnection, TLSConnection


def settings_for(cls: type[Any], **fields: Any) -> Any:
    settings = HandshakeSettings() if issubclass(cls, TLSConnection) else tlslite.HandshakeSettings()
    for name, value in fields.items():
        setattr(settings, name, value)
    return settings


def handshake(
    client_cls: type[Any],
    server_cls: type[Any],
    server: Credentials | None = None,
    client: Credentials | None = None,
    client_settings: Any = None,
    server_settings: Any = None,
) -> Pair:
    """Both handshakes over a fresh TCP pair; afterwards the sockets block (with a timeout) for plain I/O."""
    client_sock, server_sock = tcp_pair()
    pair = Pair(client_cls(client_sock), server_cls(server_sock))
    try:
        run_both(
            pair.client.handshakeClientCert(
                certChain=client.chain if client else None,
                privateKey=client.key if client else None,
                settings=client_settings or settings_for(client_cls),
                serverName="localhost",
                async_=True,
            ),
            pair.server.handshakeServerAsync(
                certChain=server.chain if server else None,
                privateKey=server.key if server else None,
                settings=server_settings or settings_for(server_cls),
                reqCert=client is not None,
            ),
            (client_sock, server_sock),
        )
    except BaseException:
        close(pair)
        raise
    for sock in (client_sock, server_sock):
        sock.settimeout(TIMEOUT)
    return pair


def read_exactly(conn: Any, count: int) -> bytes:
    received = bytearray()
    while len(received) < count:
        received += conn.read(max=count - len(received))
    return bytes(received)


def assert_data_both_ways(pair: Pair, size: int = 300) -> None:
    request, response = os.urandom(size), os.urandom(size)
    pair.client.write(request)
    assert read_exactly(pair.server, size) == request
    pair.server.write(response)
    assert read_exactly(pair.client, size) == response


def implementations(pair: Pair) -> dict[str, str]:
    """Each end's record-protection implementation, keyed by which library that end runs."""
    return {
        "ibepsk" if isinstance(conn, TLSConnection) else "tlslite": conn.getCipherImplementation()
        for conn in (pair.client, pair.server)
    }


def assert_group_handshake(group: str, direction: str, server: Issued, pairs: list[Pair]) -> None:
    """A handshake whose only key exchange group is ``group`` uses it, and data flows both ways."""
    client_cls, server_cls = classes(direction)
    only = {"eccCurves": [group], "keyShares": [group]}
    pair = handshake(
        client_cls,
        server_cls,
        server=Credentials.of(server),
        client_settings=settings_for(client_cls, **only),
        server_settings=settings_for(server_cls, **only),
    )
    pairs.append(pair)
    assert pair.client.ecdhCurve == pair.server.ecdhCurve == getattr(GroupName, group)
    assert_data_both_ways(pair)


# --- suites and groups -------------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("suite", SUITES)
def test_every_aead_suite(suite: str, direction: str, server_cert: Issued, pairs: list[Pair]) -> None:
    client_cls, server_cls = classes(direction)
    pair = handshake(
        client_cls,
        server_cls,
        server=Credentials.of(server_cert),
        client_settings=settings_for(client_cls, cipherNames=[suite]),
        server_settings=settings_for(server_cls, cipherNames=[suite]),
    )
    pairs.append(pair)
    assert pair.client.getCipherName() == pair.server.getCipherName() == suite
    assert implementations(pair) == {"ibepsk": "cryptography", "tlslite": "python"}
    assert_data_both_ways(pair)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("group", GROUPS)
def test_every_key_exchange_group(group: str, direction: str, server_cert: Issued, pairs: list[Pair]) -> None:
    assert_group_handshake(group, direction, server_cert, pairs)


@pytest.mark.parametrize("group", GROUPS)
def test_ibepsk_key_exchange_is_cryptography_and_stock_stays_python(group: str) -> None:
    code = getattr(GroupName, group)
    assert isinstance(TLSConnection._getKEX(code, (3, 4)), XdhKeyExchange | NistCurveKeyExchange)
    assert not isinstance(tlslite.TLSConnection._getKEX(code, (3, 4)), XdhKeyExchange | NistCurveKeyExchange)


@pytest.mark.parametrize("suite", ["aes128gcm", "chacha20-poly1305"])
def test_records_larger_than_one_fragment(suite: str, server_cert: Issued, pairs: list[Pair]) -> None:
    only = {"cipherNames": [suite]}
    pair = handshake(
        TLSConnection,
        tlslite.TLSConnection,
        server=Credentials.of(server_cert),
        client_settings=settings_for(TLSConnection, **only),
        server_settings=settings_for(tlslite.TLSConnection, **only),
    )
    pairs.append(pair)
    assert_data_both_ways(pair, size=(1 << 14) + 1000)


# --- signatures --------------------------------------------------------------------------


def signed_with_cryptography(key: Any) -> bool:
    """The key's cryptography twin built its private key, which it does on its first signature."""
    return "_signer" in vars(accelerate_key(key))


def verified_with_cryptography(chain: Any) -> bool:
    """The peer's certificate key is a cryptography twin that built its public key (on its first verification)."""
    public_key = chain.getEndEntityPublicKey()
    return accelerate_key(public_key) is public_key and "_verifier" in vars(public_key)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize(
    ("kind", "scheme"),
    [("p256", "ecdsa_secp256r1_sha256"), ("ed25519", "ed25519"), ("rsa2048", "rsa_pss_rsae_sha")],
)
def test_certificate_signatures_both_ways(
    kind: str, scheme: str, direction: str, ca: Issued, pairs: list[Pair]
) -> None:
    server_creds = Credentials.of(issue(ca, "localhost", kind=kind))
    client_creds = Credentials.of(issue(ca, "client", kind=kind, server=False))
    client_cls, server_cls = classes(direction)
    pair = handshake(client_cls, server_cls, server=server_creds, client=client_creds)
    pairs.append(pair)
    assert SignatureScheme.toRepr(pair.server.serverSigAlg).startswith(scheme)
    if direction == "ibepsk-server":
        assert signed_with_cryptography(server_creds.key)
        assert verified_with_cryptography(pair.server.session.clientCertChain)
    else:
        assert signed_with_cryptography(client_creds.key)
        assert verified_with_cryptography(pair.client.session.serverCertChain)
    assert_data_both_ways(pair)


# --- IBE-PSK -------------------------------------------------------------------------------


def test_ibe_psk_between_accelerated_peers(ta: TAMasterKey, pairs: list[Pair]) -> None:
    server_settings = HandshakeSettings()
    server_settings.ibe_keyring = IbeKeyring([ta.extract("localhost")])
    client_settings = HandshakeSettings()
    client_settings.ibe_public_params = ta.public
    pair = handshake(TLSConnection, TLSConnection, client_settings=client_settings, server_settings=server_settings)
    pairs.append(pair)
    assert pair.client.handshake_mode == pair.server.handshake_mode == HandshakeMode.IBE_PSK
    assert pair.client.psk_key_exchange == "psk_dhe_ke"
    assert pair.client.getCipherImplementation() == pair.server.getCipherImplementation() == "cryptography"
    assert_data_both_ways(pair)


# --- failures keep tlslite-ng's alerts -------------------------------------------------------


def forged_record(length: int = 64) -> bytes:
    """An application_data record of the right shape whose tag cannot verify."""
    return struct.pack(">BHH", ContentType.application_data, 0x0303, length) + os.urandom(length)


@pytest.mark.parametrize("receiver", ["client", "server"])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_record_that_does_not_authenticate_gets_bad_record_mac(
    direction: str, receiver: str, server_cert: Issued, pairs: list[Pair]
) -> None:
    # Accelerated and stock receivers alike: the alert and the exceptions are tlslite-ng's.
    pair = handshake(*classes(direction), server=Credentials.of(server_cert))
    pairs.append(pair)
    reader, forger = (pair.client, pair.server) if receiver == "client" else (pair.server, pair.client)
    forger.sock.socket.sendall(forged_record())
    with pytest.raises(TLSLocalAlert) as sent:
        reader.read()
    assert sent.value.description == AlertDescription.bad_record_mac
    with pytest.raises(TLSRemoteAlert) as received:
        forger.read()
    assert received.value.description == AlertDescription.bad_record_mac


def replace_key_share(hello: Any, group: int, share: bytes) -> None:
    (entry,) = hello.getExtension(ExtensionType.key_share).client_shares
    assert entry.group == group
    entry.key_exchange = bytearray(share)


@pytest.mark.parametrize(
    ("group", "share"),
    [
        ("x25519", bytes(32)),  # low order: the shared secret would be all zeros
        ("secp256r1", b"\x04" + bytes(64)),  # not on the curve
        ("secp256r1", b"\x02" + bytes(32)),  # compressed, which TLS 1.3 does not allow
    ],
)
def test_bad_key_share_gets_illegal_parameter(ta: TAMasterKey, group: str, share: bytes) -> None:
    server_settings = HandshakeSettings()
    server_settings.ibe_keyring = IbeKeyring([ta.extract("localhost")])
    client_settings = HandshakeSettings()
    client_settings.ibe_public_params = ta.public
    client_settings.keyShares = [group]
    captured = capture_client_hello(client_settings, "localhost")
    replace_key_share(captured.hello, getattr(GroupName, group), share)
    with running_server(server_settings) as (server, _):
        record = send_and_read_first_record(server.address, captured.resign())
    assert alert_description(record) == AlertDescription.illegal_parameter


# --- stock tlslite-ng is left alone unless the process opts in -------------------------------


def stock_pair_implementation(server: Credentials) -> dict[str, str]:
    client_sock, server_sock = tcp_pair()
    client, stock_server = tlslite.TLSConnection(client_sock), tlslite.TLSConnection(server_sock)
    try:
        run_both(
            client.handshakeClientCert(serverName="localhost", async_=True),
            stock_server.handshakeServerAsync(certChain=server.chain, privateKey=server.key),
            (client_sock, server_sock),
        )
        return {"client": client.getCipherImplementation(), "server": stock_server.getCipherImplementation()}
    finally:
        client_sock.close()
        server_sock.close()


def parsed_key_types(issued: Issued) -> tuple[type[Any], type[Any]]:
    """What tlslite-ng's own parsers build right now: (private key from PEM, public key from a certificate)."""
    certificate = X509()
    certificate.parseBinary(bytearray(issued.certificate.public_bytes(serialization.Encoding.DER)))
    return type(parsePEMKey(issued.key_pem().decode(), private=True)), type(certificate.publicKey)


def test_stock_tlslite_unchanged_until_opted_in_and_after_restore(server_cert: Issued) -> None:
    credentials = Credentials.of(server_cert)
    stock_types = parsed_key_types(server_cert)
    assert stock_pair_implementation(credentials) == {"client": "python", "server": "python"}
    assert not tlslite_accelerated()
    accelerate_tlslite()
    try:
        accelerate_tlslite()  # a second call changes nothing
        assert tlslite_accelerated()
        assert stock_pair_implementation(credentials) == {"client": "cryptography", "server": "cryptography"}
        assert parsed_key_types(server_cert) == (CryptographyECDSAKey, CryptographyECDSAKey)
        assert isinstance(tlslite.TLSConnection._getKEX(GroupName.x25519, (3, 4)), XdhKeyExchange)
    finally:
        restore_tlslite()
    assert not tlslite_accelerated()
    assert stock_pair_implementation(credentials) == {"client": "python", "server": "python"}
    assert parsed_key_types(server_cert) == stock_types
    assert not isinstance(tlslite.TLSConnection._getKEX(GroupName.x25519, (3, 4)), XdhKeyExchange)


def test_unaccelerated_subclass_behaves_like_stock(server_cert: Issued, pairs: list[Pair]) -> None:
    class Plain(TLSConnection):
        accelerated = False

    pair = handshake(Plain, Plain, server=Credentials.of(server_cert))
    pairs.append(pair)
    assert pair.client.getCipherImplementation() == pair.server.getCipherImplementation() == "python"
    assert not isinstance(Plain._getKEX(GroupName.x25519, (3, 4)), XdhKeyExchange)
    public_key = pair.client.session.serverCertChain.getEndEntityPublicKey()
    assert accelerate_key(public_key) is not public_key


def test_tcp_pair_is_loopback() -> None:
    client_sock, server_sock = tcp_pair()
    with client_sock, server_sock:
        assert client_sock.getpeername() == server_sock.getsockname()
        assert client_sock.getsockname()[0] == "127.0.0.1"
        assert client_sock.family == socket.AF_INET and not client_sock.getblocking()
