"""X.509 chain validation with ``cryptography``'s verifier, for tlslite-ng connections.

tlslite-ng only checks fingerprints; a careful client (and, for client
authentication, a careful server) wants path validation against trust anchors.
Client chains are judged by a :class:`ClientCertProfile`: by default RFC 5280
path validation with OpenSSL's defaults as the baseline, which accepts what
device PKIs issue (no subjectAltName, CAs without keyUsage, pinned self-signed
certificates); or cryptography's strict web-PKI client profile.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    ClientVerifier,
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from tlslite.constants import AlertDescription
from tlslite.errors import TLSAuthenticationError, TLSNoAuthenticationError
from tlslite.x509certchain import X509CertChain

from .connection import HandshakeMode
from .errors import ClientCertificateError
from .signer import certificates_from_tlslite as to_cryptography


class CertificateVerificationError(TLSAuthenticationError):  # type: ignore[misc]
    """A peer's certificate chain does not validate against the trust anchors."""


class ClientCertProfile(StrEnum):
    """Which rules a client's certificate chain must follow, beyond signatures, validity and basicConstraints.

    ``OPENSSL`` (the default): RFC 5280 path validation with OpenSSL's defaults as the baseline, what
    ``openssl s_server -Verify`` accepts: subjectAltName, keyUsage and the key identifiers are optional; a CA's
    keyUsage, when present, must allow keyCertSign; an extendedKeyUsage, when present, must allow clientAuth
    (or anyExtendedKeyUsage); the leaf's keyUsage, when present, digitalSignature (RFC 8446 §4.4.2.2); a
    certificate listed among the trust anchors is accepted as the end entity itself, even with ``CA:TRUE``; an
    X.509 v1 leaf is accepted under a v3 CA.
    ``WEBPKI``: cryptography's client verifier, the CA/Browser Forum profile: the leaf needs a subjectAltName,
    an authorityKeyIdentifier and no ``CA:TRUE``; CAs need keyUsage.
    Both keep cryptography's algorithm rules (RSA keys of 2048 bits or more; P-256/384/521; no Ed25519
    signatures on certificates).
    """

    OPENSSL = "openssl"
    WEBPKI = "webpki"


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


# --- the OpenSSL-like profile's extension rules (cryptography calls them; ValueError refuses) --------------


def _name(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string()


def _allows_client_auth(policy: Policy, certificate: x509.Certificate, usage: x509.ExtendedKeyUsage | None) -> None:
    allowed = {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
    if usage is not None and not allowed & set(usage):
        raise ValueError(f"the extendedKeyUsage of '{_name(certificate)}' does not allow clientAuth")


def _allows_certificate_signing(policy: Policy, certificate: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    if usage is not None and not usage.key_cert_sign:
        raise ValueError(f"the keyUsage of CA '{_name(certificate)}' does not allow keyCertSign")


def _allows_signing(policy: Policy, certificate: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    if usage is not None and not usage.digital_signature:
        raise ValueError(f"the keyUsage of '{_name(certificate)}' does not allow digitalSignature")


#: How cryptography's message quotes a ValueError raised by the rules above.
_WRAPPED_RULE_PREFIX = "Python extension validator failed: ValueError: "

_OPENSSL_CA_POLICY = (
    ExtensionPolicy.permit_all()
    # cryptography insists on basicConstraints in CAs and checks cA and pathLenConstraint itself.
    .require_present(x509.BasicConstraints, Criticality.AGNOSTIC, None)
    .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _allows_certificate_signing)
    .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _allows_client_auth)
)
_OPENSSL_EE_POLICY = (
    ExtensionPolicy.permit_all()
    .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _allows_signing)
    .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _allows_client_auth)
)


