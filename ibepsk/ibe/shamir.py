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
