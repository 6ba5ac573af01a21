"""A lattice TA over NTRU lattices: trapdoor generation and key extraction (pure math, no I/O).

Written from Ducas–Lyubashevsky–Prest, "Efficient Identity-Based Encryption over NTRU Lattices"
(Asiacrypt 2014), and the Falcon specification (NTRUSolve; ffLDL and ffSampling), over TiigerTLS's
ring Z_q[x]/(x^1024 + 1), q = 2^27 + 2^17 + 1 (spec ``tiiger-pq-ibe.md`` §1-§3):

- **Master key**: short f, g (coefficients from D_{Z, σ_fg}, σ_fg = 1.17·√(q/2n), so ‖(f, g)‖ ≈
  1.17·√q) and F, G with f·G − g·F = q (NTRUSolve: field norms down to degree 1, an extended gcd,
  lifting back up, Babai reduction at every level). The rows (g, −f) and (G, −F) are a short basis
  of the NTRU lattice Λ = {(a, b) : a + b·h ≡ 0 mod q}.
- **Public key**: h = g·f^−1 mod q.
- **Identity key**: with t = H_ID(ID), a lattice point v close to (t, 0), sampled by fast Fourier
  sampling (a Gaussian over Λ, Klein's sampler run along the ffLDL tree of the basis's Gram matrix);
  (s1, s) = (t, 0) − v is short and s1 + s·h ≡ t (mod q). The key is s.

Floating point (numpy's complex128 FFT) is used for the Gram–Schmidt data and the sampler's centres,
as in Falcon; every value that reaches a key (f, g, F, G, s1, s) is an exact integer, and the
equation is checked exactly. Nothing here is constant-time.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from . import _zx
from ._ring import N, Q, Ring, get_ring
from .lattice_keys import GRAM_SCHMIDT_BOUND, Trapdoor, centred, invertible_mod_q, key_is_acceptable, ring_target

Floats = npt.NDArray[np.float64]
Complexes = npt.NDArray[np.complex128]
Ints = npt.NDArray[np.int64]

#: Width of f and g (DLP 2014 §5, Falcon): ‖(f, g)‖ ≈ 1.17·√q, where both Gram–Schmidt norms balance.
FG_SIGMA = 1.17 * math.sqrt(Q / (2 * N))
#: Width of the extraction Gaussian over Λ: every coefficient of s1 and s has standard deviation ≈ σ.
#: Falcon's smoothing rule (σ ≈ 1.3·‖B̃‖ ≈ 17,600 here) makes keys independent of the trapdoor, but such
#: keys never fit int16 (P(|s_i| > 32,767) ≈ 6% per coefficient), and TiigerTLS's server stores s as int16.
#: 9,000 fits (about 1 in 4 samples has a coefficient out of range and is drawn again), like TiigerTLS's
#: own demo TA (σ ≈ 10.5k): below the smoothing bound, so GPV's proof that keys reveal nothing about
#: the trapdoor does not apply (docs/post-quantum.md, "The lattice TA").
EXTRACTION_SIGMA = 9_000.0
#: Tail cut of the integer sampler, in standard deviations: the mass beyond is below 2^−120.
_TAIL = 13.0
_MAX_ATTEMPTS = 1000
#: F and G are stored as signed 32-bit integers; reduced, they are around 2^14.
_MASTER_KEY_BITS = 31
#: Bits of the quotient taken per round of Babai reduction: 53-bit floats, less a margin for the ring's conditioning.
_REDUCE_BITS = 30


# --- integer Gaussian ---------------------------------------------------------------------------


def sample_z(center: float, sigma: float, rng: random.Random) -> int:
    """D_{Z,σ,c}: P(z) ∝ exp(−(z − c)²/2σ²), exactly (up to floating point), by rejection from a uniform window."""
    radius = math.ceil(_TAIL * sigma) + 1
    low = math.floor(center) - radius
    twice_variance = 2.0 * sigma * sigma
    while True:
        z = low + rng.randrange(2 * radius + 1)
        if rng.random() < math.exp(-((z - center) ** 2) / twice_variance):
            return z


# --- FFT over the roots of x^n + 1 ----------------------------------------------------------------
# Entry j of fft(a) is a(ω_j), ω_j = exp(−iπ(2j − 1)/n): all n roots of x^n + 1. ω_{j+n/2} = −ω_j and
# ω_j² is root j of x^(n/2) + 1, so split and merge pair entry j with entry j + n/2.


@functools.cache
def _twist(n: int) -> Complexes:
    twist: Complexes = np.exp(1j * np.pi * np.arange(n) / n)
    return twist


@functools.cache
def _roots(n: int) -> Complexes:
    """ω_j for j < n/2."""
    roots: Complexes = np.exp(-1j * np.pi * (2 * np.arange(n // 2) - 1) / n)
    return roots


def fft(a: Sequence[float] | Floats) -> Complexes:
    return np.fft.fft(np.asarray(a, dtype=np.float64) * _twist(len(a)))


def ifft(values: Complexes) -> Floats:
    return (np.fft.ifft(values) * np.conj(_twist(len(values)))).real


def split(values: Complexes) -> tuple[Complexes, Complexes]:
    """FFT forms of a0, a1 with a(x) = a0(x²) + x·a1(x²), from that of a."""
    half = len(values) // 2
    low, high = values[:half], values[half:]
    return (low + high) / 2, (low - high) / (2 * _roots(len(values)))


def merge(even: Complexes, odd: Complexes) -> Complexes:
    """Inverse of :func:`split`."""
    twisted = _roots(2 * len(even)) * odd
    return np.concatenate([even + twisted, even - twisted])


# --- NTRUSolve ------------------------------------------------------------------------------------


def _top_bits(a: Sequence[int], size: int) -> Floats:
    """The coefficients scaled by 2^−(size − 53), as floats: the 53 leading bits of the largest."""
    return np.array([x >> (size - 53) for x in a], dtype=np.float64)


def _babai_reduce(f: _zx.Poly, g: _zx.Poly, big_f: _zx.Poly, big_g: _zx.Poly) -> tuple[_zx.Poly, _zx.Poly]:
    """Subtract k·(f, g) from (F, G), k ≈ (F f̄ + G ḡ)/(f f̄ + g ḡ), until (F, G) is as short as (f, g) allows.

    Coefficients may be thousands of bits long, and floats hold 53: each round computes the quotient
    from the 53 leading bits of both sides and takes its :data:`_REDUCE_BITS` leading bits as k, so
    (k·2^shift)·(f, g) removes about that many bits exactly; the last round (shift 0) is Babai's rounding.
    """
    size = max(53, _zx.max_bits(f + g))
    f_hat, g_hat = fft(_top_bits(f, size)), fft(_top_bits(g, size))
    denominator = f_hat * np.conj(f_hat) + g_hat * np.conj(g_hat)
    while True:
        big_size = max(53, _zx.max_bits(big_f + big_g))
        shift = max(0, big_size - size - _REDUCE_BITS)
        numerator = fft(_top_bits(big_f, big_size)) * np.conj(f_hat) + fft(_top_bits(big_g, big_size)) * np.conj(g_hat)
        k = np.rint(ifft(numerator / denominator) * 2.0 ** (big_size - size - shift))
        if not k.any():
            return big_f, big_g
        k_ints = [int(x) for x in k]
        big_f = _zx.subtract(big_f, _zx.scale_shift(_zx.multiply(k_ints, f), shift))
        big_g = _zx.subtract(big_g, _zx.scale_shift(_zx.multiply(k_ints, g), shift))
        if shift == 0:
            return big_f, big_g


def ntru_solve(f: Sequence[int], g: Sequence[int]) -> tuple[_zx.Poly, _zx.Poly] | None:
    """(F, G) with f·G − g·F = q in Z[x]/(x^n + 1), reduced against (f, g); None if there is none.

    Falcon's NTRUSolve: for n = 1 an extended gcd; otherwise solve for the field norms N(f), N(g)
    in degree n/2, lift with F = F'(x²)·g(−x), G = G'(x²)·f(−x) (then f·G − g·F = N(f)(x²)·G'(x²) −
    N(g)(x²)·F'(x²) = q), and reduce.
    """
    f, g = list(f), list(g)
    if len(f) == 1:
        gcd, u, v = _zx.extended_gcd(f[0], g[0])  # u·f + v·g = 1, so f·(u·q) − g·(−v·q) = q
        return ([-v * Q], [u * Q]) if gcd == 1 else None
    solved = ntru_solve(_zx.field_norm(f), _zx.field_norm(g))
    if solved is None:
        return None
    big_f = _zx.multiply(_zx.lift(solved[0]), _zx.galois_conjugate(g))
    big_g = _zx.multiply(_zx.lift(solved[1]), _zx.galois_conjugate(f))
    return _babai_reduce(f, g, big_f, big_g)


# --- the trapdoor ---------------------------------------------------------------------------------


def gram_schmidt_norm(f: Sequence[int], g: Sequence[int]) -> float:
    """max(‖(g, −f)‖, ‖(q·f̄, q·ḡ)/(f f̄ + g ḡ)‖): the longer Gram–Schmidt vector of the NTRU basis (Falcon)."""
    f_hat, g_hat = fft([float(x) for x in f]), fft([float(x) for x in g])
    squares = (np.abs(f_hat) ** 2 + np.abs(g_hat) ** 2).real
    first = math.sqrt(_zx.squared_norm(f, g))
    second = math.sqrt(Q * Q * float(np.sum(1.0 / squares)) / len(f))  # Parseval: Σ_j |a(ω_j)|² = n·‖a‖²
    return max(first, second)


def generate_trapdoor(rng: random.Random | None = None, ring: Ring | None = None) -> Trapdoor:
    """Falcon's key generation for this ring: sample f, g until the basis is short and NTRUSolve succeeds."""
    rng = rng or random.SystemRandom()
    ring = ring or get_ring()
    for _ in range(_MAX_ATTEMPTS):
        f, g = ([sample_z(0.0, FG_SIGMA, rng) for _ in range(N)] for _ in range(2))
        if gram_schmidt_norm(f, g) > GRAM_SCHMIDT_BOUND or not invertible_mod_q(f, ring):
            continue
        solved = ntru_solve(f, g)
        if solved is None or _zx.max_bits(solved[0] + solved[1]) > _MASTER_KEY_BITS:
            continue
        trapdoor = Trapdoor(tuple(f), tuple(g), tuple(solved[0]), tuple(solved[1]))
        trapdoor.check(ring)
        return trapdoor
    raise RuntimeError("no NTRU trapdoor found: the random source is broken")


# --- extraction: fast Fourier sampling --------------------------------------------------------------

#: A node of the ffLDL tree: L10, then for each of D00 and D11 either its subtree or, at the leaves, σ/√D.
Tree = tuple[Complexes, "Tree | float", "Tree | float"]
Sampler = Callable[[float, float], int]


def _ffldl(g00: Complexes, g01: Complexes, g11: Complexes, sigma: float) -> Tree:
    """The ffLDL tree of the self-adjoint Gram matrix [[g00, g01], [g01*, g11]] (FFT form), leaves normalised to σ."""
    l10 = np.conj(g01) / g00
    d11 = g11 - l10 * np.conj(l10) * g00
    if len(g00) == 1:
        return l10, sigma / math.sqrt(g00[0].real), sigma / math.sqrt(d11[0].real)
    return l10, _split_gram(g00, sigma), _split_gram(d11, sigma)


def _split_gram(d: Complexes, sigma: float) -> Tree:
    """A self-adjoint d over degree n as the 2×2 Gram matrix [[d0, d1], [d1*, d0]] over degree n/2."""
    d0, d1 = split(d)
    return _ffldl(d0, d1, d0, sigma)


def _ff_sample(t0: Complexes, t1: Complexes, tree: Tree, sampler: Sampler) -> tuple[Complexes, Complexes]:
    """Integer polynomials (z0, z1), in FFT form, with (t − z)·B a Gaussian sample (Falcon's ffSampling).

    z1 first, along the second Gram–Schmidt direction; its error moves the centre of z0 by (t1 − z1)·L10.
    """
    l10, left, right = tree
    if isinstance(left, float) and isinstance(right, float):
        z1_leaf = float(sampler(t1[0].real, right))
        z0_leaf = float(sampler((t0[0] + (t1[0] - z1_leaf) * l10[0]).real, left))
        return np.array([z0_leaf], dtype=np.complex128), np.array([z1_leaf], dtype=np.complex128)
    assert not isinstance(left, float) and not isinstance(right, float)
    z1 = merge(*_ff_sample(*split(t1), right, sampler))
    z0 = merge(*_ff_sample(*split(t0 + (t1 - z1) * l10), left, sampler))
    return z0, z1


def _negacyclic(a: Ints, b: Ints) -> Ints:
    full = np.convolve(a, b)
    result = full[:N].copy()
    result[: N - 1] -= full[N:]
    return result


class KeySampler:
    """Extraction with one trapdoor: the ffLDL tree of its basis B = [[g, −f], [G, −F]], computed once."""

    def __init__(self, trapdoor: Trapdoor, sigma: float = EXTRACTION_SIGMA) -> None:
        self.sigma = sigma
        self._ints = [
            np.array(poly, dtype=np.int64) for poly in (trapdoor.f, trapdoor.g, trapdoor.big_f, trapdoor.big_g)
        ]
        f, g, big_f, big_g = (fft(poly.astype(np.float64)) for poly in self._ints)
        self._f_hat, self._big_f_hat = f, big_f
        gram00 = g * np.conj(g) + f * np.conj(f)
        gram01 = g * np.conj(big_g) + f * np.conj(big_f)
        gram11 = big_g * np.conj(big_g) + big_f * np.conj(big_f)
        self._tree = _ffldl(gram00, gram01, gram11, sigma)

    def sample(self, target: Sequence[int], rng: random.Random) -> tuple[list[int], list[int]]:
        """A short (s1, s) with s1 + s·h ≡ target (mod q): (target, 0) minus a Gaussian lattice point near it.

        t = (target, 0)·B^−1 = (−target·F, target·f)/q; z = ffSampling(t); v = z·B exactly in integers.
        """
        c = np.array(centred(target), dtype=np.int64)
        c_hat = fft(c.astype(np.float64))
        t0, t1 = -c_hat * self._big_f_hat / Q, c_hat * self._f_hat / Q
        z0_hat, z1_hat = _ff_sample(t0, t1, self._tree, lambda mu, s: sample_z(mu, s, rng))
        z0, z1 = (np.rint(ifft(z)).astype(np.int64) for z in (z0_hat, z1_hat))
        f, g, big_f, big_g = self._ints
        s = _negacyclic(z0, f) + _negacyclic(z1, big_f)
        s1 = c - _negacyclic(z0, g) - _negacyclic(z1, big_g)
        return [int(x) for x in s1], [int(x) for x in s]

    def extract(self, identity: bytes, rng: random.Random | None = None, ring: Ring | None = None) -> list[int]:
        """The identity key s of ``identity``: sampled again until it meets :func:`key_is_acceptable`."""
        rng = rng or random.SystemRandom()
        target = ring_target(identity, ring)
        for _ in range(_MAX_ATTEMPTS):
            s1, s = self.sample(target, rng)
            if key_is_acceptable(s1, s):
                return s
        raise RuntimeError("no acceptable identity key found: the trapdoor or the random source is broken")