class TrustAnchors:
    """A set of CA certificates and the policies to validate chains against them.

    ``client_profile`` says which rules client chains follow (:class:`ClientCertProfile`).
    """

    def __init__(
        self, certificates: Sequence[x509.Certificate], *, client_profile: ClientCertProfile = ClientCertProfile.OPENSSL
    ) -> None:
        if not certificates:
            raise ValueError("at least one trust anchor is needed")
        self._anchors = list(certificates)
        self._store = Store(self._anchors)
        self.client_profile = ClientCertProfile(client_profile)

    @classmethod
    def from_pem_file(
        cls, path: str | Path, *, client_profile: ClientCertProfile = ClientCertProfile.OPENSSL
    ) -> TrustAnchors:
        return cls(load_certificates(path), client_profile=client_profile)

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

        Checks the signatures up to an anchor, every validity period,
        basicConstraints on the CAs and the extensions :attr:`client_profile`
        asks for. The ClientCertificateError raised otherwise carries the
        alert for the client (unknown_ca, certificate_expired or
        bad_certificate) and the reason.
        """
        if not chain:
            raise ClientCertificateError(AlertDescription.bad_certificate, "the client sent no certificate")
        leaf, *intermediates = chain
        try:
            return self._client_path(leaf, intermediates)
        except VerificationError as exc:
            raise self._client_refusal(chain, exc) from None

    def _client_path(self, leaf: x509.Certificate, intermediates: list[x509.Certificate]) -> list[x509.Certificate]:
        if self.client_profile is ClientCertProfile.OPENSSL and leaf.version is x509.Version.v1:
            return self._v1_leaf_path(leaf, intermediates)
        return list(self._client_verifier().verify(leaf, intermediates).chain)

    def _client_verifier(self, ee_policy: ExtensionPolicy = _OPENSSL_EE_POLICY) -> ClientVerifier:
        """The verifier of :attr:`client_profile`; ``ee_policy`` replaces the OpenSSL-like profile's leaf rules."""
        if self.client_profile is ClientCertProfile.WEBPKI:
            return self._policy().build_client_verifier()
        return (
            self._policy().extension_policies(ca_policy=_OPENSSL_CA_POLICY, ee_policy=ee_policy).build_client_verifier()
        )

    def _v1_leaf_path(self, leaf: x509.Certificate, intermediates: list[x509.Certificate]) -> list[x509.Certificate]:
        """cryptography refuses X.509 v1 certificates, which OpenSSL accepts as leaves (``openssl x509 -req``
        without an extfile issues them before OpenSSL 3.2). The leaf's own hop is checked here (its issuer's
        signature, its validity); the verifier checks the rest, the issuer standing in as end entity under the
        CA rules."""
        if not _valid_now(leaf):
            raise VerificationError(f"'{_name(leaf)}' is outside its validity period")
        last_error = VerificationError(f"no certificate sent or trusted issued '{_name(leaf)}'")
        for issuer in (cert for cert in (*self._anchors, *intermediates) if _directly_issued_by(leaf, cert)):
            others = [cert for cert in intermediates if cert != issuer]
            try:
                path = list(self._client_verifier(_OPENSSL_CA_POLICY).verify(issuer, others).chain)
            except VerificationError as exc:
                last_error = exc
                continue
            _check_path_lengths_above(path)
            return [leaf, *path]
        raise last_error

    def _client_refusal(self, chain: Sequence[x509.Certificate], exc: VerificationError) -> ClientCertificateError:
        """The alert, and the reason to log, for a client chain that failed: the reason matches the alert."""
        leaf = chain[0]
        if not self._reaches_anchor(chain):
            return ClientCertificateError(AlertDescription.unknown_ca, _no_chain_reason(leaf))
        expired = next((cert for cert in chain if not _valid_now(cert)), None)
        if expired is not None:
            return ClientCertificateError(
                AlertDescription.certificate_expired,
                f"'{_name(expired)}' is valid from {expired.not_valid_before_utc:%Y-%m-%d %H:%M} to "
                f"{expired.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, not now",
            )
        return ClientCertificateError(
            AlertDescription.bad_certificate,
            f"client certificate does not validate under the {self.client_profile} profile: {_verifier_message(exc)}",
        )

    def _reaches_anchor(self, chain: Sequence[x509.Certificate]) -> bool:
        """Whether the presented certificates link, signature by signature, to one of the anchors (or are one)."""
        current, unused = chain[0], list(chain[1:])
        if current in self._anchors:
            return True
        while True:
            if any(_directly_issued_by(current, anchor) for anchor in self._anchors):
                return True
            issuer = next((cert for cert in unused if _directly_issued_by(current, cert)), None)
            if issuer is None:
                return False
            unused.remove(issuer)
            current = issuer


def _verifier_message(exc: VerificationError) -> str:
    # cryptography wraps what our extension rules raise; their message says it all.
    return str(exc).replace(_WRAPPED_RULE_PREFIX, "")


def _no_chain_reason(leaf: x509.Certificate) -> str:
    if leaf.issuer == leaf.subject:
        return f"no chain to a trust anchor: '{_name(leaf)}' is self-signed and not one of the trust anchors"
    return (
        f"no chain from '{_name(leaf)}' to a trust anchor: its issuer '{leaf.issuer.rfc4514_string()}' is not "
        "trusted and the certificates sent lead to no trusted CA"
    )


def _valid_now(certificate: x509.Certificate) -> bool:
    return certificate.not_valid_before_utc <= datetime.datetime.now(datetime.UTC) <= certificate.not_valid_after_utc


def _check_path_lengths_above(path: list[x509.Certificate]) -> None:
    """With the issuer of a v1 leaf validated as end entity, cryptography counted one intermediate too few
    below each CA above it: check their pathLenConstraint with the right count."""
    for below, ca in enumerate(path[1:], start=1):
        limit = ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length  # CA rules: present
        if limit is not None and below > limit:
            raise VerificationError(f"pathLenConstraint {limit} of '{_name(ca)}' allows no {below} CAs below it")


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
