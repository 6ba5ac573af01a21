"""The cryptography-backed AEADs, key exchanges and keys against tlslite-ng's pure-Python ones, byte for byte."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from tlslite.constants import CipherSuite, GroupName
from tlslite.errors import TLSIllegalParameterException
from tlslite.keyexchange import ECDHKeyExchange
from tlslite.recordlayer import RecordLayer
from tlslite.utils import cipherfactory
from tlslite.utils.cryptomath import secureHash
from tlslite.utils.keyfactory import parsePEMKey
from tlslite.utils.rsakey import RSAKey

from ibepsk.tls._crypto.aead import (
    CryptographyAead,
    create_aes_ccm,
    create_aes_ccm_8,
    create_aes_gcm,
    create_chacha20_poly1305,
)
from ibepsk.tls._crypto.ecdh import key_exchange_for
from ibepsk.tls._crypto.keys import CryptographyECDSAKey, CryptographyEdDSAKey, CryptographyRSAKey
from ibepsk.tls.accel import accelerate_key, accelerated_cipher_settings

# --- AEAD ----------------------------------------------------------------------------------

AEADS = [
    (create_aes_gcm, cipherfactory.createAESGCM, 16),
    (create_aes_gcm, cipherfactory.createAESGCM, 32),
    (create_aes_ccm, cipherfactory.createAESCCM, 16),
    (create_aes_ccm, cipherfactory.createAESCCM, 32),
    (create_aes_ccm_8, cipherfactory.createAESCCM_8, 16),
    (create_chacha20_poly1305, cipherfactory.createCHACHA20, 32),
]


@pytest.mark.parametrize(("ours", "stock", "key_length"), AEADS)
def test_aead_seals_the_bytes_tlslite_seals(
    ours: Callable[..., Any], stock: Callable[..., Any], key_length: int
) -> None:
    key, nonce, aad = bytearray(os.urandom(key_length)), bytearray(os.urandom(12)), bytearray(os.urandom(13))
    plaintext = bytearray(os.urandom(1001))  # not a whole number of blocks
    accelerated, python = ours(key), stock(key, ["python"])
    assert (accelerated.name, accelerated.tagLength, accelerated.nonceLength) == (
        python.name,
        python.tagLength,
        python.nonceLength,
    )
    assert (accelerated.isAEAD, accelerated.isBlockCipher, accelerated.implementation) == (True, False, "cryptography")
    sealed = accelerated.seal(nonce, plaintext, aad)
    assert sealed == python.seal(nonce, plaintext, aad)
    assert accelerated.open(nonce, sealed, aad) == python.open(nonce, sealed, aad) == plaintext


@pytest.mark.parametrize(("ours", "stock", "key_length"), AEADS)
def test_aead_open_returns_none_like_tlslite(
    ours: Callable[..., Any], stock: Callable[..., Any], key_length: int
) -> None:
    key, nonce, aad = bytearray(os.urandom(key_length)), bytearray(os.urandom(12)), bytearray(b"header")
    accelerated, python = ours(key), stock(key, ["python"])
    sealed = accelerated.seal(nonce, bytearray(b"record"), aad)
    flipped = bytearray(sealed)
    flipped[0] ^= 1
    for cipher in (accelerated, python):
        assert cipher.open(nonce, flipped, aad) is None
        assert cipher.open(nonce, sealed, bytearray(b"Header")) is None
        assert cipher.open(nonce, sealed[: accelerated.tagLength - 1], aad) is None


def test_aead_rejects_bad_nonce_and_key_lengths() -> None:
    cipher = create_aes_gcm(bytearray(16))
    with pytest.raises(ValueError, match="nonce"):
        cipher.seal(bytearray(8), bytearray(b"x"), bytearray())
    with pytest.raises(ValueError, match="nonce"):
        cipher.open(bytearray(16), bytearray(32), bytearray())
    with pytest.raises(ValueError, match="AES key"):
        create_aes_gcm(bytearray(24))
    with pytest.raises(ValueError):
        create_chacha20_poly1305(bytearray(16))


@pytest.mark.parametrize(
    ("suite", "accelerated"),
    [
        (CipherSuite.TLS_AES_128_GCM_SHA256, True),
        (CipherSuite.TLS_AES_256_GCM_SHA384, True),
        (CipherSuite.TLS_CHACHA20_POLY1305_SHA256, True),
        (CipherSuite.TLS_AES_128_CCM_8_SHA256, True),
        (CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, True),
        (CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, False),
    ],
)
def test_record_layer_factory_swaps_only_aead_ciphers(suite: int, accelerated: bool) -> None:
    key_length, iv_length, factory = accelerated_cipher_settings(suite)
    stock_key_length, stock_iv_length, stock_factory = RecordLayer._getCipherSettings(suite)
    assert (key_length, iv_length) == (stock_key_length, stock_iv_length)
    if accelerated:
        assert isinstance(factory(bytearray(key_length), None), CryptographyAead)
    else:
        assert factory is stock_factory


# --- key exchange ----------------------------------------------------------------------------

GROUPS = ["x25519", "x448", "secp256r1", "secp384r1", "secp521r1"]


def exchanges(group: str) -> tuple[Any, Any]:
    code = getattr(GroupName, group)
    ours = key_exchange_for(code, (3, 4))
    assert ours is not None
    return ours, ECDHKeyExchange(code, (3, 4))


@pytest.mark.parametrize("group", GROUPS)
def test_key_exchange_agrees_with_tlslite(group: str) -> None:
    ours, stock = exchanges(group)
    our_private, stock_private = ours.get_random_private_key(), stock.get_random_private_key()
    our_share, stock_share = ours.calc_public_value(our_private), stock.calc_public_value(stock_private)
    assert len(our_share) == len(stock_share)
    assert our_share[0] == stock_share[0] == 4 or group.startswith("x")
    shared = ours.calc_shared_key(our_private, stock_share)
    assert shared == stock.calc_shared_key(stock_private, our_share)
    assert len(shared) == (len(our_share) - 1) // 2 if group.startswith("secp") else len(our_share)


@pytest.mark.parametrize("group", ["secp256r1", "secp384r1"])
def test_compressed_points_where_the_caller_allows_them(group: str) -> None:
    ours, stock = exchanges(group)
    our_private, stock_private = ours.get_random_private_key(), stock.get_random_private_key()
    formats = ("uncompressed", "compressed")
    our_share = ours.calc_public_value(our_private, "compressed")
    stock_share = stock.calc_public_value(stock_private, "compressed")
    assert our_share[0] in (2, 3) and len(our_share) == len(stock_share)
    assert ours.calc_shared_key(our_private, stock_share, formats) == stock.calc_shared_key(
        stock_private, our_share, formats
    )


BAD_SHARES = [
    ("x25519", bytes(31)),
    ("x25519", bytes(32)),
    ("x25519", b"\x01" + bytes(31)),  # u = 1, a point of small order
    ("x448", bytes(56)),
    ("secp256r1", b""),
    ("secp256r1", b"\x04" + bytes(64)),
    ("secp256r1", b"\x04" + bytes(63)),
    ("secp256r1", b"\x02" + bytes(32)),
    ("secp384r1", b"\x05" + bytes(96)),
]


@pytest.mark.parametrize(("group", "share"), BAD_SHARES)
def test_bad_peer_share_raises_what_tlslite_raises(group: str, share: bytes) -> None:
    for exchange in exchanges(group):
        with pytest.raises(TLSIllegalParameterException):
            exchange.calc_shared_key(exchange.get_random_private_key(), bytearray(share))


def test_empty_point_format_list_allows_both_encodings_as_in_tlslite() -> None:
    ours, stock = exchanges("secp256r1")
    for point_format in ("uncompressed", "compressed"):
        peer_private = stock.get_random_private_key()
        peer_share = stock.calc_public_value(peer_private, point_format)
        for exchange in (ours, stock):
            private = exchange.get_random_private_key()
            shared = exchange.calc_shared_key(private, peer_share, [])
            assert shared == stock.calc_shared_key(peer_private, exchange.calc_public_value(private))


def test_groups_cryptography_does_not_cover_are_left_to_tlslite() -> None:
    assert key_exchange_for(GroupName.ffdhe2048, (3, 4)) is None
    assert key_exchange_for(GroupName.brainpoolP256r1, (3, 3)) is None


# --- signatures ------------------------------------------------------------------------------

KINDS: dict[str, Callable[[], Any]] = {
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "p521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "ed448": ed448.Ed448PrivateKey.generate,
    "rsa2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
}
TWIN_CLASSES = {
    "p": CryptographyECDSAKey,
    "e": CryptographyEdDSAKey,
    "r": CryptographyRSAKey,
}
#: The hash each kind signs with in TLS 1.3 (ECDSA: the curve's; EdDSA: none).
TLS13_HASH = {"p256": "sha256", "p384": "sha384", "p521": "sha512", "rsa2048": "sha256"}


def tlslite_private_key(key: Any) -> Any:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return parsePEMKey(pem.decode(), private=True, implementations=["python"])


@pytest.fixture(scope="module")
def stock_keys() -> dict[str, Any]:
    return {kind: tlslite_private_key(generate()) for kind, generate in KINDS.items()}


def sign_as_tls13(key: Any, kind: str, message: bytes) -> Any:
    """Sign as tlslite-ng signs a TLS 1.3 CertificateVerify; returns the signature."""
    if kind.startswith("ed"):
        return key.hashAndSign(bytearray(message))
    hash_name = TLS13_HASH[kind]
    digest = secureHash(bytearray(message), hash_name)
    if kind.startswith("rsa"):
        return key.sign(digest, "pss", hash_name, len(digest))
    return key.sign(digest, None, hash_name, None)


def verify_as_tls13(key: Any, kind: str, signature: Any, message: bytes) -> bool:
    if kind.startswith("ed"):
        return bool(key.hashAndVerify(signature, bytearray(message)))
    hash_name = TLS13_HASH[kind]
    digest = secureHash(bytearray(message), hash_name)
    if kind.startswith("rsa"):
        return bool(key.verify(signature, digest, "pss", hash_name, len(digest)))
    return bool(key.verify(signature, digest, None, hash_name, None))


@pytest.mark.parametrize("kind", KINDS)
def test_twin_keeps_what_tlslite_reads(kind: str, stock_keys: dict[str, Any]) -> None:
    stock = stock_keys[kind]
    twin = accelerate_key(stock)
    assert isinstance(twin, TWIN_CLASSES[kind[0]]) and isinstance(twin, type(stock))
    assert (len(twin), twin.key_type, twin.hasPrivateKey()) == (len(stock), stock.key_type, True)
    assert getattr(twin, "curve_name", None) == getattr(stock, "curve_name", None)
    assert accelerate_key(stock) is twin and accelerate_key(twin) is twin


@pytest.mark.parametrize("kind", KINDS)
def test_signatures_cross_verify_with_tlslite(kind: str, stock_keys: dict[str, Any]) -> None:
    stock = stock_keys[kind]
    twin = accelerate_key(stock)
    message = os.urandom(100)
    ours = sign_as_tls13(twin, kind, message)
    assert "_signer" in vars(twin), "the twin must have signed with cryptography"
    assert verify_as_tls13(stock, kind, ours, message)
    assert verify_as_tls13(twin, kind, sign_as_tls13(stock, kind, message), message)
    assert not verify_as_tls13(twin, kind, ours, message + b"!")
    tampered = bytearray(ours)
    tampered[-1] ^= 1
    assert not verify_as_tls13(twin, kind, tampered, message)
    assert not verify_as_tls13(twin, kind, bytearray(b"\x30\x00"), message)


@pytest.mark.parametrize("kind", ["ed25519", "ed448"])
def test_eddsa_signatures_are_the_bytes_tlslite_makes(kind: str, stock_keys: dict[str, Any]) -> None:
    stock = stock_keys[kind]
    message = bytearray(os.urandom(64))
    assert accelerate_key(stock).hashAndSign(message) == stock.hashAndSign(message)


def test_rsa_pkcs1_signatures_are_the_bytes_tlslite_makes(stock_keys: dict[str, Any]) -> None:
    stock = stock_keys["rsa2048"]
    twin = accelerate_key(stock)
    message = bytearray(os.urandom(64))
    for hash_name in ("sha256", "sha384", "sha512"):
        signature = twin.hashAndSign(message, "PKCS1", hash_name)
        assert signature == stock.hashAndSign(message, "PKCS1", hash_name)
        assert twin.hashAndVerify(signature, message, "PKCS1", hash_name)


def test_rsa_requests_cryptography_does_not_cover_stay_with_tlslite(stock_keys: dict[str, Any]) -> None:
    stock = stock_keys["rsa2048"]
    twin = accelerate_key(stock)
    # TLS 1.0/1.1 sign a raw MD5+SHA-1 concatenation; SHA-1 DigestInfo verifies with and without NULL.
    raw = bytearray(os.urandom(36))
    assert twin.sign(raw) == stock.sign(raw)
    assert twin.verify(stock.sign(raw), raw)
    digest = secureHash(bytearray(b"legacy"), "sha1")
    without_null = stock.sign(RSAKey.addPKCS1SHA1Prefix(digest, withNULL=False))
    assert twin.verify(without_null, digest, "pkcs1", "sha1")
    assert not twin.verify(without_null, digest, "pkcs1", "sha256")


def test_ecdsa_digest_of_the_curve_size_verifies_whatever_the_hash_name(stock_keys: dict[str, Any]) -> None:
    # TLS 1.2 truncates the handshake hash to the curve size and passes the hash's name along.
    stock = stock_keys["p256"]
    digest = secureHash(bytearray(b"server key exchange"), "sha384")[:32]
    assert accelerate_key(stock).verify(stock.sign(digest, None, "sha384", None), digest, None, "sha384", None)


def test_keys_cryptography_does_not_cover_are_returned_unchanged() -> None:
    dsa_key = tlslite_private_key(dsa.generate_private_key(key_size=2048))
    assert dsa_key.key_type == "dsa" and accelerate_key(dsa_key) is dsa_key
    assert accelerate_key(None) is None
