"""The checks on a lattice TA's keys, in pure Python (no numpy): any installation can load and verify key files.

Generating a trapdoor and extracting keys (:mod:`ibepsk.ibe.ntru`) need numpy; checking them does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import _zx
from ._ring import N, Q, Ring, get_ring
from .lattice import SECRET_KEY_BOUND, hash_identity

#: Spec §7: a TA checks ‖(s1, s)‖₂ ≤ 1.2·10^6 for every key it issues (decryption failure ≤ 2^−128).
KEY_NORM_BOUND = 1_200_000
#: Falcon's bound on the NTRU basis's Gram–Schmidt norm, 1.17·√q ≈ 13,561; ‖(f, g)‖ is one of the two.
GRAM_SCHMIDT_BOUND = 1.17 * math.sqrt(Q)


class TrapdoorError(ValueError):
    """Not an NTRU trapdoor of this ring: wrong size, f·G − g·F ≠ q, or f not invertible mod q."""


def invertible_mod_q(a: Sequence[int], ring: Ring) -> bool:
    return all(ring.to_ints(ring.ntt(ring.from_ints(list(a)))))


@dataclass(frozen=True)
class Trapdoor:
    """The TA master key: f, g, F, G with f·G − g·F = q, as exact integers."""

    f: tuple[int, ...] = field(repr=False)
    g: tuple[int, ...] = field(repr=False)
    big_f: tuple[int, ...] = field(repr=False)
    big_g: tuple[int, ...] = field(repr=False)

    def check(self, ring: Ring | None = None) -> None:
        """Raise TrapdoorError unless this is a trapdoor of the ring: sizes, f·G − g·F = q exactly, f invertible."""
        if not all(len(poly) == N for poly in (self.f, self.g, self.big_f, self.big_g)):
            raise TrapdoorError(f"an NTRU trapdoor is four polynomials of {N} coefficients")
        determinant = _zx.subtract(_zx.multiply(self.f, self.big_g), _zx.multiply(self.g, self.big_f))
        if determinant != [Q] + [0] * (N - 1):
            raise TrapdoorError("f·G − g·F is not q: not an NTRU trapdoor")
        if not invertible_mod_q(self.f, ring or get_ring()):
            raise TrapdoorError("f is not invertible mod q")

    def public_key(self, ring: Ring | None = None) -> list[int]:
        """h = g·f^−1 mod q, coefficients in [0, q)."""
        ring = ring or get_ring()
        f_hat = ring.to_ints(ring.ntt(ring.from_ints(list(self.f))))
        f_inverse = ring.from_ints([pow(x, -1, Q) for x in f_hat])
        return ring.to_ints(ring.intt(ring.pointwise(ring.ntt(ring.from_ints(list(self.g))), f_inverse)))


def centred(values: Sequence[int]) -> list[int]:
    """Representatives in (−q/2, q/2]."""
    return [x - Q if x > Q // 2 else x for x in (v % Q for v in values)]


def key_squared_norm(s1: Sequence[int], s: Sequence[int]) -> int:
    return _zx.squared_norm(s1, s)


def key_is_acceptable(s1: Sequence[int], s: Sequence[int]) -> bool:
    """Spec §7's bound on ‖(s1, s)‖₂, and every |s_i| ≤ 32,767 (TiigerTLS stores s as int16)."""
    fits_int16 = all(-SECRET_KEY_BOUND <= x <= SECRET_KEY_BOUND for x in s)
    return fits_int16 and key_squared_norm(s1, s) <= KEY_NORM_BOUND**2


def ring_target(identity: bytes, ring: Ring | None = None) -> list[int]:
    """t = H_ID(identity), coefficients in [0, q)."""
    ring = ring or get_ring()
    return ring.to_ints(hash_identity(ring, identity))


def short_part(identity: bytes, s: Sequence[int], h: Sequence[int], ring: Ring | None = None) -> list[int]:
    """s1 = H_ID(identity) − s·h mod q, centred: short exactly when s is a key of ``identity`` under h."""
    ring = ring or get_ring()
    product = ring.intt(ring.pointwise(ring.ntt(ring.from_ints(list(s))), ring.ntt(ring.from_ints(list(h)))))
    return centred([t - x for t, x in zip(ring_target(identity, ring), ring.to_ints(product), strict=True)])
