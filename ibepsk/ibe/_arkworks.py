"""BLS12-381 on py-arkworks-bls12381 (the default backend)."""

from __future__ import annotations

from py_arkworks_bls12381 import GT, G1Point, G2Point, Scalar

from .backend import FIELD_BYTES, GROUP_ORDER, Fp2, miracl_gt_bytes

_F = FIELD_BYTES


def _fp(value: int) -> bytes:
    return value.to_bytes(_F, "big")


def _fp2(value: Fp2) -> bytes:
    # arkworks' big-endian Fp2 layout is c0 then c1.
    return _fp(value[0]) + _fp(value[1])


def _scalar(value: int) -> Scalar:
    return Scalar(value % GROUP_ORDER)


class ArkworksBackend:
    name = "arkworks"
    # py-arkworks exposes no GT exponentiation, so caching e(Q, Ppub) cannot pay.
    has_fast_gt_pow = False

    def __init__(self) -> None:
        self._g1_infinity = G1Point.identity()
        self._g2_infinity = G2Point.identity()

    def g1_generator(self) -> G1Point:
        return G1Point()

    def g1_from_affine(self, x: int, y: int) -> G1Point:
        # The "unchecked" decoder still checks the curve equation; only the
        # subgroup check is left to g1_in_subgroup, which callers run.
        return G1Point.from_xy_bytes_unchecked_be(_fp(x) + _fp(y))

    def g1_affine(self, point: G1Point) -> tuple[int, int] | None:
        if point == self._g1_infinity:
            return None
        raw = point.to_xy_bytes_be()
        return int.from_bytes(raw[:_F], "big"), int.from_bytes(raw[_F:], "big")

    def g1_in_subgroup(self, point: G1Point) -> bool:
        return point.is_in_subgroup()

    def g1_mul(self, point: G1Point, scalar: int) -> G1Point:
        return point * _scalar(scalar)

    def g1_add(self, a: G1Point, b: G1Point) -> G1Point:
        return a + b

    def g1_equal(self, a: G1Point, b: G1Point) -> bool:
        return bool(a == b)

    def g2_generator(self) -> G2Point:
        return G2Point()

    def g2_from_affine(self, x: Fp2, y: Fp2) -> G2Point:
        return G2Point.from_xy_bytes_unchecked_be(_fp2(x) + _fp2(y))

    def g2_affine(self, point: G2Point) -> tuple[Fp2, Fp2] | None:
        if point == self._g2_infinity:
            return None
        raw = point.to_xy_bytes_be()
        limbs = [int.from_bytes(raw[i : i + _F], "big") for i in range(0, 4 * _F, _F)]
        return (limbs[0], limbs[1]), (limbs[2], limbs[3])

    def g2_in_subgroup(self, point: G2Point) -> bool:
        return point.is_in_subgroup()

    def g2_mul(self, point: G2Point, scalar: int) -> G2Point:
        return point * _scalar(scalar)

    def g2_add(self, a: G2Point, b: G2Point) -> G2Point:
        return a + b

    def g2_map_from_fp2(self, u: Fp2) -> G2Point:
        return G2Point.map_from_fp2_be(_fp2(u))

    def pairing(self, q: G2Point, p: G1Point) -> GT:
        return GT.pairing(p, q)

    def gt_pow(self, z: GT, exponent: int) -> GT:
        raise NotImplementedError("py-arkworks-bls12381 has no GT exponentiation; check has_fast_gt_pow")

    def gt_equal(self, a: GT, b: GT) -> bool:
        return bool(a == b)

    def gt_to_bytes(self, z: GT) -> bytes:
        return miracl_gt_bytes(bytes.fromhex(str(z)))
