"""MIRACL point encodings, as TiigerTLS puts them on the wire.

G1: ``04 || x || y`` (97 bytes). G2: ``04 || x.c1 || x.c0 || y.c1 || y.c0``
(193 bytes, imaginary half first). Decoders accept only points of the
prime-order subgroup other than infinity, with canonical coordinates.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from .backend import FIELD_BYTES, FIELD_PRIME, G1Element, G2Element, PairingBackend
from .errors import PointDecodeError

UNCOMPRESSED_PREFIX = 0x04
G1_BYTES = 1 + 2 * FIELD_BYTES
G2_BYTES = 1 + 4 * FIELD_BYTES


def _field_elements(data: bytes, expected_len: int, what: str) -> list[int]:
    if len(data) != expected_len:
        raise PointDecodeError(f"{what} encoding must be {expected_len} bytes, got {len(data)}")
    if data[0] != UNCOMPRESSED_PREFIX:
        raise PointDecodeError(f"{what} encoding must start with 0x04, got 0x{data[0]:02x}")
    values = [int.from_bytes(data[i : i + FIELD_BYTES], "big") for i in range(1, expected_len, FIELD_BYTES)]
    if any(v >= FIELD_PRIME for v in values):
        raise PointDecodeError(f"{what} coordinate is not reduced modulo p")
    return values


def _field_bytes(*values: int) -> bytes:
    return bytes([UNCOMPRESSED_PREFIX]) + b"".join(v.to_bytes(FIELD_BYTES, "big") for v in values)


def _checked(
    what: str, build: Callable[[], Any], affine: Callable[[Any], Any], in_subgroup: Callable[[Any], bool]
) -> Any:
    """Build a point and apply the spec's checks: on the curve, not infinity, in the prime-order subgroup."""
    try:
        point = build()
    except ValueError as exc:
        raise PointDecodeError(f"{what} is not on the curve") from exc
    if affine(point) is None:
        raise PointDecodeError(f"{what} is the point at infinity")
    if not in_subgroup(point):
        raise PointDecodeError(f"{what} is not in the prime-order subgroup")
    return point


def decode_g1(backend: PairingBackend, data: bytes) -> G1Element:
    x, y = _field_elements(data, G1_BYTES, "G1 point")
    return _checked("G1 point", partial(backend.g1_from_affine, x, y), backend.g1_affine, backend.g1_in_subgroup)


def encode_g1(backend: PairingBackend, point: G1Element) -> bytes:
    return _field_bytes(*_finite(backend.g1_affine(point)))


def decode_g2(backend: PairingBackend, data: bytes) -> G2Element:
    x1, x0, y1, y0 = _field_elements(data, G2_BYTES, "G2 point")
    build = partial(backend.g2_from_affine, (x0, x1), (y0, y1))
    return _checked("G2 point", build, backend.g2_affine, backend.g2_in_subgroup)


def encode_g2(backend: PairingBackend, point: G2Element) -> bytes:
    (x0, x1), (y0, y1) = _finite(backend.g2_affine(point))
    return _field_bytes(x1, x0, y1, y0)


def _finite(affine: Any) -> Any:
    if affine is None:
        raise ValueError("the point at infinity has no MIRACL encoding")
    return affine
