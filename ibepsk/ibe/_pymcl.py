"""BLS12-381 on pymcl (optional, faster pairing and GT exponentiation).

mcl exposes no RFC 9380 map from a given Fp2 element (its own hash-to-G2 hashes
bytes with a fixed suite), so H1's map step borrows arkworks, a hard dependency
of this package, and converts the point; everything else runs on mcl.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pymcl

from .backend import GROUP_ORDER, Fp2, get_backend, miracl_gt_bytes

_P = TypeVar("_P")

# mcl keeps a process-wide curve; pymcl configures BLS12-381 on import.
_R_MINUS_ONE = pymcl.Fr(str(GROUP_ORDER - 1))


def _fr(value: int) -> pymcl.Fr:
    return pymcl.Fr(str(value % GROUP_ORDER))


def _load(kind: Callable[[str], _P], text: str) -> _P:
    try:
        return kind(text)
    except RuntimeError as exc:  # mcl reports a bad point as RuntimeError("EcT:load")
        raise ValueError(f"point is not on the curve ({exc})") from exc


def _in_subgroup(point: object) -> bool:
    # A point has order dividing q exactly when (q - 1)·P == -P.
    return bool(point * _R_MINUS_ONE == -point)  # type: ignore[operator]


class PymclBackend:
    name = "pymcl"
    has_fast_gt_pow = True

    def g1_generator(self) -> pymcl.G1:
        return pymcl.g1

    def g1_from_affine(self, x: int, y: int) -> pymcl.G1:
        return _load(pymcl.G1, f"1 {x} {y}")

    def g1_affine(self, point: pymcl.G1) -> tuple[int, int] | None:
        if point.is_zero():
            return None
        _, x, y = str(point).split()
        return int(x), int(y)

    def g1_in_subgroup(self, point: pymcl.G1) -> bool:
        return _in_subgroup(point)

    def g1_mul(self, point: pymcl.G1, scalar: int) -> pymcl.G1:
        return point * _fr(scalar)

    def g1_add(self, a: pymcl.G1, b: pymcl.G1) -> pymcl.G1:
        return a + b

    def g1_equal(self, a: pymcl.G1, b: pymcl.G1) -> bool:
        return bool(a == b)

    def g2_generator(self) -> pymcl.G2:
        return pymcl.g2

    def g2_from_affine(self, x: Fp2, y: Fp2) -> pymcl.G2:
        return _load(pymcl.G2, f"1 {x[0]} {x[1]} {y[0]} {y[1]}")

    def g2_affine(self, point: pymcl.G2) -> tuple[Fp2, Fp2] | None:
        if point.is_zero():
            return None
        _, x0, x1, y0, y1 = str(point).split()
        return (int(x0), int(x1)), (int(y0), int(y1))

    def g2_in_subgroup(self, point: pymcl.G2) -> bool:
        return _in_subgroup(point)

    def g2_mul(self, point: pymcl.G2, scalar: int) -> pymcl.G2:
        return point * _fr(scalar)

    def g2_add(self, a: pymcl.G2, b: pymcl.G2) -> pymcl.G2:
        return a + b

    def g2_map_from_fp2(self, u: Fp2) -> pymcl.G2:
        arkworks = get_backend("arkworks")
        affine = arkworks.g2_affine(arkworks.g2_map_from_fp2(u))
        if affine is None:  # cofactor clearing can land on infinity only with negligible probability
            return pymcl.G2()
        return self.g2_from_affine(*affine)

    def pairing(self, q: pymcl.G2, p: pymcl.G1) -> pymcl.GT:
        return pymcl.pairing(p, q)

    def gt_pow(self, z: pymcl.GT, exponent: int) -> pymcl.GT:
        return z ** _fr(exponent)

    def gt_equal(self, a: pymcl.GT, b: pymcl.GT) -> bool:
        return bool(a == b)

    def gt_to_bytes(self, z: pymcl.GT) -> bytes:
        return miracl_gt_bytes(z.serialize())
