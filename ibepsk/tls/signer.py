"""Signers for post-handshake client authentication: whatever holds the client's private key.

A :class:`Signer` is the client's certificate chain, the TLS 1.3 signature
schemes its key can produce and a ``sign`` operation, so the key itself may
live anywhere (a file, an HSM, a PKCS#11 token). :class:`KeySigner` wraps a
``cryptography`` private key; :class:`TlsliteKeySigner` wraps the tlslite-ng
key an application passed to ``handshakeClientCert``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import PublicKeyAlgorithmOID
from tlslite.x509 import X509
from tlslite.x509certchain import X509CertChain

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey


class SignatureScheme(IntEnum):
    """The TLS 1.3 signature schemes (RFC 8446 §4.2.3) a client may use in a CertificateVerify."""

    ECDSA_SECP256R1_SHA256 = 0x0403
    ECDSA_SECP384R1_SHA384 = 0x0503
    ECDSA_SECP521R1_SHA512 = 0x0603
    RSA_PSS_RSAE_SHA256 = 0x0804
    RSA_PSS_RSAE_SHA384 = 0x0805
    RSA_PSS_RSAE_SHA512 = 0x0806
    ED25519 = 0x0807
    ED448 = 0x0808
    RSA_PSS_PSS_SHA256 = 0x0809
    RSA_PSS_PSS_SHA384 = 0x080A
    RSA_PSS_PSS_SHA512 = 0x080B

    @property
    def tlslite(self) -> tuple[int, int]:
        """tlslite-ng's spelling: the two bytes of the code point."""
        return (self >> 8, self & 0xFF)

    @classmethod
    def from_tlslite(cls, value: tuple[int, int]) -> SignatureScheme | None:
        """The scheme for tlslite-ng's tuple, or None for anything TLS 1.3 client auth does not use here."""
        code = (value[0] << 8) | value[1]
        return cls(code) if code in cls._value2member_map_ else None

    @property
    def hash_name(self) -> str | None:
        """The hash the scheme signs with; None for EdDSA, which hashes internally."""
        if self in (SignatureScheme.ED25519, SignatureScheme.ED448):
            return None
        return "sha" + self.name.rsplit("_SHA", 1)[1]

    @property
    def hash_algorithm(self) -> hashes.HashAlgorithm | None:
        """The same hash as a ``cryptography`` algorithm."""
        return _HASHES[self.hash_name] if self.hash_name else None

    @property
    def is_rsa_pss(self) -> bool:
        return self.name.startswith("RSA_PSS_")


_CURVE_SCHEMES: dict[str, SignatureScheme] = {
    "secp256r1": SignatureScheme.ECDSA_SECP256R1_SHA256,
    "secp384r1": SignatureScheme.ECDSA_SECP384R1_SHA384,
    "secp521r1": SignatureScheme.ECDSA_SECP521R1_SHA512,
}

_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


def schemes_for_certificate(certificate: x509.Certificate) -> list[SignatureScheme]:
    """The TLS 1.3 schemes the key certified by ``certificate`` can sign with, strongest hash first."""
    key = certificate.public_key()
    if isinstance(key, ed25519.Ed25519PublicKey):
        return [SignatureScheme.ED25519]
    if isinstance(key, ed448.Ed448PublicKey):
        return [SignatureScheme.ED448]
    if isinstance(key, ec.EllipticCurvePublicKey):
        scheme = _CURVE_SCHEMES.get(key.curve.name)
        return [scheme] if scheme is not None else []
    if isinstance(key, rsa.RSAPublicKey):
        # an RSASSA-PSS key may only make rsa_pss_pss_* signatures, an rsaEncryption key only rsa_pss_rsae_*
        kind = "PSS" if certificate.public_key_algorithm_oid == PublicKeyAlgorithmOID.RSASSA_PSS else "RSAE"
        modulus_bytes = (key.key_size + 7) // 8
        return [
            SignatureScheme[f"RSA_PSS_{kind}_SHA{bits}"]
            for bits in (512, 384, 256)
            if modulus_bytes >= 2 * (bits // 8) + 2  # PSS needs room for the digest and an equally long salt
        ]
    return []


def pss_padding(hash_algorithm: hashes.HashAlgorithm) -> padding.PSS:
    """RSASSA-PSS as TLS 1.3 uses it: MGF1 with the same hash, salt as long as the digest."""
    return padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=hash_algorithm.digest_size)


