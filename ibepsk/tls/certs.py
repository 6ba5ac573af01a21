"""X.509 chain validation with ``cryptography``'s verifier, for tlslite-ng connections.

tlslite-ng only checks fingerprints; a careful client (and, for post-handshake
authentication, a careful server) wants path validation against trust anchors.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from tlslite.errors import TLSAuthenticationError, TLSNoAuthenticationError
from tlslite.x509certchain import X509CertChain

from .connection import HandshakeMode


class CertificateVerificationError(TLSAuthenticationError):  # type: ignore[misc]
    """A peer's certificate chain does not validate against the trust anchors."""


def load_certificates(path: str | Path) -> list[x509.Certificate]:
    """All PEM certificates in a file (a CA bundle or a chain)."""
    data = Path(path).read_bytes()
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ValueError(f"{path}: no PEM certificate could be read ({exc})") from None
    return certificates


def to_cryptography(chain: X509CertChain) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(bytes(cert.bytes)) for cert in chain.x509List]


def load_tlslite_chain(path: str | Path) -> X509CertChain:
    chain = X509CertChain()
    chain.parsePemList(Path(path).read_text())
    return chain


class TrustAnchors:
    """A set of CA certificates and the policies to validate chains against them."""

    def __init__(self, certificates: Sequence[x509.Certificate]) -> None:
        if not certificates:
            raise ValueError("at least one trust anchor is needed")
        self._store = Store(list(certificates))

    @classmethod
    def from_pem_file(cls, path: str | Path) -> TrustAnchors:
        return cls(load_certificates(path))

    def _policy(self) -> PolicyBuilder:
        return PolicyBuilder().store(self._store).time(datetime.datetime.now(datetime.UTC))

    def verify_server(self, chain: X509CertChain, server_name: str) -> list[x509.Certificate]:
        """Validate a server's chain for ``server_name``; return the path up to the anchor."""
        leaf, *intermediates = to_cryptography(chain)
        verifier = self._policy().build_server_verifier(x509.DNSName(server_name))
        try:
            return list(verifier.verify(leaf, intermediates))
        except VerificationError as exc:
            raise CertificateVerificationError(f"server certificate does not validate: {exc}") from None


class ServerCertificateChecker:
    """A tlslite-ng ``checker``: accepts PSK-authenticated handshakes, validates certificates.

    Passing one to ``handshakeClientCert`` also lets an IBE-PSK client fall
    back to a certificate handshake when the server does not take the PSK.
    """

    def __init__(self, anchors: TrustAnchors, server_name: str) -> None:
        self._anchors = anchors
        self._server_name = server_name

    def __call__(self, connection: Any) -> None:
        if getattr(connection, "handshake_mode", None) != HandshakeMode.CERTIFICATE:
            return  # the PSK (IBE, ticket or external) authenticated the server
        chain = connection.session.serverCertChain
        if not chain:
            raise TLSNoAuthenticationError("server sent no certificate")
        self._anchors.verify_server(chain, self._server_name)
