"""TLS 1.3's HKDF-Expand-Label and Derive-Secret (RFC 8446 §7.1) on OpenSSL's one-shot HMAC, the
session-ticket key derivation tlslite-ng builds from them, and drop-in twins of tlslite-ng's key schedule
functions (:data:`TLSLITE_KEY_SCHEDULE`).

tlslite-ng computes these with :mod:`hmac` objects and its ``Writer`` in Python, about 8 µs per
HKDF-Expand-Label; :func:`hmac.digest` (OpenSSL underneath) does one HMAC in a single call. The bytes are the same.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

#: tlslite-ng's ticket AEADs all take 12-byte nonces.
TICKET_IV_LENGTH = 12


def hkdf_expand(prk: bytes, info: bytes, length: int, hash_name: str) -> bytes:
    """HKDF-Expand (RFC 5869 §2.3)."""
    output, block, counter = b"", b"", 1
    while len(output) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), hash_name)
        output += block
        counter += 1
    return output[:length]


def hkdf_expand_label(secret: bytes, label: bytes, context: bytes, length: int, hash_name: str) -> bytes:
    """HKDF-Expand-Label (RFC 8446 §7.1)."""
    full_label = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full_label)]) + full_label + bytes([len(context)]) + context
    return hkdf_expand(secret, info, length, hash_name)


@functools.cache
def _empty_hash(hash_name: str) -> bytes:
    return hashlib.new(hash_name, b"").digest()


def derive_secret_without_transcript(secret: bytes, label: bytes, hash_name: str) -> bytes:
    """Derive-Secret(secret, label, "") (RFC 8446 §7.1)."""
    empty_hash = _empty_hash(hash_name)
    return hkdf_expand_label(secret, label, empty_hash, len(empty_hash), hash_name)


def ticket_key_and_iv(nonce: bytes, user_key: bytes, ticket_cipher: str) -> tuple[bytearray, bytearray]:
    """The AEAD key and IV tlslite-ng seals a session ticket with, given the ticket's nonce and a
    ``settings.ticketKeys`` entry: the nonce and the key mixed in a TLS 1.3-style key schedule
    (SHA-256 for aes128gcm, SHA-384 for every other ticket cipher)."""
    hash_name = "sha256" if ticket_cipher == "aes128gcm" else "sha384"
    zeros = bytes(hashlib.new(hash_name).digest_size)
    secret = hmac.digest(zeros, nonce, hash_name)
    secret = derive_secret_without_transcript(secret, b"derived", hash_name)
    secret = hmac.digest(secret, user_key, hash_name)
    ticket_secret = derive_secret_without_transcript(secret, b"SessionTicket secret", hash_name)
    key = hkdf_expand_label(ticket_secret, b"key", b"", len(user_key), hash_name)
    iv = hkdf_expand_label(ticket_secret, b"iv", b"", TICKET_IV_LENGTH, hash_name)
    return bytearray(key), bytearray(iv)


# --- tlslite-ng's key schedule functions, same arguments and results (bytearrays) ------------------------


def secure_hmac(key: Any, message: Any, algorithm: str) -> bytearray:
    """tlslite-ng's ``secureHMAC(k, b, algorithm)``."""
    return bytearray(hmac.digest(key, message, algorithm))


def tlslite_hkdf_expand_label(secret: Any, label: Any, hash_value: Any, length: int, algorithm: str) -> bytearray:
    """tlslite-ng's ``HKDF_expand_label(secret, label, hashValue, length, algorithm)``."""
    return bytearray(hkdf_expand_label(secret, bytes(label), bytes(hash_value), length, algorithm))


def tlslite_derive_secret(secret: Any, label: Any, handshake_hashes: Any, algorithm: str) -> bytearray:
    """tlslite-ng's ``derive_secret(secret, label, handshake_hashes, algorithm)``: Derive-Secret over the
    transcript so far (a ``HandshakeHashes``), or over an empty one for None."""
    if handshake_hashes is None:
        return bytearray(derive_secret_without_transcript(secret, bytes(label), algorithm))
    transcript_hash = bytes(handshake_hashes.digest(algorithm))
    return bytearray(hkdf_expand_label(secret, bytes(label), transcript_hash, len(transcript_hash), algorithm))


#: The names tlslite-ng's modules import its key schedule functions under, and their twins here.
TLSLITE_KEY_SCHEDULE: dict[str, Callable[..., bytearray]] = {
    "secureHMAC": secure_hmac,
    "HKDF_expand_label": tlslite_hkdf_expand_label,
    "derive_secret": tlslite_derive_secret,
}
