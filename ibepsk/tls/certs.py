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
from cryptography.exceptions import InvalidSignature
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from tlslite.constants import AlertDescription
from tlslite.errors import TLSAuthenticationError, TLSNoAuthenticationError
from tlslite.x509certchain import X509CertChain

from .connection import HandshakeMode
from .errors import ClientCertificateError
from .signer import certificates_from_tlslite as to_cryptography


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


def load_tlslite_chain(path: str | Path) -> X509CertChain:
    chain = X509CertChain()
    chain.parsePemList(Path(path).read_text())
    return chain


class TrustAnchors:
    """A set of CA certificates and the policies to validate chains against them."""

    def __init__(self, certificates: Sequence[x509.Certificate]) -> None:
        if not certificates:
            raise ValueError("at least one trust anchor is needed")
        self._anchors = list(certificates)
        self._store = Store(self._anchors)

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

    def verify_client(self, chain: Sequence[x509.Certificate]) -> list[x509.Certificate]:
        """Validate a client's chain (leaf first) for client authentication; return the path up to the anchor.

        Checks the signatures up to an anchor, every validity period and the
        leaf's clientAuth extended key usage (cryptography's client policy).
        The ClientCertificateError raised otherwise carries the alert for the
        client: unknown_ca, certificate_expired or bad_certificate.
        """
        if not chain:
            raise ClientCertificateError(AlertDescription.bad_certificate, "the client sent no certificate")
        leaf, *intermediates = chain
        try:
            return list(self._policy().build_client_verifier().verify(leaf, intermediates).chain)
        except VerificationError as exc:
            alert = self._client_alert(chain)
            raise ClientCertificateError(alert, f"client certificate does not validate: {exc}") from None

    def _client_alert(self, chain: Sequence[x509.Certificate]) -> int:
        """Which RFC 8446 alert describes why a client chain failed."""
        if not self._reaches_anchor(chain):
            return int(AlertDescription.unknown_ca)
        now = datetime.datetime.now(datetime.UTC)
        if any(not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc for cert in chain):
            return int(AlertDescription.certificate_expired)
        return int(AlertDescription.bad_certificate)

    def _reaches_anchor(self, chain: Sequence[x509.Certificate]) -> bool:
        """Whether the presented certificates link, signature by signature, to one of the anchors."""
        current, unused = chain[0], list(chain[1:])
        while True:
            if any(_directly_issued_by(current, anchor) for anchor in self._anchors):
                return True
            issuer = next((cert for cert in unused if _directly_issued_by(current, cert)), None)
            if issuer is None:
                return False
            unused.remove(issuer)
            current = issuer


def _directly_issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


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
