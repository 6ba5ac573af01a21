"""``ibepsk bench wire``: bytes on the wire per complete handshake, IBE-PSK against a certificate.

Both handshakes run against the same kind of ibepsk server on loopback, with
NewSessionTickets off so only the handshake is counted. Certificate
handshakes send a two-certificate chain (leaf and intermediate; the root is
the client's trust anchor and is not sent), validated by the client, in two
shapes: a minimal all-ECDSA chain, and a web-like one (an RSA-2048
intermediate, a P-256 leaf with the AIA, CRL and policy extensions public CAs
add; no SCTs).

The IBE-PSK handshake runs in every scheme ``settings.ibe_scheme`` names, to one
server holding every key: the ClientHello grows from about 500 bytes (BF) to
5–6 KB (a lattice ciphertext and an X25519MLKEM768 share).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from .client import ClientConfig
from .ibe.lattice import single_identity_keys
from .keys import LatticeIdentityKey, LatticeTAPublicParams, TAMasterKey
from .pki import issue, make_ca
from .server import ServerConfig, TLSServer, echo_application
from .tls import HandshakeSettings, IbeKeyring, TLSConnection
from .tls.certs import ServerCertificateChecker, TrustAnchors
from .wire import ByteCounts, CountingSocket

SERVER_NAME = "gateway.example"


#: The IBE-PSK schemes compared (``settings.ibe_scheme``), with the ``obfuscated_ticket_age`` marker each sends.
IBE_SCHEMES = {"bf": "1", "tiiger-hybrid": "3", "lattice": "0xFFFFFF02", "hybrid": "0xFFFFFF03"}


@dataclass(frozen=True)
class SchemeWire:
    """One IBE-PSK scheme's handshake: its ClientHello (records included) and the whole handshake."""

    client_hello: int
    handshake: ByteCounts


@dataclass(frozen=True)
class WireResult:
    ibe_psk: ByteCounts
    minimal_chain: ByteCounts
    web_chain: ByteCounts
    schemes: dict[str, SchemeWire] = field(default_factory=dict)


def _count_handshake(address: tuple[str, int], config: ClientConfig) -> SchemeWire:
    counting = CountingSocket(socket.create_connection(address, timeout=10))
    conn = TLSConnection(counting)
    conn.handshakeClientCert(settings=config.settings, serverName=config.server_name, checker=config.checker)
    counts = ByteCounts(counting.counts.client_to_server, counting.counts.server_to_client)
    conn.close()
    return SchemeWire(counting.first_flight or 0, counts)


def _certificate_handshake(intermediate_kind: str, web: bool) -> ByteCounts:
    root = make_ca("ibepsk bench root CA")
    intermediate = make_ca("ibepsk bench issuing CA", kind=intermediate_kind, issuer=root)
    leaf = issue(intermediate, SERVER_NAME, web_extensions=web)
    client = ClientConfig(HandshakeSettings(), server_name=SERVER_NAME)
    client.checker = ServerCertificateChecker(TrustAnchors([root.certificate]), SERVER_NAME)
    config = ServerConfig(
        HandshakeSettings(), cert_chain=leaf.tlslite_chain(intermediate), private_key=leaf.tlslite_key()
    )
    with TLSServer(config, echo_application).start() as server:
        return _count_handshake(server.address, client).handshake


def _ibe_psk_handshakes() -> dict[str, SchemeWire]:
    """One handshake per IBE scheme, each with the client's default key shares for it."""
    ta = TAMasterKey.generate()
    h, s = single_identity_keys(SERVER_NAME)  # a stand-in lattice TA: the sizes do not depend on the keys
    lattice_public = LatticeTAPublicParams.from_polynomial(h)
    lattice_key = LatticeIdentityKey.from_coefficients(SERVER_NAME, s, lattice_public)
    server_settings = HandshakeSettings()
    server_settings.ibe_keyring = IbeKeyring(
        [ta.extract(SERVER_NAME)],
        tiiger_lattice_keys=[lattice_key],
        tiiger_lattice_public=lattice_public,
        lattice_keys=[lattice_key],
        lattice_public=lattice_public,
    )
    results = {}
    with TLSServer(ServerConfig(server_settings), echo_application).start() as server:
        for scheme in IBE_SCHEMES:
            client = HandshakeSettings()
            client.ibe_scheme = scheme
            client.ibe_public_params = None if scheme == "lattice" else ta.public
            client.ibe_lattice_public_params = lattice_public
            results[scheme] = _count_handshake(server.address, ClientConfig(client, server_name=SERVER_NAME))
    return results


def measure_wire() -> WireResult:
    schemes = _ibe_psk_handshakes()
    return WireResult(
        schemes["bf"].handshake,
        _certificate_handshake("p256", web=False),
        _certificate_handshake("rsa2048", web=True),
        schemes,
    )


def bench_wire() -> WireResult:
    result = measure_wire()
    print("ibepsk bench wire — bytes per complete TLS 1.3 handshake (records included, no tickets)")
    print(f"{'handshake':52} {'client->server':>14} {'server->client':>14} {'total':>7} {'IBE/this':>8}")
    for name, counts in (
        ("IBE-PSK (psk_dhe_ke)", result.ibe_psk),
        ("certificate, minimal chain (P-256 leaf, P-256 CA)", result.minimal_chain),
        ("certificate, web-like chain (P-256 leaf, RSA-2048 CA)", result.web_chain),
    ):
        share = result.ibe_psk.total / counts.total
        print(f"{name:52} {counts.client_to_server:14} {counts.server_to_client:14} {counts.total:7} {share:8.0%}")
    web_share = result.ibe_psk.total / result.web_chain.total
    verdict = "met" if web_share <= 0.40 else "MISSED"
    print(f"target: IBE-PSK <= 40% of a realistic certificate handshake (web-like chain): {web_share:.0%}, {verdict}")
    print()
    print("IBE-PSK by scheme (--ibe-scheme; each with its default key share: x25519 for bf, X25519MLKEM768 else)")
    print(f"{'scheme (marker)':28} {'ClientHello':>11} {'client->server':>14} {'server->client':>14} {'total':>7}")
    for scheme, wire in result.schemes.items():
        up, down = wire.handshake.client_to_server, wire.handshake.server_to_client
        name = f"{scheme} ({IBE_SCHEMES[scheme]})"
        print(f"{name:28} {wire.client_hello:11} {up:14} {down:14} {up + down:7}")
    return result
