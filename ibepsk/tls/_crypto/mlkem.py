"""Hybrid ECDHE-ML-KEM key exchange for tlslite-ng, backed by ``cryptography``.

X25519MLKEM768 (0x11EC) and SecP256r1MLKEM768 (0x11EB) as in draft-ietf-tls-ecdhe-mlkem: the
client's share is an ML-KEM-768 encapsulation key and an ECDH share, the server's an ML-KEM
ciphertext and an ECDH share, and the shared secret is the concatenation of both secrets, in the
same order on all three (ML-KEM first for X25519MLKEM768, the ECDH part first for
SecP256r1MLKEM768). The objects follow tlslite-ng 0.9's ``KEMKeyExchange`` interface
(``get_random_private_key`` and ``calc_public_value`` for the client's share, ``encapsulate_key``
for the server's, ``calc_shared_key`` for the client's secret) and send the same bytes; bad peer
shares raise the exception tlslite-ng raises, so the same alert (illegal_parameter) goes out.
tlslite-ng (0.8.2 and 0.9.0b2) names both groups but runs them only with the optional kyber-py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import mlkem
from tlslite.constants import GroupName
from tlslite.errors import TLSIllegalParameterException

from .ecdh import key_exchange_for as ecdh_key_exchange_for

__all__ = ["GROUPS", "GROUP_NAMES", "HybridKemKeyExchange", "key_exchange_for"]

_ENCAPSULATION_KEY_LENGTH = 1184
_CIPHERTEXT_LENGTH = 1088


@dataclass(frozen=True)
class _Hybrid:
    classic_group: int
    classic_share_length: int
    ml_kem_first: bool


#: tlslite-ng's names of the hybrid groups, as in HandshakeSettings.eccCurves / keyShares.
_HYBRIDS_BY_NAME = {
    "x25519mlkem768": _Hybrid(GroupName.x25519, 32, ml_kem_first=True),
    "secp256r1mlkem768": _Hybrid(GroupName.secp256r1, 65, ml_kem_first=False),
}
_HYBRIDS = {getattr(GroupName, name): hybrid for name, hybrid in _HYBRIDS_BY_NAME.items()}

#: The hybrid groups, by name and by code point.
GROUP_NAMES = tuple(_HYBRIDS_BY_NAME)
GROUPS = frozenset(_HYBRIDS)

_Private = tuple[mlkem.MLKEM768PrivateKey, Any]


class HybridKemKeyExchange:
    """ECDHE-ML-KEM-768: the client generates and decapsulates, the server encapsulates."""

    def __init__(self, group: int, version: tuple[int, int]) -> None:
        self.group = group
        self._hybrid = _HYBRIDS[group]
        classic = ecdh_key_exchange_for(self._hybrid.classic_group, version)
        assert classic is not None  # both classic halves are cryptography-backed groups
        self._classic = classic

    def get_random_private_key(self) -> _Private:
        return mlkem.MLKEM768PrivateKey.generate(), self._classic.get_random_private_key()

    def calc_public_value(self, private: _Private, point_format: str = "uncompressed") -> bytearray:
        ml_kem_key, classic_key = private
        encapsulation_key = ml_kem_key.public_key().public_bytes_raw()
        return self._joined(encapsulation_key, bytes(self._classic.calc_public_value(classic_key, point_format)))

    def encapsulate_key(self, public: bytearray) -> tuple[bytearray, bytearray]:
        """The server's side: (shared secret, key share) for the client's ``public`` share."""
        encapsulation_key, classic_peer = self._split(public, _ENCAPSULATION_KEY_LENGTH)
        classic_key = self._classic.get_random_private_key()
        classic_secret = bytes(self._classic.calc_shared_key(classic_key, bytearray(classic_peer)))
        try:
            ml_kem_secret, ciphertext = mlkem.MLKEM768PublicKey.from_public_bytes(encapsulation_key).encapsulate()
        except ValueError:  # FIPS 203 §7.2's modulus check
            raise TLSIllegalParameterException("Invalid PQC key from peer") from None
        classic_share = bytes(self._classic.calc_public_value(classic_key))
        return self._joined(ml_kem_secret, classic_secret), self._joined(ciphertext, classic_share)

    def calc_shared_key(self, private: _Private, key_encaps: bytearray) -> bytearray:
        """The client's side: the shared secret from the server's share."""
        ml_kem_key, classic_key = private
        ciphertext, classic_peer = self._split(key_encaps, _CIPHERTEXT_LENGTH)
        classic_secret = bytes(self._classic.calc_shared_key(classic_key, bytearray(classic_peer)))
        return self._joined(ml_kem_key.decapsulate(ciphertext), classic_secret)

    def _joined(self, ml_kem_part: bytes, classic_part: bytes) -> bytearray:
        parts = (ml_kem_part, classic_part) if self._hybrid.ml_kem_first else (classic_part, ml_kem_part)
        return bytearray(b"".join(parts))

    def _split(self, share: bytearray, ml_kem_length: int) -> tuple[bytes, bytes]:
        """(ML-KEM part, ECDH part) of a peer's share."""
        classic_length = self._hybrid.classic_share_length
        if len(share) != ml_kem_length + classic_length:
            raise TLSIllegalParameterException("Invalid key size for the selected group")
        data = bytes(share)
        if self._hybrid.ml_kem_first:
            return data[:ml_kem_length], data[ml_kem_length:]
        return data[classic_length:], data[:classic_length]


def key_exchange_for(group: int, version: tuple[int, int]) -> HybridKemKeyExchange | None:
    """A cryptography-backed hybrid key exchange for ``group``, or None when this module does not implement it."""
    return HybridKemKeyExchange(group, version) if group in _HYBRIDS else None
