"""AEAD ciphers for tlslite-ng's record layer, backed by ``cryptography``.

tlslite-ng's record layer uses a cipher object through a small interface:
``seal(nonce, plaintext, aad)``, ``open(nonce, ciphertext, aad)`` (``None``
when the tag does not verify, which the record layer turns into a
``bad_record_mac`` alert), and the attributes ``name``, ``key``,
``implementation``, ``isAEAD``, ``isBlockCipher``, ``nonceLength`` and
``tagLength``. Names match tlslite-ng's, since its record layer branches on them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
from cryptography.utils import Buffer

#: What ``getCipherImplementation()`` reports for these ciphers.
IMPLEMENTATION = "cryptography"
#: TLS 1.2 and 1.3 AEAD nonces are 96 bits (RFC 5116, RFC 8446 §5.3).
NONCE_LENGTH = 12
FULL_TAG = 16
SHORT_TAG = 8
AES_KEY_LENGTHS = (16, 32)


class _AeadPrimitive(Protocol):
    def encrypt(self, nonce: Buffer, data: Buffer, associated_data: Buffer | None) -> bytes: ...

    def decrypt(self, nonce: Buffer, data: Buffer, associated_data: Buffer | None) -> bytes: ...


class CryptographyAead:
    """One AEAD key in tlslite-ng's cipher interface."""

    isBlockCipher = False  # tlslite-ng's attribute names
    isAEAD = True
    nonceLength = NONCE_LENGTH
    implementation = IMPLEMENTATION

    def __init__(
        self, name: str, key: bytearray, keyed: Callable[[bytes], _AeadPrimitive], tag_length: int = FULL_TAG
    ) -> None:
        self.name = name
        self.key = key
        self.tagLength = tag_length
        self._keyed = keyed
        self._primitive: _AeadPrimitive | None = keyed(bytes(key))

    @property
    def primitive(self) -> _AeadPrimitive:
        """cryptography's AEAD object, keyed again if :meth:`release` freed it; for the record fast path
        (:mod:`ibepsk.tls.records`)."""
        if self._primitive is None:
            self._primitive = self._keyed(bytes(self.key))
        return self._primitive

    def seal(self, nonce: bytearray, plaintext: bytearray, data: bytearray) -> bytearray:
        """Encrypt ``plaintext`` and append the tag; ``data`` is authenticated only."""
        _check_nonce(nonce)
        return bytearray(self.primitive.encrypt(nonce, plaintext, data))

    def open(self, nonce: bytearray, ciphertext: bytearray, data: bytearray) -> bytearray | None:
        """The plaintext, or ``None`` when the tag does not verify (as tlslite-ng's ciphers do)."""
        _check_nonce(nonce)
        try:
            return bytearray(self.primitive.decrypt(nonce, ciphertext, data))
        except InvalidTag:
            return None

    def release(self) -> None:
        """Free the keyed primitive (its OpenSSL contexts take about 2.5 KiB for AES-GCM); the next ``seal`` or
        ``open`` keys one again (about 2 µs). For connections that wait for their peer."""
        self._primitive = None


def _check_nonce(nonce: bytearray) -> None:
    if len(nonce) != NONCE_LENGTH:
        raise ValueError(f"AEAD nonce must be {NONCE_LENGTH} bytes, got {len(nonce)}")


def _check_aes_key(key: bytearray) -> None:
    if len(key) not in AES_KEY_LENGTHS:
        raise ValueError(f"AES key must be 16 or 32 bytes, got {len(key)}")


# The factories take (and ignore) tlslite-ng's ``implList`` argument: they *are* the implementation choice.


def create_aes_gcm(key: bytearray, implementations: object = None) -> CryptographyAead:
    _check_aes_key(key)
    return CryptographyAead(f"aes{len(key) * 8}gcm", key, AESGCM)


def create_aes_ccm(key: bytearray, implementations: object = None) -> CryptographyAead:
    _check_aes_key(key)
    return CryptographyAead(f"aes{len(key) * 8}ccm", key, AESCCM)


def create_aes_ccm_8(key: bytearray, implementations: object = None) -> CryptographyAead:
    _check_aes_key(key)
    return CryptographyAead(f"aes{len(key) * 8}ccm_8", key, _aes_ccm_8, SHORT_TAG)


def create_chacha20_poly1305(key: bytearray, implementations: object = None) -> CryptographyAead:
    return CryptographyAead("chacha20-poly1305", key, ChaCha20Poly1305)


def _aes_ccm_8(key: bytes) -> AESCCM:
    return AESCCM(key, SHORT_TAG)