@runtime_checkable
class Signer(Protocol):
    """What a client needs to answer a CertificateRequest; implement it for any key store."""

    @property
    def certificate_chain(self) -> Sequence[x509.Certificate]:
        """The client's chain, leaf first."""

    @property
    def signature_schemes(self) -> Sequence[SignatureScheme]:
        """The schemes the key can sign with, preferred first."""

    def sign(self, scheme: SignatureScheme, message: bytes) -> bytes:
        """Sign ``message`` (not a digest) with ``scheme``; the encoding TLS expects (DER for ECDSA)."""


class SignerError(ValueError):
    """A signer was set up with a key that does not match its certificate, or asked for a scheme it lacks."""


class _ChainSigner:
    """The chain and scheme bookkeeping both signers share."""

    def __init__(self, chain: Sequence[x509.Certificate]) -> None:
        if not chain:
            raise SignerError("a signer needs at least the client's own certificate")
        self._chain = list(chain)
        self._schemes = schemes_for_certificate(self._chain[0])
        if not self._schemes:
            raise SignerError("the certificate's key type cannot sign a TLS 1.3 CertificateVerify")

    @property
    def certificate_chain(self) -> list[x509.Certificate]:
        return list(self._chain)

    @property
    def signature_schemes(self) -> list[SignatureScheme]:
        return list(self._schemes)

    def _check_scheme(self, scheme: SignatureScheme) -> None:
        if scheme not in self._schemes:
            raise SignerError(f"this key cannot sign with {scheme.name}")


class KeySigner(_ChainSigner):
    """A :class:`Signer` over a ``cryptography`` private key and its certificate chain."""

    def __init__(self, chain: Sequence[x509.Certificate], key: PrivateKey) -> None:
        super().__init__(chain)
        if _spki(key.public_key()) != _spki(self._chain[0].public_key()):
            raise SignerError("the private key does not belong to the first certificate of the chain")
        self._key = key

    @classmethod
    def from_pem_files(cls, cert_path: str | Path, key_path: str | Path, password: bytes | None = None) -> KeySigner:
        """Load a PEM chain (leaf first) and its PEM private key."""
        chain = x509.load_pem_x509_certificates(Path(cert_path).read_bytes())
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password)
        if not isinstance(key, PrivateKey):
            raise SignerError(f"{key_path}: unsupported key type {type(key).__name__}")
        return cls(chain, key)

    def sign(self, scheme: SignatureScheme, message: bytes) -> bytes:
        self._check_scheme(scheme)
        key = self._key
        if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
            return key.sign(message)
        hash_algorithm = scheme.hash_algorithm
        assert hash_algorithm is not None, "only EdDSA schemes hash internally"
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(message, ec.ECDSA(hash_algorithm))
        return key.sign(message, pss_padding(hash_algorithm), hash_algorithm)


class TlsliteKeySigner(_ChainSigner):
    """A :class:`Signer` over the tlslite-ng chain and private key given to ``handshakeClientCert``."""

    def __init__(self, chain: X509CertChain, key: Any) -> None:
        super().__init__(certificates_from_tlslite(chain))
        self._key = key

    def sign(self, scheme: SignatureScheme, message: bytes) -> bytes:
        self._check_scheme(scheme)
        # tlslite's hashAndSign takes RSA's padding name, ignores it for ECDSA, and the hash for EdDSA
        pad = "pss" if scheme.is_rsa_pss else None
        salt = scheme.hash_algorithm.digest_size if scheme.hash_algorithm else None
        return bytes(self._key.hashAndSign(bytearray(message), pad, scheme.hash_name, salt))


def certificates_from_tlslite(chain: X509CertChain) -> list[x509.Certificate]:
    """tlslite-ng's parsed chain as ``cryptography`` certificates, leaf first."""
    return [x509.load_der_x509_certificate(bytes(cert.bytes)) for cert in chain.x509List]


def certificates_to_tlslite(certificates: Sequence[x509.Certificate]) -> X509CertChain:
    """``cryptography`` certificates as the chain tlslite-ng sends in a Certificate message."""
    return X509CertChain([_tlslite_certificate(cert) for cert in certificates])


def _tlslite_certificate(certificate: x509.Certificate) -> X509:
    parsed = X509()
    parsed.parseBinary(bytearray(certificate.public_bytes(serialization.Encoding.DER)))
    return parsed


def _spki(key: Any) -> bytes:
    der: bytes = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der
