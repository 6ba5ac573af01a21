"""Shamir secret sharing over the BLS12-381 group order, and recombination in the groups.

A secret s is shared as f(1), …, f(N) for a random polynomial f of degree T−1 with f(0) = s. Any T shares give
f(0) back by Lagrange interpolation; fewer say nothing about it. Recombination runs "in the exponent": with
D_i = s_i·Q, Σ λ_i·D_i = s·Q, so a threshold TA never rebuilds s to issue a key. Pure arithmetic, no I/O.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from functools import reduce
from typing import Any

from .backend import GROUP_ORDER, G1Element, G2Element, PairingBackend

#: Share indexes are 1..MAX_SHARES: small enough for a byte, far below the group order.
MAX_SHARES = 255
MIN_THRESHOLD = 2

RandomBelow = Callable[[int], int]


def check_threshold(threshold: int, shares: int) -> None:
    """2 ≤ T ≤ N ≤ 255, or ValueError saying which bound is broken."""
    if threshold < MIN_THRESHOLD:
        raise ValueError(f"threshold {threshold} is below {MIN_THRESHOLD} (with one share there is nothing to split)")
    if shares > MAX_SHARES:
        raise ValueError(f"{shares} shares is more than {MAX_SHARES}")
    if threshold > shares:
        raise ValueError(f"threshold {threshold} is more than the {shares} shares: no key could ever be issued")


def split_secret(secret: int, threshold: int, shares: int, randbelow: RandomBelow = secrets.randbelow) -> list[int]:
    """f(1), …, f(N) for f(x) = secret + a_1·x + … + a_(T−1)·x^(T−1) mod r, the a_k uniformly random."""
    check_threshold(threshold, shares)
    coefficients = [secret % GROUP_ORDER] + [randbelow(GROUP_ORDER) for _ in range(threshold - 1)]
    return [_evaluate(coefficients, index) for index in range(1, shares + 1)]


def zero_sharing(threshold: int, shares: int, randbelow: RandomBelow = secrets.randbelow) -> list[int]:
    """A fresh sharing of 0: added share by share, it re-randomizes a sharing without changing its secret."""
    return split_secret(0, threshold, shares, randbelow)


def _evaluate(coefficients: Sequence[int], x: int) -> int:
    return reduce(lambda acc, coefficient: (acc * x + coefficient) % GROUP_ORDER, reversed(coefficients), 0)


def lagrange_at_zero(indexes: Sequence[int]) -> list[int]:
    """λ_i = Π_(j≠i) j / (j − i) mod r, so that Σ λ_i·f(i) = f(0) for any f of degree < len(indexes)."""
    if len(set(indexes)) != len(indexes):
        raise ValueError("share indexes repeat")
    if any(not 0 < index <= MAX_SHARES for index in indexes):
        raise ValueError(f"share indexes must be 1..{MAX_SHARES}")
    coefficients = []
    for i in indexes:
        numerator = denominator = 1
        for j in indexes:
            if j != i:
                numerator = numerator * j % GROUP_ORDER
                denominator = denominator * (j - i) % GROUP_ORDER
        coefficients.append(numerator * pow(denominator, -1, GROUP_ORDER) % GROUP_ORDER)
    return coefficients


def on_one_polynomial_g1(
    backend: PairingBackend, points: Mapping[int, G1Element], threshold: int, randbelow: RandomBelow = secrets.randbelow
) -> bool:
    """Whether the points y_x = f(x)·P1 (x = 0 for Ppub, 1..N for the shares) come from one f of degree < T.

    One random check, N + 1 scalar multiplications: with v_x = Π_(z≠x) (x − z) and a random polynomial g of
    degree < N + 1 − T, Σ g(x)/v_x · f(x) = 0 for every f of degree < T (it is the leading coefficient of an
    interpolant of f·g, whose degree is too low), while for points on no such f the sum is 0 with probability
    1/r only.
    """
    xs = list(points)
    spare = len(xs) - threshold  # how many points more than T: the dual code's dimension
    if spare <= 0:
        return True  # T points or fewer lie on some polynomial of degree < T
    g = [randbelow(GROUP_ORDER) for _ in range(spare)]
    total = reduce(
        backend.g1_add, (backend.g1_mul(points[x], weight) for x, weight in zip(xs, _dual_weights(xs, g), strict=True))
    )
    return backend.g1_affine(total) is None


def _dual_weights(xs: Sequence[int], g: Sequence[int]) -> list[int]:
    weights = []
    for x in xs:
        v = reduce(lambda acc, z: acc * (x - z) % GROUP_ORDER, (z for z in xs if z != x), 1)
        weights.append(_evaluate(g, x) * pow(v, -1, GROUP_ORDER) % GROUP_ORDER)
    return weights


def combine_g1(backend: PairingBackend, points: Mapping[int, G1Element]) -> G1Element:
    """Σ λ_i·P_i over the given share indexes: s·P1 from the per-share public keys s_i·P1."""
    return _combine(points, backend.g1_mul, backend.g1_add)


def combine_g2(backend: PairingBackend, points: Mapping[int, G2Element]) -> G2Element:
    """Σ λ_i·D_i over the given share indexes: s·H1(ID) from the partial keys s_i·H1(ID)."""
    return _combine(points, backend.g2_mul, backend.g2_add)


def _combine(points: Mapping[int, Any], mul: Callable[[Any, int], Any], add: Callable[[Any, Any], Any]) -> Any:
    if not points:
        raise ValueError("nothing to combine")
    indexes = list(points)
    terms = [
        mul(points[index], coefficient) for index, coefficient in zip(indexes, lagrange_at_zero(indexes), strict=True)
    ]
    return reduce(add, terms)
