"""(EC)DH key exchange for tlslite-ng, backed by ``cryptography``.

The objects follow tlslite-ng's ``RawDHKeyExchange`` interface
(``get_random_private_key``, ``calc_public_value``, ``calc_shared_key``) and
its encodings: X25519/X448 shares are the raw u-coordinates (RFC 7748), NIST
curve shares are X9.62 points, shared secrets are the raw X25519/X448 output
or the x-coordinate padded to the field size (RFC 8446 §7.4). Bad peer shares
raise the exceptions tlslite-ng raises, so the same alerts go out. (Of the
X9.62 encodings only uncompressed and compressed points are understood; TLS
1.3 allows only the first.)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tlslite.constants import GroupName
from tlslite.errors import TLSIllegalParameterException
from tlslite.keyexchange import RawDHKeyExchange

XdhPrivateKey = x25519.X25519PrivateKey | x448.X448PrivateKey
XdhPublicKey = x25519.X25519PublicKey | x448.X448PublicKey

#: X9.62 first bytes (SEC 1 §2.3.3) and tlslite-ng's names for the encodings.
_UNCOMPRESSED = 0x04
_COMPRESSED = (0x02, 0x03)
_POINT_FORMATS = {"uncompressed": PublicFormat.UncompressedPoint, "compressed": PublicFormat.CompressedPoint}


@dataclass(frozen=True)
class _XdhGroup:
    share_length: int
    private_type: type[x25519.X25519PrivateKey] | type[x448.X448PrivateKey]
    public_type: type[x25519.X25519PublicKey] | type[x448.X448PublicKey]


_XDH_GROUPS = {
    GroupName.x25519: _XdhGroup(32, x25519.X25519PrivateKey, x25519.X25519PublicKey),
    GroupName.x448: _XdhGroup(56, x448.X448PrivateKey, x448.X448PublicKey),
}
_NIST_CURVES: dict[int, ec.EllipticCurve] = {
    GroupName.secp256r1: ec.SECP256R1(),
    GroupName.secp384r1: ec.SECP384R1(),
    GroupName.secp521r1: ec.SECP521R1(),
}

#: The groups this module implements.
GROUPS = frozenset(_XDH_GROUPS) | frozenset(_NIST_CURVES)


class XdhKeyExchange(RawDHKeyExchange):  # type: ignore[misc]
    """X25519 or X448 (RFC 7748)."""

    def __init__(self, group: int, version: tuple[int, int]) -> None:
        super().__init__(group, version)
        self._group = _XDH_GROUPS[group]

    def get_random_private_key(self) -> XdhPrivateKey:
        return self._group.private_type.generate()

    def calc_public_value(self, private: XdhPrivateKey, point_format: str | None = None) -> bytearray:
        return bytearray(private.public_key().public_bytes_raw())

    def calc_shared_key(
        self, private: XdhPrivateKey, peer_share: bytearray, valid_point_formats: object = None
    ) -> bytearray:
        if len(peer_share) != self._group.share_length:
            raise TLSIllegalParameterException("Invalid key share")
        try:
            peer: Any = self._group.public_type.from_public_bytes(bytes(peer_share))
            return bytearray(private.exchange(peer))
        except ValueError:  # cryptography refuses the all-zero result of a low-order share (RFC 7748 §6)
            raise TLSIllegalParameterException("Invalid key share") from None


class NistCurveKeyExchange(RawDHKeyExchange):  # type: ignore[misc]
    """ECDH on secp256r1, secp384r1 or secp521r1."""

    def __init__(self, group: int, version: tuple[int, int]) -> None:
        super().__init__(group, version)
        self._curve = _NIST_CURVES[group]
        self._coordinate_length = (self._curve.key_size + 7) // 8

    def get_random_private_key(self) -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(self._curve)

    def calc_public_value(self, private: ec.EllipticCurvePrivateKey, point_format: str = "uncompressed") -> bytearray:
        return bytearray(private.public_key().public_bytes(Encoding.X962, _POINT_FORMATS[point_format]))

    def calc_shared_key(
        self,
        private: ec.EllipticCurvePrivateKey,
        peer_share: bytearray,
        valid_point_formats: Collection[str] = ("uncompressed",),
    ) -> bytearray:
        point_format = self._point_format(peer_share)
        # As in tlslite-ng (python-ecdsa), an empty list allows every encoding.
        if point_format is None or (valid_point_formats and point_format not in valid_point_formats):
            raise TLSIllegalParameterException("Invalid ECC point")
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(self._curve, bytes(peer_share))
        except ValueError:  # not on the curve
            raise TLSIllegalParameterException("Invalid ECC point") from None
        return bytearray(private.exchange(ec.ECDH(), peer))

    def _point_format(self, share: bytearray) -> str | None:
        if len(share) == 1 + 2 * self._coordinate_length and share[0] == _UNCOMPRESSED:
            return "uncompressed"
        if len(share) == 1 + self._coordinate_length and share[0] in _COMPRESSED:
            return "compressed"
        return None


def key_exchange_for(group: int, version: tuple[int, int]) -> RawDHKeyExchange | None:
    """A cryptography-backed key exchange for ``group``, or None when this module does not implement it."""
    if group in _XDH_GROUPS:
        return XdhKeyExchange(group, version)
    if group in _NIST_CURVES:
        return NistCurveKeyExchange(group, version)
    return None
