"""TLS 1.3's HKDF-Expand-Label and Derive-Secret (RFC 8446 §7.1) on OpenSSL's one-shot HMAC, and the
session-ticket key derivation tlslite-ng builds from them.

tlslite-ng computes these with :mod:`hmac` objects in Python, about 10 µs per HKDF-Expand-Label;
:func:`hmac.digest` (OpenSSL underneath) does one HMAC in a single call. The bytes are the same.
"""

from __future__ import annotations

import hashlib
import hmac

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


def derive_secret_without_transcript(secret: bytes, label: bytes, hash_name: str) -> bytes:
    """Derive-Secret(secret, label, "") (RFC 8446 §7.1)."""
    empty_hash = hashlib.new(hash_name, b"").digest()
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
