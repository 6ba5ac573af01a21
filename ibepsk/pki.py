"""Throwaway X.509 PKI for the demo, benchmarks and tests.

CAs, intermediates and leaf certificates that ``cryptography``'s X.509
verifier accepts (key usages, SANs, key identifiers). Not for production
issuance: keys live in memory and certificates are short-lived.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from tlslite.utils.keyfactory import parsePEMKey
from tlslite.x509certchain import X509CertChain

_OCSP_URL = "http://ocsp.ca.example.net"
_ISSUER_URL = "http://certs.ca.example.net/issuing-ca.der"
_CRL_URL = "http://crl.ca.example.net/issuing-ca.crl"
#: CA/Browser Forum domain-validated policy.
_DOMAIN_VALIDATED = ObjectIdentifier("2.23.140.1.2.1")

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def new_key(kind: str = "p256") -> PrivateKey:
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def _sign_hash(key: PrivateKey) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


@dataclass
class Issued:
    certificate: x509.Certificate
    key: PrivateKey

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def tlslite_chain(self, *intermediates: Issued) -> X509CertChain:
        """This certificate and its intermediates as tlslite-ng wants them."""
        chain = X509CertChain()
        chain.parsePemList((self.cert_pem() + b"".join(c.cert_pem() for c in intermediates)).decode())
        return chain

    def tlslite_key(self) -> Any:
        return parsePEMKey(self.key_pem().decode(), private=True, implementations=["python"])

    def write(self, directory: Path, stem: str, chain: tuple[Issued, ...] = ()) -> tuple[Path, Path]:
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_bytes(self.cert_pem() + b"".join(c.cert_pem() for c in chain))
        key_path.write_bytes(self.key_pem())
        return cert_path, key_path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str = "ibepsk test CA", kind: str = "p256", issuer: Issued | None = None) -> Issued:
    """A self-signed root, or with ``issuer`` an intermediate CA signed by it."""
    key = new_key(kind)
    signer = issuer.key if issuer is not None else key
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.certificate.subject if issuer is not None else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(_authority_key_id(issuer), critical=False)
    return Issued(builder.sign(signer, _sign_hash(signer)), key)


def _authority_key_id(issuer: Issued) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())


def issue(
    ca: Issued,
    common_name: str,
    *,
    kind: str = "p256",
    server: bool = True,
    dns_names: tuple[str, ...] = (),
    valid_days: float = 30,
    not_before_days: float = -1 / 24,
    web_extensions: bool = False,
) -> Issued:
    """A leaf certificate; ``web_extensions`` adds what public web CAs put in theirs (AIA, CRL, policy)."""
    key = new_key(kind)
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=not_before_days))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in (dns_names or (common_name,))]), critical=False
        )
        .add_extension(_authority_key_id(ca), critical=False)
    )
    if web_extensions:
        builder = _with_web_extensions(builder, key)
    return Issued(builder.sign(ca.key, _sign_hash(ca.key)), key)


def _with_web_extensions(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.CertificateBuilder:
    """The extensions a typical publicly trusted TLS server certificate carries (example.net URLs)."""
    access = x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(_OCSP_URL)),
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(_ISSUER_URL)
            ),
        ]
    )
    crl = x509.CRLDistributionPoints(
        [x509.DistributionPoint([x509.UniformResourceIdentifier(_CRL_URL)], None, None, None)]
    )
    policies = x509.CertificatePolicies([x509.PolicyInformation(_DOMAIN_VALIDATED, None)])
    return (
        builder.add_extension(access, critical=False)
        .add_extension(crl, critical=False)
        .add_extension(policies, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
    )
