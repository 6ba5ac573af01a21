"""The lattice TA's mathematics: NTRUSolve, the public key, the samplers, and the keys they issue."""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest

from ibepsk.ibe import _zx
from ibepsk.ibe._ring import N, Q
from ibepsk.ibe.lattice import (
    SECRET_KEY_BOUND,
    LatticeDecapsulator,
    LatticeEncapsulator,
    TiigerLatticeDecapsulator,
    TiigerLatticeEncapsulator,
)
from ibepsk.ibe.lattice_keys import KEY_NORM_BOUND, Trapdoor, TrapdoorError, key_squared_norm, ring_target, short_part
from ibepsk.ibe.ntru import EXTRACTION_SIGMA, KeySampler, generate_trapdoor, ntru_solve, sample_z

#: Keys extracted once for the statistics and round trips below (fixed seeds: nothing here can flake).
KEY_COUNT = 8
#: Encapsulations in the suite; ``ibepsk bench ibe`` runs 10,000 (tests/test_lattice_ta.py checks its count).
ROUND_TRIPS = 500


def exact_product(a: list[int], b: list[int]) -> list[int]:
    """a·b mod x^n + 1 by numpy's schoolbook convolution of Python integers: independent of _zx's Kronecker trick."""
    full = np.convolve(np.array(a, dtype=object), np.array(b, dtype=object))
    n = len(a)
    return [int(full[i]) - (int(full[i + n]) if i + n < len(full) else 0) for i in range(n)]


@pytest.fixture(scope="module")
def trapdoor() -> Trapdoor:
    return generate_trapdoor(random.Random(20141207))


@pytest.fixture(scope="module")
def extracted(trapdoor: Trapdoor) -> list[tuple[bytes, list[int], list[int]]]:
    """(identity, s1, s) for KEY_COUNT identities, as KeySampler.extract accepts them."""
    sampler, rng = KeySampler(trapdoor), random.Random(7)
    keys = []
    for index in range(KEY_COUNT):
        identity = f"host{index}.example".encode()
        s = sampler.extract(identity, rng)
        keys.append((identity, short_part(identity, s, trapdoor.public_key()), s))
    return keys


def test_ntru_equation_holds_exactly(trapdoor: Trapdoor) -> None:
    determinant = [
        x - y
        for x, y in zip(
            exact_product(list(trapdoor.f), list(trapdoor.big_g)),
            exact_product(list(trapdoor.g), list(trapdoor.big_f)),
            strict=True,
        )
    ]
    assert determinant == [Q] + [0] * (N - 1)
    assert math.sqrt(key_squared_norm(trapdoor.f, trapdoor.g)) < 1.17 * math.sqrt(Q)
    assert max(abs(x) for x in trapdoor.big_f + trapdoor.big_g) < 2**20, "F and G are reduced"


@pytest.mark.parametrize("degree", [1, 2, 8, 64])
def test_ntru_solve_in_small_degrees(degree: int) -> None:
    rng = random.Random(degree)
    for _ in range(20):
        f, g = ([rng.randrange(-40, 41) for _ in range(degree)] for _ in range(2))
        solved = ntru_solve(f, g)
        if solved is not None:
            big_f, big_g = solved
            assert _zx.subtract(exact_product(f, big_g), exact_product(g, big_f)) == [Q] + [0] * (degree - 1)
            return
    pytest.fail("no solvable (f, g) in 20 tries")


def test_trapdoor_check_refuses_a_broken_trapdoor(trapdoor: Trapdoor) -> None:
    broken = Trapdoor(trapdoor.f, trapdoor.g, (trapdoor.big_f[0] + 1, *trapdoor.big_f[1:]), trapdoor.big_g)
    with pytest.raises(TrapdoorError, match="not q"):
        broken.check()


def test_public_key_is_g_over_f(trapdoor: Trapdoor) -> None:
    h_times_f = [x % Q for x in exact_product(trapdoor.public_key(), list(trapdoor.f))]
    assert h_times_f == [x % Q for x in trapdoor.g]


def test_extracted_keys_satisfy_the_equation_the_bound_and_int16(
    trapdoor: Trapdoor, extracted: list[tuple[bytes, list[int], list[int]]]
) -> None:
    h = trapdoor.public_key()
    for identity, s1, s in extracted:
        target = ring_target(identity)
        assert [(a + b) % Q for a, b in zip(s1, exact_product(s, h), strict=True)] == target
        assert key_squared_norm(s1, s) <= KEY_NORM_BOUND**2
        assert max(abs(x) for x in s) <= SECRET_KEY_BOUND
        # Gaussian over 2n = 2048 coordinates: the norm is σ·√2048 within a few per cent.
        assert 0.9 < math.sqrt(key_squared_norm(s1, s)) / (EXTRACTION_SIGMA * math.sqrt(2 * N)) < 1.1


def test_key_coefficients_have_mean_zero_and_the_designed_variance(
    extracted: list[tuple[bytes, list[int], list[int]]],
) -> None:
    coefficients = [x for _, s1, s in extracted for x in s1 + s]
    standard_error = EXTRACTION_SIGMA / math.sqrt(len(coefficients))
    assert abs(statistics.fmean(coefficients)) < 5 * standard_error
    # Redrawing a key with a coefficient beyond int16 trims the tail a little: the deviation stays within 4%.
    assert abs(statistics.pstdev(coefficients) / EXTRACTION_SIGMA - 1) < 0.04


@pytest.mark.parametrize(("center", "sigma"), [(0.0, 300.0), (0.37, 1.6), (-5.5, 0.8), (1e6 + 0.25, 4.0)])
def test_integer_sampler_matches_the_discrete_gaussian(center: float, sigma: float) -> None:
    rng = random.Random(f"{center}/{sigma}")
    samples = [sample_z(center, sigma, rng) for _ in range(20_000)]
    support = range(math.floor(center - 14 * sigma), math.ceil(center + 14 * sigma) + 1)
    weights = {z: math.exp(-((z - center) ** 2) / (2 * sigma * sigma)) for z in support}
    total = sum(weights.values())
    mean = sum(z * w for z, w in weights.items()) / total
    variance = sum((z - mean) ** 2 * w for z, w in weights.items()) / total
    standard_error = math.sqrt(variance / len(samples))
    assert abs(statistics.fmean(samples) - mean) < 5 * standard_error
    assert abs(statistics.pvariance(samples) / variance - 1) < 0.05


def test_encapsulations_to_extracted_keys_never_fail(
    trapdoor: Trapdoor, extracted: list[tuple[bytes, list[int], list[int]]]
) -> None:
    h = trapdoor.public_key()
    rng = random.Random(13)
    failures = 0
    for index in range(ROUND_TRIPS):
        identity, _, s = extracted[index % KEY_COUNT]
        kinds = [(TiigerLatticeEncapsulator, TiigerLatticeDecapsulator), (LatticeEncapsulator, LatticeDecapsulator)]
        encapsulator, decapsulator = kinds[index % 2]
        sent = encapsulator(identity, h).encapsulate(rng.randbytes)
        failures += decapsulator(identity, s, h).decapsulate(sent.ciphertext) != sent.psk
    assert failures == 0


def test_a_key_of_another_identity_is_long(
    trapdoor: Trapdoor, extracted: list[tuple[bytes, list[int], list[int]]]
) -> None:
    _, _, s = extracted[0]
    s1 = short_part(b"someone-else.example", s, trapdoor.public_key())
    assert key_squared_norm(s1, s) > 100 * KEY_NORM_BOUND**2  # s1 is uniform mod q: ‖s1‖ ≈ q·√(n/12)
