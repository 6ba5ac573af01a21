"""``ibepsk bench wire``: bytes on the wire per complete handshake, IBE-PSK against a certificate.

Both handshakes run against the same kind of ibepsk server on loopback, with
NewSessionTickets off so only the handshake is counted. Certificate
handshakes send a two-certificate chain (leaf and intermediate; the root is
the client's trust anchor and is not sent), validated by the client, in two
shapes: a minimal all-ECDSA chain, and a web-like one (an RSA-2048
intermediate, a P-256 leaf with the AIA, CRL and policy extensions public CAs
add; no SCTs).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from .client import ClientConfig
from .keys import TAMasterKey
from .pki import issue, make_ca
from .server import ServerConfig, TLSServer, echo_application
from .tls import HandshakeSettings, IbeKeyring, TLSConnection
from .tls.certs import ServerCertificateChecker, TrustAnchors
from .wire import ByteCounts, CountingSocket

SERVER_NAME = "gateway.example"


@dataclass(frozen=True)
class WireResult:
    ibe_psk: ByteCounts
    minimal_chain: ByteCounts
    web_chain: ByteCounts


def _count_handshake(address: tuple[str, int], config: ClientConfig) -> ByteCounts:
    counting = CountingSocket(socket.create_connection(address, timeout=10))
    conn = TLSConnection(counting)
    conn.handshakeClientCert(settings=config.settings, serverName=config.server_name, checker=config.checker)
    counts = ByteCounts(counting.counts.client_to_server, counting.counts.server_to_client)
    conn.close()
    return counts


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
        return _count_handshake(server.address, client)


def _ibe_psk_handshake() -> ByteCounts:
    ta = TAMasterKey.generate()
    server_settings = HandshakeSettings()
    server_settings.ibe_keyring = IbeKeyring([ta.extract(SERVER_NAME)])
    client = HandshakeSettings()
    client.ibe_public_params = ta.public
    with TLSServer(ServerConfig(server_settings), echo_application).start() as server:
        return _count_handshake(server.address, ClientConfig(client, server_name=SERVER_NAME))


def measure_wire() -> WireResult:
    return WireResult(
        _ibe_psk_handshake(), _certificate_handshake("p256", web=False), _certificate_handshake("rsa2048", web=True)
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
    return result
