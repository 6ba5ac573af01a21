"""Signing keys for tlslite-ng, backed by ``cryptography``.

:func:`accelerate_key` turns one of tlslite-ng's pure-Python keys (RSA,
ECDSA on the NIST curves, Ed25519/Ed448) into a subclass of the same class
that signs and verifies with ``cryptography``. The subclass keeps every
attribute tlslite-ng reads (``key_type``, ``curve_name``, ``n``,
``public_key``, ``len(key)``, ...); it overrides only the primitive
sign/verify methods and hands any request it does not cover (raw PKCS#1 over
TLS 1.0 digests, SHA-1 DigestInfo variants, digests of odd lengths) back to
tlslite-ng's code. Signatures use the encodings tlslite-ng and RFC 8446 use:
DER ECDSA-Sig-Value, raw EdDSA, RSASSA-PSS with the salt length asked for.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from tlslite.utils.python_ecdsakey import Python_ECDSAKey
from tlslite.utils.python_eddsakey import Python_EdDSAKey
from tlslite.utils.python_rsakey import Python_RSAKey

IMPLEMENTATION = "cryptography"

_HASHES_BY_NAME: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# ECDSA signs a digest's leading bits whatever hash made it, so any hash of the right length names it.
_HASHES_BY_DIGEST_LENGTH: dict[int, type[hashes.HashAlgorithm]] = {
    20: hashes.SHA1,
    28: hashes.SHA224,
    32: hashes.SHA256,
    48: hashes.SHA384,
    64: hashes.SHA512,
}
_NIST_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "NIST256p": ec.SECP256R1,
    "NIST384p": ec.SECP384R1,
    "NIST521p": ec.SECP521R1,
}


def _hash_named(name: str | None) -> hashes.HashAlgorithm | None:
    algorithm = _HASHES_BY_NAME.get((name or "").lower())
    return algorithm() if algorithm else None


def _digest_hash(digest: bytearray, name: str | None = None) -> hashes.HashAlgorithm | None:
    """The hash named ``name`` (or, unnamed, any of ``digest``'s length); None unless the digest fits it."""
    algorithm = _HASHES_BY_NAME.get(name.lower()) if name else _HASHES_BY_DIGEST_LENGTH.get(len(digest))
    hash_algorithm = algorithm() if algorithm else None
    if hash_algorithm is None or hash_algorithm.digest_size != len(digest):
        return None
    return hash_algorithm


_Twin = TypeVar("_Twin")


def _twin(cls: type[_Twin], key: Any) -> _Twin:
    """A ``cls`` carrying ``key``'s attributes: tlslite-ng reads them, the subclass adds the backend."""
    twin = cls.__new__(cls)
    twin.__dict__.update(key.__dict__)
    return twin


class CryptographyECDSAKey(Python_ECDSAKey):  # type: ignore[misc]
    """tlslite-ng's ECDSA key (P-256, P-384, P-521) with signing and verification in cryptography."""

    implementation = IMPLEMENTATION

    @cached_property
    def _curve(self) -> ec.EllipticCurve:
        return _NIST_CURVES[self.public_key.curve.name]()

    @cached_property
    def _signer(self) -> ec.EllipticCurvePrivateKey:
        return ec.derive_private_key(int(self.private_key.privkey.secret_multiplier), self._curve)

    @cached_property
    def _verifier(self) -> ec.EllipticCurvePublicKey:
        return ec.EllipticCurvePublicKey.from_encoded_point(self._curve, self.public_key.to_string("uncompressed"))

    def _sign(self, data: bytearray, hAlg: str) -> bytearray:
        algorithm = _digest_hash(data)
        if algorithm is None:
            return super()._sign(data, hAlg)  # type: ignore[no-any-return]
        return bytearray(self._signer.sign(bytes(data), ec.ECDSA(Prehashed(algorithm))))

    def _hashAndSign(self, data: bytearray, hAlg: str) -> bytearray:
        algorithm = _hash_named(hAlg)
        if algorithm is None:
            return super()._hashAndSign(data, hAlg)  # type: ignore[no-any-return]
        return bytearray(self._signer.sign(bytes(data), ec.ECDSA(algorithm)))

    def _verify(self, signature: bytearray, hash_bytes: bytearray) -> bool:
        algorithm = _digest_hash(hash_bytes)
        if algorithm is None:
            return super()._verify(signature, hash_bytes)  # type: ignore[no-any-return]
        return _verifies(self._verifier.verify, bytes(signature), bytes(hash_bytes), ec.ECDSA(Prehashed(algorithm)))


def _verifies(verify: Callable[..., None], *args: Any) -> bool:
    """cryptography raises on a bad signature; tlslite-ng's key interface answers False."""
    try:
        verify(*args)
    except InvalidSignature:
        return False
    return True


class CryptographyEdDSAKey(Python_EdDSAKey):  # type: ignore[misc]
    """tlslite-ng's Ed25519/Ed448 key with signing and verification in cryptography."""

    implementation = IMPLEMENTATION

    @cached_property
    def _signer(self) -> ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey:
        seed = bytes(self.private_key.to_string())
        if self.curve_name == "Ed25519":
            return ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        return ed448.Ed448PrivateKey.from_private_bytes(seed)

    @cached_property
    def _verifier(self) -> ed25519.Ed25519PublicKey | ed448.Ed448PublicKey:
        encoded = bytes(self.public_key.to_string())
        if self.curve_name == "Ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(encoded)
        return ed448.Ed448PublicKey.from_public_bytes(encoded)

    def _hashAndSign(self, data: bytearray) -> bytearray:
        return bytearray(self._signer.sign(bytes(data)))

    def _hashAndVerify(self, signature: bytearray, data: bytearray) -> bool:
        return _verifies(self._verifier.verify, bytes(signature), bytes(data))


class CryptographyRSAKey(Python_RSAKey):  # type: ignore[misc]
    """tlslite-ng's RSA key with RSASSA-PSS and PKCS#1 v1.5 (over a named hash) in cryptography."""

    implementation = IMPLEMENTATION

    @cached_property
    def _signer(self) -> rsa.RSAPrivateKey:
        public = rsa.RSAPublicNumbers(int(self.e), int(self.n))
        p, q, d, dp, dq, q_inv = (int(x) for x in (self.p, self.q, self.d, self.dP, self.dQ, self.qInv))
        return rsa.RSAPrivateNumbers(p, q, d, dp, dq, q_inv, public).private_key()

    @cached_property
    def _verifier(self) -> rsa.RSAPublicKey:
        return rsa.RSAPublicNumbers(int(self.e), int(self.n)).public_key()

    def _scheme(
        self, digest: bytearray, padding_name: str, hash_name: str | None, salt_length: int | None
    ) -> tuple[rsa_padding.AsymmetricPadding, Prehashed] | None:
        """cryptography's padding and hash for a tlslite-ng request, or None to leave it to tlslite-ng."""
        padding_name = padding_name.lower()
        algorithm = _digest_hash(digest, hash_name) if hash_name else None
        if algorithm is None:
            return None  # raw PKCS#1 (TLS 1.0/1.1 MD5+SHA-1), or a digest that does not fit its hash
        if padding_name == "pss" and salt_length is not None:
            return rsa_padding.PSS(rsa_padding.MGF1(algorithm), salt_length), Prehashed(algorithm)
        # tlslite-ng accepts SHA-1 DigestInfo with and without NULL parameters, and refuses PKCS#1
        # v1.5 with an RSASSA-PSS-only key; both stay with its own code.
        if padding_name == "pkcs1" and self.key_type == "rsa" and hash_name != "sha1":
            return rsa_padding.PKCS1v15(), Prehashed(algorithm)
        return None

    def sign(
        self, data: bytearray, padding: str = "pkcs1", hashAlg: str | None = None, saltLen: int | None = None
    ) -> bytearray:
        scheme = self._scheme(data, padding, hashAlg, saltLen) if self.hasPrivateKey() else None
        if scheme is None:
            return super().sign(data, padding, hashAlg, saltLen)  # type: ignore[no-any-return]
        return bytearray(self._signer.sign(bytes(data), *scheme))

    def verify(
        self,
        sigBytes: bytearray,
        data: bytearray,
        padding: str = "pkcs1",
        hashAlg: str | None = None,
        saltLen: int | None = None,
    ) -> bool:
        scheme = self._scheme(data, padding, hashAlg, saltLen)
        if scheme is None:
            return super().verify(sigBytes, data, padding, hashAlg, saltLen)  # type: ignore[no-any-return]
        return _verifies(self._verifier.verify, bytes(sigBytes), bytes(data), *scheme)


_ACCELERATED = (CryptographyECDSAKey, CryptographyEdDSAKey, CryptographyRSAKey)
_cache: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def _twin_class(key: Any) -> type[Any] | None:
    """The accelerated class for ``key``, if cryptography covers it (exact tlslite-ng types only)."""
    kind = type(key)
    if kind is Python_ECDSAKey and key.public_key.curve.name in _NIST_CURVES:
        return CryptographyECDSAKey
    if kind is Python_EdDSAKey and key.curve_name in ("Ed25519", "Ed448"):
        return CryptographyEdDSAKey
    # Private RSA keys need the CRT parameters cryptography builds its key from.
    if kind is Python_RSAKey and (key.p or not key.hasPrivateKey()):
        return CryptographyRSAKey
    return None


def accelerate_key(key: Any) -> Any:
    """The cryptography-backed twin of a tlslite-ng key; any other key (or None) is returned as it is.

    Twins are cached per key object, so a server's key is converted once.
    """
    if key is None or isinstance(key, _ACCELERATED):
        return key
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    cls = _twin_class(key)
    if cls is None:
        return key
    twin = _twin(cls, key)
    with _cache_lock:
        return _cache.setdefault(key, twin)
